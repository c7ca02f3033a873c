"""Samples: the prompts x steps grid, enlarging a picture, and two steps side by side."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage

from chroma_studio.base import run_folder as runs
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


def combo_fits(combo) -> bool:
    """Whether the combo box's current text fits in its text field."""
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    return field.width() >= combo.fontMetrics().horizontalAdvance(combo.currentText())


@pytest.fixture
def live_page(qtbot, tmp_path):
    """The Samples page on screen while a run adds samples: two prompts at steps 0, 100, …, 1000."""
    from chroma_studio.gui.run_model import SampleImage

    model = RunModel()
    page = SamplesPage(model)
    qtbot.addWidget(page)
    page.resize(1100, 800)
    page.show()  # shown before any sample arrives, as when it is watched during a run
    for step in range(0, 1001, 100):
        for p, prompt in enumerate(PROMPTS):
            image = QImage(64, 64, QImage.Format.Format_RGB32)
            image.fill(QColor(step % 256, 80 * p, 120))
            path = tmp_path / f"step_{step:06d}_p{p}.png"
            assert image.save(str(path))
            sample = SampleImage(step, p, prompt, str(path))
            model.samples.append(sample)
            model.sample_added.emit(sample)
    yield page
    page.gallery.model.wait_for_thumbnails()
    page.compare.setParent(None)


def test_step_pickers_show_the_whole_step_number(qtbot, live_page, tmp_path):
    compare = live_page.compare
    assert compare.right_combo.currentText() == "Step 1000"
    qtbot.waitUntil(lambda: combo_fits(compare.right_combo))  # "Step 1000", not "Step 100"
    compare.left_combo.setCurrentIndex(compare.left_combo.count() - 1)
    qtbot.waitUntil(lambda: combo_fits(compare.left_combo))

    export = live_page.export
    for step in (100, 1000):
        checkpoint = tmp_path / "run" / "checkpoints" / f"step_{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / runs.CHECKPOINT_STATE).write_text("{}")
    export.set_run(str(tmp_path / "run"))
    assert export.step_combo.currentText() == "Step 1000"
    qtbot.waitUntil(lambda: combo_fits(export.step_combo))


def test_step_headers_stay_over_their_pictures_when_the_grid_scrolls(qtbot, live_page):
    view = live_page.gallery.view
    header, bar = view.horizontalHeader(), view.horizontalScrollBar()
    grid = live_page.gallery.model

    def aligned() -> bool:
        if header.geometry().left() != view.viewport().geometry().left():
            return False
        columns = range(grid.columnCount())
        return all(header.sectionViewportPosition(c) == view.visualRect(grid.index(0, c)).x() for c in columns)

    # a run that is watched follows the newest step, in view whole, and no column is cut at the left
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    last = view.visualRect(grid.index(0, grid.columnCount() - 1))
    assert last.right() < view.viewport().width()
    assert header.sectionViewportPosition(header.logicalIndexAt(0)) == 0
    assert header.offset() == bar.value()
    assert aligned()
    for value in (0, bar.maximum() // 3, bar.maximum() - 7):  # anywhere, even mid-column
        bar.setValue(value)
        assert header.offset() == value and aligned()
    live_page.resize(900, 800)  # a narrower window keeps them together too
    qtbot.waitUntil(lambda: header.offset() == bar.value() and aligned())
