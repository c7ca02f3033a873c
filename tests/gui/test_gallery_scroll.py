"""The sample grid's horizontal scrolling: it opens with the newest step in view and the leftmost
column whole (its header reads "Step 300", not "ep 300"), new steps keep it so, and once the user
scrolls back it stays put."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage

from chroma_studio.base import run_folder as runs
from chroma_studio.gui.pages.samples import SamplesPage
from chroma_studio.gui.run_model import RunModel, SampleImage

PROMPTS = ("a photo of sks on a beach", "sks in the snow")
STEPS = range(0, 401, 50)  # nine columns: wider than the page


def write_sample(run: Path, step: int, prompt_index: int) -> Path:
    """A sample image and its index line, named as the engine's sampler names them."""
    samples = run / runs.SAMPLES
    samples.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}_p{prompt_index}.png"
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor(step % 256, 90 * prompt_index, 140))
    assert image.save(str(samples / name))
    record = {"step": step, "prompt_index": prompt_index, "prompt": PROMPTS[prompt_index], "file": name}
    with open(samples / runs.SAMPLE_INDEX, "a", encoding="utf-8") as index:
        index.write(json.dumps(record) + "\n")
    return samples / name


@pytest.fixture
def run_folder(tmp_path) -> Path:
    run = tmp_path / "sks-20261129-201647"
    run.mkdir()
    (run / runs.CONFIG).write_text(json.dumps({"max_train_steps": 400}))
    (run / runs.METRICS).write_text("".join(json.dumps({"step": s, "loss": 0.4}) + "\n" for s in range(1, 401)))
    for step in STEPS:
        for p in range(len(PROMPTS)):
            write_sample(run, step, p)
    return run


@pytest.fixture
def model() -> RunModel:
    return RunModel()


def open_page(qtbot, model: RunModel, width: int) -> SamplesPage:
    page = SamplesPage(model)
    qtbot.addWidget(page)
    page.resize(width, 800)
    page.show()
    qtbot.waitExposed(page)
    return page


def leftmost_column_edge(page: SamplesPage) -> int:
    """Where the leftmost visible column starts in the grid's viewport (negative: cut off)."""
    header = page.gallery.view.horizontalHeader()
    return header.sectionViewportPosition(header.logicalIndexAt(0))


def newest_column_whole(page: SamplesPage) -> bool:
    view, grid = page.gallery.view, page.gallery.model
    rect = view.visualRect(grid.index(0, grid.columnCount() - 1))
    return rect.left() >= 0 and rect.right() < view.viewport().width()


def at_newest_on_whole_columns(page: SamplesPage) -> bool:
    view = page.gallery.view
    header, bar = view.horizontalHeader(), view.horizontalScrollBar()
    return bar.value() > 0 and header.offset() == bar.value() and leftmost_column_edge(page) == 0


@pytest.mark.parametrize("width", [900, 1100, 1337])
def test_a_reopened_run_opens_on_whole_columns_with_the_newest_step_in_view(qtbot, model, run_folder, width):
    model.load_folder(run_folder)  # reopened from the Train page, then the Samples page is shown
    page = open_page(qtbot, model, width)
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page))
    assert newest_column_whole(page)
    page.gallery.model.wait_for_thumbnails()


def test_new_steps_keep_the_newest_in_view_on_whole_columns(qtbot, model, run_folder):
    page = open_page(qtbot, model, 1100)  # watched while the run goes on
    model.load_folder(run_folder)
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page))
    for step in (450, 500):
        for p in range(len(PROMPTS)):
            sample = SampleImage(step, p, PROMPTS[p], str(write_sample(run_folder, step, p)))
            model.samples.append(sample)
            model.sample_added.emit(sample)
        qtbot.waitUntil(lambda: at_newest_on_whole_columns(page))
        assert newest_column_whole(page)
    page.gallery.slider.setValue(200)  # bigger pictures, and a narrower window: still whole columns
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page) and newest_column_whole(page))
    page.resize(870, 800)
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page) and newest_column_whole(page))
    page.gallery.model.wait_for_thumbnails()


def test_scrolled_back_the_grid_stays_put_when_steps_come(qtbot, model, run_folder):
    page = open_page(qtbot, model, 1100)
    model.load_folder(run_folder)
    bar = page.gallery.view.horizontalScrollBar()
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page))
    bar.setValue(0)
    sample = SampleImage(450, 0, PROMPTS[0], str(write_sample(run_folder, 450, 0)))
    model.samples.append(sample)
    model.sample_added.emit(sample)
    qtbot.wait(50)  # the grid lays out its new column
    assert bar.value() == 0 and leftmost_column_edge(page) == 0
    bar.setValue(bar.maximum())  # back at the end, it follows again
    qtbot.waitUntil(lambda: at_newest_on_whole_columns(page) and newest_column_whole(page))
    page.gallery.model.wait_for_thumbnails()
