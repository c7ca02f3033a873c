"""The queue of runs in the app: "Add to queue" on the Train page, the queue drawer (reorder,
remove, open a finished run), running it on the demo model with a failing entry first, the
notification when it is done, another runner holding it, and a restart that offers to resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from support import TINY_DEMO, queue_held_by_command_line

from chroma_studio.base.run_queue import RunQueue

RUN_WAIT_MS = 240_000


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """The queue file of these tests (set before the window reads it)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("CHROMA_STUDIO_DATA_DIR", str(folder))
    return folder


def queue_file(data_dir: Path) -> RunQueue:
    return RunQueue(data_dir / "queue.json")


def with_images(window, folder: Path) -> None:
    window.studio.set_dataset_folders([str(folder)])
    window.studio.set_trigger_word("sks")
    window.show_page("train")


def listed(window) -> list[str]:
    panel = window.queue_panel
    return [panel.list.item(row).text() for row in range(panel.list.count())]


def select(window, entry_id: int) -> None:
    panel = window.queue_panel
    for row in range(panel.list.count()):
        if panel.list.item(row).data(0x0100) == entry_id:  # Qt.UserRole
            panel.list.setCurrentRow(row)
            return
    raise AssertionError(f"entry {entry_id} is not listed")


def test_add_to_queue_snapshots_the_settings_and_the_panel_reorders_and_removes(window, demo_folder, data_dir):
    with_images(window, demo_folder)
    assert not window.queue_drawer.isVisible()
    assert window.train_page.queue_button.text() == "Add to queue"
    window.train_page.queue_button.click()
    assert window.queue_drawer.isVisible()  # the drawer opens on the run just added
    window.studio.update_settings(lora_rank=8)
    window.train_page.queue_button.click()
    entries = queue_file(data_dir).entries
    assert [e.id for e in entries] == [1, 2]
    assert entries[0].output_dir != entries[1].output_dir  # added within the same second: still two folders
    assert all(Path(e.output_dir).parent == Path(window.settings.output_folder) for e in entries)
    assert [e.config["lora_rank"] for e in entries] == [4, 8]  # each a snapshot of its moment
    assert entries[0].config["dataset_dirs"] == [str(demo_folder)]
    assert entries[0].config["cache_dir"] == window.settings.cache_folder
    assert listed(window)[0].startswith("#1 sks-") and listed(window)[0].endswith("\nwaiting")

    select(window, 2)
    window.queue_panel.up_button.click()
    assert [e.id for e in queue_file(data_dir).entries] == [2, 1]
    assert listed(window)[0].startswith("#2 ")
    assert window.queue_panel.selected().id == 2  # the selection follows the entry
    window.queue_panel.down_button.click()
    assert [e.id for e in queue_file(data_dir).entries] == [1, 2]
    select(window, 1)
    window.queue_panel.remove_button.click()
    assert [e.id for e in queue_file(data_dir).entries] == [2]
    assert len(listed(window)) == 1


def test_an_entry_added_from_the_command_line_shows_up(window, qtbot, data_dir, tmp_path):
    queue_file(data_dir).add({"output_dir": str(tmp_path / "from-cli"), "max_train_steps": 3}, "from-cli")
    qtbot.waitUntil(lambda: listed(window) == ["#1 from-cli\nwaiting"], timeout=5_000)


def test_the_queue_runs_to_the_end_past_a_failing_entry_and_says_so(window, qtbot, demo_folder, data_dir, tmp_path):
    broken = {**window.studio.session.training_config(str(tmp_path / "runs" / "broken")).to_dict()}
    broken.update(TINY_DEMO, dataset_dirs=[str(tmp_path / "moved-away")], max_train_steps=2)
    window.studio.queue.add(broken, "broken")
    with_images(window, demo_folder)
    window.studio.update_settings(max_train_steps=2, validation_steps=0)
    assert window.train_page.add_to_queue()
    panel = window.queue_panel
    assert panel.run_button.text() == "Run queue" and panel.run_button.isEnabled()
    with qtbot.waitSignal(window.studio.queue.queue_finished, timeout=RUN_WAIT_MS) as finished:
        panel.run_button.click()
        assert panel.run_button.text() == "Stop queue"
        assert window.studio.queue.lock.path.exists()  # the app holds the queue while it runs it
    assert finished.args == [2, 1]
    entries = queue_file(data_dir).entries
    assert [(e.name, e.label) for e in entries] == [("broken", "failed"), (entries[1].name, "finished")]
    assert "moved-away" in entries[0].result
    assert Path(entries[1].result).is_file()  # the finished run's LoRA
    assert panel.message_bar.text() == "The queue is done: 1 of 2 runs finished, 1 failed."
    assert panel.message_bar.level == "warning"
    assert window.statusBar().currentMessage() == "The queue of runs is done: 1 of 2 finished, 1 failed."
    assert not window.studio.queue.lock.path.exists() and panel.run_button.text() == "Run queue"
    assert not panel.run_button.isEnabled()  # nothing waits

    select(window, 2)
    assert panel.open_button.isEnabled()
    with qtbot.waitSignal(window.controller.model.run_finished):
        panel.open_button.click()
    assert window.current_page() == "train" and window.train_page.stack.currentWidget() is window.train_page.run_view
    assert window.controller.model.reopened and window.controller.model.step == 2


