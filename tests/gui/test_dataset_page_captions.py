"""Captions on the Dataset page: typing saves after a pause, bulk edits preview and undo, bad files stay untouched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QTextCursor
from qt_fixtures import CP1252_CAPTION, DATASET_WAIT_MS, load_folder, open_dataset_page
from support import copy_demo_images

from chroma_studio.dataset import caption_history
from chroma_studio.gui.dataset.bulk_caption_dialog import BulkCaptionDialog
from chroma_studio.gui.dataset.caption_editor import SAVE_DELAY_MS
from chroma_studio.gui.pages.dataset import DatasetPage

WAIT_MS = DATASET_WAIT_MS


@pytest.fixture
def page(qtbot):
    with open_dataset_page(qtbot, resolution=256) as page:
        yield page


load = load_folder


def select(page: DatasetPage, *names: str) -> None:
    """Select the images called ``names``, the last one current (shown in the editor)."""
    selection = page.grid.selectionModel()
    selection.clearSelection()
    for name in names:
        row = next(r for r in range(page.model.rowCount()) if page.model.item(r).path.name == name)
        index = page.filter_model.mapFromSource(page.model.index(row))
        selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.Select)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.txt"))}


def type_at_end(qtbot, page: DatasetPage, text: str) -> None:
    page.editor.edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(page.editor.edit, text)


def test_typed_caption_is_saved_after_a_pause_and_undone(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    before = snapshot(demo_folder)
    select(page, "chelsea.jpg")
    caption = demo_folder / "chelsea.txt"
    assert page.editor.text() == caption.read_text(encoding="utf-8").strip()
    type_at_end(qtbot, page, ", whiskers")
    assert page.editor.has_unsaved_changes()
    assert caption.read_bytes() == before["chelsea.txt"], "saved before the pause"

    def saved() -> bool:
        return caption.read_text(encoding="utf-8").rstrip().endswith(", whiskers")

    qtbot.waitUntil(saved, timeout=5 * SAVE_DELAY_MS)
    assert page.editor.status.text().startswith("Saved")
    assert page.model.item(page.model.row_for_path(demo_folder / "chelsea.jpg")).caption.endswith(", whiskers")
    assert page.undo_button.isEnabled()
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert snapshot(demo_folder) == before
    assert not page.editor.text().endswith(", whiskers")
    assert page.redo_button.isEnabled()


def test_switching_to_another_folder_leaves_nothing_to_undo_in_the_old_one(page, qtbot, demo_folder, tmp_path):
    load(page, qtbot, demo_folder)
    select(page, "chelsea.jpg")
    type_at_end(qtbot, page, ", whiskers")
    caption = demo_folder / "chelsea.txt"
    qtbot.waitUntil(
        lambda: caption.read_text(encoding="utf-8").rstrip().endswith(", whiskers"), timeout=5 * SAVE_DELAY_MS
    )
    assert page.undo_button.isEnabled()
    other = copy_demo_images(tmp_path / "other")  # the same file names, in another folder
    load(page, qtbot, other)
    assert not page.undo_button.isEnabled() and page.undo_button.toolTip() == "Nothing to undo"
    assert not page.undo()
    assert caption.read_text(encoding="utf-8").rstrip().endswith(", whiskers")  # the edit stays as made
    # adding a folder beside the first keeps what can be undone there
    select(page, "coffee.jpg")
    type_at_end(qtbot, page, ", steam")
    qtbot.waitUntil(page.undo_button.isEnabled, timeout=5 * SAVE_DELAY_MS)
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        page.add_folders([str(demo_folder)])
    assert page.undo_button.isEnabled()


def test_a_burst_of_typing_saved_in_pieces_undoes_at_once(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    before = snapshot(demo_folder)
    select(page, "rocket.jpg")
    caption = demo_folder / "rocket.txt"
    for words in (", at dawn", ", with smoke"):
        type_at_end(qtbot, page, words)
        qtbot.waitUntil(lambda words=words: caption.read_text(encoding="utf-8").rstrip().endswith(words), timeout=5_000)
    assert caption.read_text(encoding="utf-8").rstrip().endswith(", at dawn, with smoke"), "saved twice"
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        assert page.undo()
    assert snapshot(demo_folder) == before, "one undo takes back both saves"
    assert not page.caption_actions.history.can_undo
    assert page.editor.text() == before["rocket.txt"].decode("utf-8").strip()


def test_a_bulk_edit_shows_progress_and_cancel_puts_every_caption_back(page, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    count = 30
    for i in range(count):
        Image.new("RGB", (320, 320), (i * 8, 60, 90)).save(folder / f"img_{i:02d}.png")
        (folder / f"img_{i:02d}.txt").write_bytes(b"a photo\r\n" if i % 2 else b"a photo")
    load(page, qtbot, folder)
    page.set_trigger_word("ohwx")
    before = snapshot(folder)
    real_write = caption_history.write_caption

    def slow_write(path, text):  # 50 ms a caption: the whole edit would take 1.5 s
        time.sleep(0.05)
        real_write(path, text)

    monkeypatch.setattr(caption_history, "write_caption", slow_write)
    dialog = page.open_bulk_dialog("add-trigger", rows=range(count))
    assert dialog is not None
    preview = dialog.preview()
    assert preview is not None and len(preview.changes) == count
    dialog.accept()
    assert page.progress.isVisible() and page.progress.cancel_button.isVisible()

    def writing() -> bool:
        job = page.progress.job()
        return job is not None and job.done >= 3 and f"of {count}" in page.progress.label.text()

    qtbot.waitUntil(writing, timeout=WAIT_MS)
    assert "writing 30 captions" in page.progress.label.text()
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.progress.cancel_button, Qt.MouseButton.LeftButton)
    assert snapshot(folder) == before, "byte for byte"
    assert "was cancelled: every caption is as it was before" in page.message_bar.text()
    assert not page.caption_actions.history.can_undo and not page.undo_button.isEnabled()
    assert not page.caption_actions.is_busy() and page.add_trigger_button.isEnabled()
    assert all("trigger-missing" in page.model.problems(row) for row in range(count))
    monkeypatch.setattr(caption_history, "write_caption", real_write)
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        page.caption_actions.apply(preview)
    assert all(path.read_text(encoding="utf-8").startswith("ohwx, ") for path in folder.glob("*.txt"))


def test_ctrl_z_in_the_editor_undoes_typing_and_elsewhere_undoes_captions(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    before = snapshot(demo_folder)
    select(page, "coffee.jpg")
    original = page.editor.text()
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    page.editor.edit.setFocus()
    type_at_end(qtbot, page, " steam")
    qtbot.keyClick(page.editor.edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert page.editor.text() == original  # the text's own undo
    type_at_end(qtbot, page, " and foam")
    page.editor.flush()
    assert (demo_folder / "coffee.txt").read_text(encoding="utf-8").rstrip().endswith(" and foam")
    page.grid.setFocus()
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.keyClick(page.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert snapshot(demo_folder) == before
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.keyClick(page.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert (demo_folder / "coffee.txt").read_text(encoding="utf-8").rstrip().endswith(" and foam")


def test_add_trigger_word_to_a_selection_and_undo_it(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    page.set_trigger_word("ohwx")
    before = snapshot(demo_folder)
    select(page, "chelsea.jpg", "coffee.jpg")
    qtbot.mouseClick(page.add_trigger_button, Qt.MouseButton.LeftButton)
    dialog = page.findChild(BulkCaptionDialog)
    assert dialog is not None and dialog.isVisible() and dialog.word.text() == "ohwx"
    preview = dialog.preview()
    assert [change.path.name for change in preview.changes] == ["chelsea.txt", "coffee.txt"]
    assert dialog.table_model.rowCount() == 2
    assert "2 captions will change" in dialog.summary.text()
    with qtbot.waitSignal(page.caption_actions.captions_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    after = snapshot(demo_folder)
    assert after["chelsea.txt"].startswith(b"ohwx, ") and after["coffee.txt"].startswith(b"ohwx, ")
    assert after["astronaut.txt"] == before["astronaut.txt"] and after["rocket.txt"] == before["rocket.txt"]
    coffee = page.model.row_for_path(demo_folder / "coffee.jpg")
    assert "trigger-missing" not in page.model.problems(coffee)
    assert "trigger-missing" in page.model.problems(page.model.row_for_path(demo_folder / "rocket.jpg"))
    assert page.editor.text().startswith("ohwx, ")  # the editor shows coffee, re-read
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    assert snapshot(demo_folder) == before  # byte for byte
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        qtbot.mouseClick(page.redo_button, Qt.MouseButton.LeftButton)
    assert snapshot(demo_folder) == after
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        assert page.undo()
    assert snapshot(demo_folder) == before


def test_a_caption_that_is_not_utf8_is_shown_read_only_and_never_written(page, qtbot, demo_folder):
    (demo_folder / "coffee.txt").write_bytes(CP1252_CAPTION)
    load(page, qtbot, demo_folder)
    row = page.model.row_for_path(demo_folder / "coffee.jpg")
    assert page.model.problems(row) == ("caption-unreadable",)
    select(page, "coffee.jpg")
    assert page.editor.is_read_only()
    assert "not UTF-8" in page.editor.problem.text() and page.editor.problem.isVisibleTo(page)
    type_at_end(qtbot, page, "overwrite me")
    assert page.editor.text() == ""
    page.editor.flush()
    qtbot.wait(2 * SAVE_DELAY_MS)  # past the save delay
    assert (demo_folder / "coffee.txt").read_bytes() == CP1252_CAPTION
    select(page, "astronaut.jpg", "coffee.jpg", "rocket.jpg")
    dialog = page.open_bulk_dialog("prefix-suffix")
    dialog.text.setText("photo, ")
    preview = dialog.preview()
    assert [error.path.name for error in preview.skipped] == ["coffee.txt"]
    assert "1 skipped" in dialog.summary.text()
    with qtbot.waitSignal(page.caption_actions.captions_changed, timeout=WAIT_MS):
        dialog.accept()
    assert (demo_folder / "coffee.txt").read_bytes() == CP1252_CAPTION
    assert (demo_folder / "rocket.txt").read_text(encoding="utf-8").startswith("photo, ")


def test_typing_a_missing_caption_creates_it_and_undo_removes_it(page, qtbot, demo_folder):
    (demo_folder / "rocket.txt").unlink()
    load(page, qtbot, demo_folder)
    select(page, "rocket.jpg")
    assert "rocket.txt" in page.editor.edit.placeholderText()
    type_at_end(qtbot, page, "a rocket on its launch pad")
    qtbot.waitUntil((demo_folder / "rocket.txt").exists, timeout=5 * SAVE_DELAY_MS)
    assert page.model.problems(page.model.row_for_path(demo_folder / "rocket.jpg")) == ()
    with qtbot.waitSignal(page.caption_actions.history_changed, timeout=WAIT_MS):
        page.undo()
    assert not (demo_folder / "rocket.txt").exists()
    assert page.model.problems(page.model.row_for_path(demo_folder / "rocket.jpg")) == ("caption-missing",)


def test_find_and_replace_preview_follows_the_settings(page, qtbot, demo_folder):
    load(page, qtbot, demo_folder)
    dialog = page.open_bulk_dialog("find-replace", rows=range(page.model.rowCount()))
    dialog.regex.setChecked(True)
    dialog.find.setText("(unclosed")
    assert dialog.preview() is None
    assert "not a valid regular expression" in dialog.summary.text()
    assert not dialog.apply_button.isEnabled()
    dialog.find.setText(r"\bphoto\b")
    dialog.replace.setText("picture")
    preview = dialog.preview()
    assert preview is not None and preview.changes
    assert all("picture" in change.after for change in preview.changes)
    assert dialog.apply_button.isEnabled()
    dialog.reject()
    assert (demo_folder / "astronaut.txt").read_text(encoding="utf-8").startswith("a photo")


@pytest.mark.parametrize(
    ("kind", "settings", "expected"),
    [
        ("add-trigger", {"word": "ohwx"}, "ohwx, a  red   square ,sks"),
        ("remove-trigger", {"word": "sks"}, "a  red   square"),
        ("prefix-suffix", {"text": "photo of "}, "photo of a  red   square ,sks"),
        ("find-replace", {"find": "red", "replace": "blue"}, "a  blue   square ,sks"),
        ("whitespace", {}, "a red square,sks"),
    ],
)
def test_each_bulk_edit_previews_its_change(qtbot, tmp_path, kind, settings, expected):
    caption = tmp_path / "one.txt"
    caption.write_text("a  red   square ,sks", encoding="utf-8")
    dialog = BulkCaptionDialog(kind, [caption])
    qtbot.addWidget(dialog)
    for name, value in settings.items():
        getattr(dialog, name).setText(value)
    preview = dialog.preview()
    assert [change.after for change in preview.changes] == [expected]
    assert caption.read_text(encoding="utf-8") == "a  red   square ,sks"  # a preview writes nothing
