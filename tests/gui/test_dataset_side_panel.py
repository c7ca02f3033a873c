"""The Dataset page's side panel for images with problems, and what the page says about formats and
the trigger word."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QItemSelectionModel
from PySide6.QtWidgets import QApplication, QLabel
from qt_fixtures import CP1252_CAPTION, DATASET_WAIT_MS, load_folder, open_dataset_page

from chroma_studio.gui.pages.dataset import DatasetPage

WAIT_MS = DATASET_WAIT_MS


@pytest.fixture
def page(qtbot):
    with open_dataset_page(qtbot, resolution=256) as page:
        yield page


load = load_folder


def select(page: DatasetPage, name: str) -> None:
    row = next(r for r in range(page.model.rowCount()) if page.model.item(r).path.name == name)
    index = page.filter_model.mapFromSource(page.model.index(row))
    page.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)


def settle_layouts(qtbot, window) -> None:
    """Lay out now what the last changes asked for, the window grown to its new minimum size."""
    for _ in range(5):  # a layout that changes a minimum size asks its parent again
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    qtbot.waitUntil(lambda: window.height() >= window.minimumSizeHint().height())
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)


def cut_short(image: Path) -> None:
    """Keep the header (the size still reads) but lose most of the picture: only decoding fails."""
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("height", [820, 700, 560])
def test_the_file_name_never_overlaps_the_preview(qtbot, window, demo_folder, height):
    (demo_folder / "chelsea.txt").write_bytes(CP1252_CAPTION)
    page = window.dataset_page
    load(page, qtbot, demo_folder)
    window.resize(1280, height)
    select(page, "chelsea.jpg")
    editor = page.editor
    assert editor.problem.isVisible() and "not UTF-8" in editor.problem.text()
    # training leaves an image out while its caption cannot be read: the panel says so
    assert editor.info.text() == "451×300 · left out of training until its caption can be read"
    assert page.stats_widget.images.text() == "3 to train; left out: 1 with an unreadable caption"
    assert page.usable_image_count() == 3

    settle_layouts(qtbot, window)
    preview, title = editor.preview.geometry(), editor.title.geometry()
    info, problem = editor.info.geometry(), editor.problem.geometry()
    assert title.top() > preview.bottom(), f"the file name overlaps the preview at {height} px"
    assert info.top() > title.bottom() and problem.top() > info.bottom()
    assert editor.edit.geometry().top() > problem.bottom()
    pixmap, preview = editor.preview.pixmap(), editor.preview.geometry()
    assert pixmap.height() <= preview.height() and pixmap.width() <= preview.width()


def test_a_damaged_image_says_it_is_left_out_and_its_caption_is_read_only(page, qtbot, demo_folder):
    cut_short(demo_folder / "coffee.jpg")  # found by the image check, not by the scan
    load(page, qtbot, demo_folder)
    select(page, "coffee.jpg")
    editor = page.editor
    assert "trains as" not in editor.info.text()
    assert editor.info.text() == "480×320 · left out of training"
    assert editor.problem.isVisible()
    assert editor.problem.text().startswith("Left out of training: coffee.jpg cannot be decoded")
    assert "caption cannot be edited" in editor.problem.text()
    assert not editor.edit.isEnabled() and editor.edit.isReadOnly()
    assert "coffee" in editor.text()  # its caption is still shown
    stats = page.stats_widget.stats()
    assert (stats.images, stats.unusable) == (4, 1)
    assert page.stats_widget.images.text() == "3 to train; left out: 1 damaged file"
    assert page.usable_image_count() == 3

    select(page, "rocket.jpg")  # a good image is editable again
    assert editor.info.text().endswith("trains as 320×192")
    assert editor.edit.isEnabled() and not editor.edit.isReadOnly() and not editor.problem.isVisible()


def test_the_page_names_the_formats_the_scanner_reads(page):
    texts = " ".join(label.text() for label in page.drop_zone.findChildren(QLabel))
    assert "JPEG, PNG, WebP and other common formats" in texts


def test_the_trigger_word_hint_says_the_app_does_not_add_it(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    hint = page.trigger_hint.text()
    assert "Not added to captions for you" in hint and "Add trigger word…" in hint
    assert "does not add it by itself" in page.trigger_edit.toolTip()
