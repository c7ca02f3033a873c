"""The window around the pages: titles, the unsaved project kept between launches, settings."""

from __future__ import annotations

from PySide6.QtCore import Qt

from chroma_studio.gui.main_window import MainWindow
from chroma_studio.gui.widgets.settings_dialog import SettingsDialog


def test_train_without_images_says_so_and_goes_to_the_dataset_page(qtbot, window):
    window.show_page("train")
    qtbot.mouseClick(window.header.train_button, Qt.MouseButton.LeftButton)
    assert not window.controller.running
    assert window.current_page() == "dataset"
    notice = window.train_page.notice_dialog
    assert notice is not None and notice.isVisible() and "folder of images" in notice.text()
    notice.accept()


def test_an_unsaved_project_is_back_at_the_next_launch(qtbot, settings, demo_folder, summary):
    first = MainWindow(settings, detector=None)
    qtbot.addWidget(first)
    first.show()
    assert first.windowTitle() == "Untitled project — Chroma Studio"
    first.dataset_page.set_folders([str(demo_folder)])
    first.dataset_page.set_trigger_word("sks")
    first.session.update(lora_rank=8)
    first.close()
    first.dataset_page.wait_for_background(10_000)

    second = MainWindow(settings, detector=None)
    qtbot.addWidget(second)
    second.show()
    assert second.dataset_page.folders() == [str(demo_folder)]
    assert second.dataset_page.trigger_word() == "sks"
    assert second.session.config.lora.lora_rank == 8
    second.close()
    second.dataset_page.wait_for_background(10_000)


def test_settings_dialog_stores_folders_and_endpoint(qtbot, settings, tmp_path):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.cache_edit.setText(str(tmp_path / "cache2"))
    dialog.endpoint_edit.setText("https://hf-mirror.com")
    dialog.accept()
    assert settings.output_folder == str(tmp_path / "out")
    assert settings.cache_folder == str(tmp_path / "cache2")
    assert settings.environment() == {"HF_ENDPOINT": "https://hf-mirror.com"}


def test_pages_are_reached_from_the_header(qtbot, window):
    for key in ("train", "samples", "machine", "dataset"):
        qtbot.mouseClick(window.header.nav_buttons[key], Qt.MouseButton.LeftButton)
        assert window.current_page() == key
        assert window.header.nav_buttons[key].isChecked()


def test_a_fresh_project_is_not_marked_as_changed(qtbot, window):
    # the machine was detected and its recommended settings taken: the user changed nothing yet
    assert window.session.preset == "recommended"
    assert window.windowTitle() == "Untitled project — Chroma Studio"
    window.session.update(lora_rank=8)
    assert window.windowTitle() == "Untitled project* — Chroma Studio"


def test_the_header_button_reads_naturally_during_a_run(qtbot, window):
    header = window.header
    header.set_run_status("running")
    assert header.train_button.text() == "Show training" and header.train_button.isEnabled()
    window.show_page("train")  # the run is on screen: nothing to show
    assert not header.train_button.isEnabled()
    window.show_page("samples")
    assert header.train_button.isEnabled()
    header.set_run_status("finished")
    assert header.train_button.text() == "Train ▶"
    window.show_page("train")
    assert header.train_button.isEnabled()
