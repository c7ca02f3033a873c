"""Samples: the prompts x steps grid, enlarging a picture, and two steps side by side."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from chroma_studio.gui.pages.samples import SamplesPage
from chroma_studio.gui.run_model import RunModel
from chroma_studio.gui.widgets.gallery import SampleGridModel

PROMPTS = ("a photo of sks on a beach", "sks in the snow")
STEPS = (0, 50, 100)


@pytest.fixture
def run_folder(tmp_path):
    """A finished run's folder: metrics, samples (2 prompts x 3 steps) and the index."""
    run = tmp_path / "run"
    samples = run / "samples"
    samples.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"max_train_steps": 100}))
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 0.5, "lr": 1e-4}) + "\n" for s in range(1, 101))
    )
    index = []
    for step in STEPS:
        for p, prompt in enumerate(PROMPTS):
            name = f"step_{step:06d}_p{p}.png"
            image = QImage(64, 64, QImage.Format.Format_RGB32)
            image.fill(QColor(step * 2, 80 * p, 120))
            assert image.save(str(samples / name))
            index.append(json.dumps({"step": step, "prompt_index": p, "prompt": prompt, "file": name}))
    (samples / "index.jsonl").write_text("\n".join(index) + "\n")
    return run


@pytest.fixture
def page(qtbot, run_folder):
    model = RunModel()
    page = SamplesPage(model)
    qtbot.addWidget(page)
    page.resize(1100, 800)
    page.show()
    model.load_folder(run_folder)
    yield page
    page.gallery.model.wait_for_thumbnails()
    page.compare.setParent(None)


def test_grid_has_a_row_per_prompt_and_a_column_per_step(qtbot, page):
    grid = page.gallery.model
    assert grid.rowCount() == len(PROMPTS) and grid.columnCount() == len(STEPS)
    assert [grid.headerData(c, Qt.Orientation.Horizontal) for c in range(3)] == ["Step 0", "Step 50", "Step 100"]
    assert grid.headerData(1, Qt.Orientation.Vertical, Qt.ItemDataRole.ToolTipRole) == PROMPTS[1]
    index = grid.index(1, 2)
    pending = grid.data(index, Qt.ItemDataRole.DecorationRole) is None
    if pending:  # decoded off the GUI thread; the cell changes when its thumbnail is back
        with qtbot.waitSignal(grid.dataChanged, timeout=5000, check_params_cb=lambda top, bottom, roles: top == index):
            pass
    assert grid.data(index, Qt.ItemDataRole.DecorationRole).width() <= grid.thumb_size
    assert "6 images" in page.subtitle.text()


def test_click_enlarges_a_sample(qtbot, page):
    view = page.gallery.view
    rect = view.visualRect(page.gallery.model.index(0, 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    viewer = page.viewer
    assert viewer is not None and viewer.isVisible()
    assert viewer.sample.step == 50 and viewer.sample.prompt == PROMPTS[0]
    assert "Step 50" in viewer.windowTitle() or "step 50" in viewer.windowTitle()
    viewer.reject()


def test_compare_two_steps_side_by_side(qtbot, page):
    compare = page.compare
    assert compare.left_combo.count() == 3 and compare.prompt_combo.count() == 2
    assert (compare.left_combo.currentData(), compare.right_combo.currentData()) == (0, 100)
    compare.set_steps(50, 100)
    compare.prompt_combo.setCurrentIndex(1)
    assert compare.left_image.pixmap() is not None and not compare.left_image.pixmap().isNull()
    assert compare.sample(1, 50).path.endswith("step_000050_p1.png")


def test_new_samples_add_columns_in_step_order(qtbot):
    from chroma_studio.gui.run_model import SampleImage

    grid = SampleGridModel()
    for step in (100, 0, 50):
        grid.add_sample(SampleImage(step, 0, "p", f"/nowhere/{step}.png"))
    assert grid.steps == [0, 50, 100]
    assert grid.sample_at(grid.index(0, 1)).step == 50