def test_the_app_does_not_run_a_queue_the_command_line_runs(window, qtbot, data_dir, tmp_path):
    queue_file(data_dir).add({"output_dir": str(tmp_path / "a"), "max_train_steps": 3}, "a")
    with queue_held_by_command_line(data_dir / "queue.json") as holder:
        panel = window.queue_panel
        qtbot.waitUntil(lambda: bool(window.studio.queue.busy), timeout=5_000)
        assert panel.busy_label.text().startswith(f"The queue is being run by the command line (process {holder.pid}")
        assert panel.busy_label.text().endswith("The app does not run it meanwhile.")
        assert not panel.run_button.isEnabled()
        assert not panel.run_queue()  # asked anyway (the menu): refused, in words
        assert "being run by the command line" in panel.message_bar.text()
        assert not window.controller.running and queue_file(data_dir).entries[0].label == "waiting"
    qtbot.waitUntil(lambda: window.queue_panel.run_button.isEnabled(), timeout=5_000)


@pytest.mark.slow
def test_closing_stops_the_running_entry_and_the_next_start_offers_to_resume_it(
    window, qtbot, demo_folder, data_dir, settings, summary, monkeypatch
):
    from chroma_studio.gui.main_window import MainWindow

    with_images(window, demo_folder)
    window.studio.update_settings(max_train_steps=100_000, validation_steps=0)
    assert window.train_page.add_to_queue()
    assert window.queue_panel.run_queue()
    model = window.controller.model
    qtbot.waitUntil(lambda: model.step >= 2, timeout=RUN_WAIT_MS)
    window.close()  # asks (answered yes here), stops with a checkpoint, then closes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_WAIT_MS)
    entry = queue_file(data_dir).entries[0]
    assert entry.label == "waiting (resume)" and entry.step >= 2
    saved = sorted(int(p.name.split("_")[1]) for p in (Path(entry.output_dir) / "checkpoints").glob("step_*"))
    assert saved and saved[-1] == entry.step

    again = MainWindow(settings, detector=lambda: summary)
    monkeypatch.setattr(again, "ask_to_stop_on_close", lambda: True)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.queue_panel.resume_dialog is not None, timeout=5_000)
    dialog = again.queue_panel.resume_dialog
    assert "stopped during “" in dialog.text() and "Resume it now?" in dialog.text()
    assert listed(again)[0].split("\n")[1].startswith(f"waiting (resume) · step {entry.step} of 100000")
    with qtbot.waitSignal(again.controller.model.planned, timeout=RUN_WAIT_MS) as planned:
        dialog.button(QMessageBox.StandardButton.Yes).click()
    assert planned.args == [100_000, saved[-1]]  # continues from its checkpoint
    with qtbot.waitSignal(again.studio.queue.running_changed, timeout=RUN_WAIT_MS):
        again.queue_panel.run_button.click()  # Stop queue
    assert queue_file(data_dir).entries[0].label == "waiting (resume)"
    again.close()


def test_a_damaged_queue_file_is_shown_and_kept(qtbot, settings, summary, demo_folder, data_dir, monkeypatch):
    from chroma_studio.gui.main_window import MainWindow

    data_dir.mkdir()
    (data_dir / "queue.json").write_text('{"chroma_studio_queue": 1, "entries": [')
    window = MainWindow(settings, detector=lambda: summary)
    qtbot.addWidget(window)
    window.show()
    with_images(window, demo_folder)
    assert "queue.json is damaged" in window.queue_panel.message_bar.text()
    assert window.queue_panel.message_bar.level == "error"
    assert not window.train_page.add_to_queue()
    assert "move it aside" in window.train_page.notice_dialog.text()
    assert window.queue_panel.run_queue() is False
    assert (data_dir / "queue.json").read_text() == '{"chroma_studio_queue": 1, "entries": ['
    window.train_page.notice_dialog.close()
    window.close()
