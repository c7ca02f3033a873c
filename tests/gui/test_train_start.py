"""What pressing Train does before a run starts: no images means no run, the big button says when it
puts back the recommended settings, and a missing trigger word is a note, not a stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from test_train_flow import RUN_TIMEOUT, drop_folder

WAIT_MS = 30_000


def damaged_folder(folder: Path) -> Path:
    """Two image files that cannot be decoded: one with a broken header, one cut short."""
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    (folder / "broken.txt").write_text("sks, broken", encoding="utf-8")
    from PIL import Image

    Image.effect_noise((256, 256), 64).convert("RGB").save(folder / "cut.jpg", quality=95)
    data = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    return folder


def press_train_expecting_no_run(qtbot, window) -> QMessageBox:
    with qtbot.assertNotEmitted(window.controller.run_started):
        qtbot.mouseClick(window.header.train_button, Qt.MouseButton.LeftButton)
    assert not window.controller.running
    assert window.current_page() == "dataset"
    assert window.train_page.failure_dialog is None
    notice = window.train_page.notice_dialog
    assert notice is not None and notice.isVisible() and notice.windowTitle() == "No images yet"
    return notice


def test_an_empty_folder_gets_the_no_images_notice_not_a_failed_run(qtbot, window, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    page = window.dataset_page
    with qtbot.waitSignal(page.images_loaded, timeout=WAIT_MS) as loaded:
        drop_folder(qtbot, page.drop_zone, empty)
    assert loaded.args == [0]
    qtbot.keyClicks(page.trigger_edit, "sks")
    notice = press_train_expecting_no_run(qtbot, window)
    assert "the folder “empty” has no images" in notice.text()
    assert "Dataset page" in notice.text()
    notice.accept()


def test_only_damaged_images_get_the_no_images_notice(qtbot, window, tmp_path):
    folder = damaged_folder(tmp_path / "damaged")
    page = window.dataset_page
    with qtbot.waitSignal(page.images_checked, timeout=WAIT_MS):
        drop_folder(qtbot, page.drop_zone, folder)
    assert page.image_count() == 2
    window.show_page("train")
    with qtbot.assertNotEmitted(window.controller.run_started):
        window.train_page.recommended_button.click()  # the big button checks the same way
    window.train_page.notice_dialog.accept()
    notice = press_train_expecting_no_run(qtbot, window)
    assert "all 2 images in the dataset cannot be used" in notice.text()
    assert page.usable_image_count() == 0
    notice.accept()


@pytest.mark.slow
def test_the_big_button_says_it_puts_back_the_recommended_settings(qtbot, window, demo_folder):
    page = window.dataset_page
    with qtbot.waitSignal(page.images_loaded, timeout=WAIT_MS):
        page.set_folders([str(demo_folder)])
    window.show_page("train")
    train = window.train_page
    assert train.recommended_button.text() == "Train the demo model on your CPU"

    train.advanced_toggle.click()
    train.form.rows["resolution"].editor.setValue(256)  # the recommendation says 128
    train.form.rows["train_batch_size"].editor.setValue(2)  # a setting the recommendation leaves alone
    assert train.recommended_button.text() == "Reset to the recommended settings and train"
    note = train.reset_note.text()
    assert train.reset_note.isVisible() and "Resolution: 128 px" in note and "Batch" not in note
    assert "Start training with your settings" in note
    assert train.start_button.text() == "Start training with your settings"
    assert train.start_button.property("emphasis")

    # "Start training with your settings" trains the edits as they are
    model = window.controller.model
    with qtbot.waitSignal(window.controller.run_started):
        train.start_button.click()
    config = window.controller.worker.config
    assert (config.data.resolution, config.optim.train_batch_size) == (256, 2)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.controller.stop()

    # the big button does what it says: the recommended resolution back, the batch size kept
    train.show_setup()
    with qtbot.waitSignal(window.controller.run_started):
        train.recommended_button.click()
    config = window.controller.worker.config
    assert (config.data.resolution, config.optim.train_batch_size) == (128, 2)
    assert train.recommended_button.text() == "Train the demo model on your CPU"
    assert train.reset_note.isHidden() and not train.start_button.property("emphasis")
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.controller.stop()
    assert model.status in ("stopped", "finished")


@pytest.mark.slow
def test_no_trigger_word_is_a_note_and_the_run_starts(qtbot, window, demo_folder):
    with qtbot.waitSignal(window.dataset_page.images_loaded, timeout=WAIT_MS):
        window.dataset_page.set_folders([str(demo_folder)])
    assert window.session.config.data.trigger_word is None
    train = window.train_page
    with qtbot.waitSignal(window.controller.run_started):
        qtbot.mouseClick(window.header.train_button, Qt.MouseButton.LeftButton)
    assert window.controller.running
    assert train.notice_dialog is None and train.failure_dialog is None  # nothing modal
    assert "without a trigger word" in window.statusBar().currentMessage()
    assert "without a trigger word" in train.run_view.log.toPlainText()
    assert "trigger word: none (optional)" in train.summary_label.text()
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.controller.stop()
