"""The window driven like a user: from launch to a running demo training in three actions, a whole
run with chart points and samples, stopping midway, reopening a run, a broken dataset, and an
engine process that dies."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget
from support import engine_processes

RUN_TIMEOUT = 120_000


def drop_folder(qtbot, target: QWidget, folder: Path) -> None:
    """Drop a folder from the file manager onto ``target`` (drag enter, then drop)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    action = Qt.DropAction.CopyAction
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QApplication.sendEvent(target, QDragEnterEvent(QPoint(20, 20), action, mime, buttons, modifiers))
    QApplication.sendEvent(target, QDropEvent(QPointF(20, 20), action, mime, buttons, modifiers))


def visible_inputs(page: QWidget) -> list[QWidget]:
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QPlainTextEdit

    kinds = (QLineEdit, QAbstractButton, QAbstractSpinBox, QComboBox, QPlainTextEdit)
    return [w for w in page.findChildren(QWidget) if isinstance(w, kinds) and w.isVisible() and w.isEnabled()]


def start_a_long_run(qtbot, window, folder: Path):
    """Start a 400-step demo run from the Train page and wait for its first step."""
    window.dataset_page.set_folders([str(folder)])
    window.session.update(max_train_steps=400, validation_steps=0)
    window.show_page("train")
    page, model = window.train_page, window.controller.model
    with qtbot.waitSignal(model.steps_added, timeout=RUN_TIMEOUT):
        page.start_button.click()
    return page, model


@pytest.mark.slow
def test_three_actions_from_launch_to_a_running_training(qtbot, window, demo_folder):
    assert window.current_page() == "dataset"
    assert window.header.machine.recommendation_label.text().startswith("Recommended")
    page = window.dataset_page
    shown = visible_inputs(window)  # everything a newcomer can type in or press at launch
    assert len(shown) <= 8, [w.objectName() or type(w).__name__ for w in shown]
    assert page.trigger_edit in shown and window.header.train_button in shown

    # 1. drop the folder
    with qtbot.waitSignal(page.images_loaded, timeout=30_000):
        drop_folder(qtbot, page.drop_zone, demo_folder)
    assert window.session.config.data.dataset_dirs == [str(demo_folder)]
    # 2. type a trigger word
    qtbot.keyClicks(page.trigger_edit, "sks")
    assert window.session.config.data.trigger_word == "sks"
    # 3. press Train
    model = window.controller.model
    with qtbot.waitSignal(model.steps_added, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(window.header.train_button, Qt.MouseButton.LeftButton)
    assert window.current_page() == "train"
    assert model.status == "running" and model.step >= 1
    assert window.train_page.stack.currentWidget() is window.train_page.run_view
    config = window.controller.worker.config
    assert (config.model.model_flavour, config.data.resolution, config.data.trigger_word) == ("demo", 128, "sks")
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.train_page.run_view.stop_button.click()


@pytest.mark.slow
def test_a_demo_run_shows_points_samples_and_the_finished_state(qtbot, window, demo_folder):
    window.dataset_page.set_folders([str(demo_folder)])
    window.show_page("train")
    page = window.train_page
    model = window.controller.model
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        qtbot.mouseClick(page.recommended_button, Qt.MouseButton.LeftButton)
    assert model.status == "finished", model.failure
    view = page.run_view
    assert view.chart.point_count() == 4
    assert len(view.chart.raw_curve.getOriginalDataset()[0]) == 4
    steps = sorted({s.step for s in model.samples})
    assert steps == [0, 2, 4]  # at the start, every 2 steps, and at the end
    assert view.samples.step == 4 and list(view.samples.shown) == [0]  # the newest samples beside the chart
    assert view.outcome.isVisible() and view.outcome.title.text() == "Your LoRA is ready"
    assert view.outcome.samples_button.isVisible() and not view.samples.all_button.isVisible()  # offered once
    lora = Path(model.output_dir) / "pytorch_lora_weights.safetensors"
    assert lora.is_file()
    assert view.outcome.files.count() >= 1
    assert view.progress.value() == view.progress.maximum() == 4
    assert "Step 4 of 4" in view.stats_label.text()
    assert window.header.train_button.text().startswith("Train")
    samples = window.samples_page
    assert samples.gallery.model.columnCount() == 3
    assert samples.compare.left_combo.count() == 3

    # Export the LoRA of the (only kept) checkpoint in kohya layout.
    export = samples.export
    assert export.step_combo.currentData() == 4
    export.format_combo.setCurrentIndex(export.format_combo.findData("kohya"))
    with qtbot.waitSignal(export.exported, timeout=RUN_TIMEOUT) as exported:
        export.export_button.click()
    written = Path(exported.args[0])
    assert written.is_file() and written.parent == Path(model.output_dir) and "kohya" in written.name
    assert "Show in folder" in export.status.text()


@pytest.mark.slow
def test_stop_midway_then_reopen_the_run(qtbot, window, demo_folder, monkeypatch):
    page, model = start_a_long_run(qtbot, window, demo_folder)
    with qtbot.waitSignal(model.checkpoint_saved, timeout=RUN_TIMEOUT):
        page.run_view.save_button.click()  # Save now
    with qtbot.waitSignal(model.sample_added, timeout=RUN_TIMEOUT) as sampled:
        page.run_view.sample_button.click()  # Sample now
    assert sampled.args[0].step >= 1
    with qtbot.waitSignal(model.status_changed, check_params_cb=lambda s: s == "paused", timeout=RUN_TIMEOUT):
        page.run_view.pause_button.click()
    assert page.run_view.pause_button.text() == "Resume"
    assert page.run_view.phase_label.text() == f"Paused at step {model.step}"
    assert "paused" in page.run_view.stats_label.text() and "it/s" not in page.run_view.stats_label.text()
    with qtbot.waitSignal(model.status_changed, check_params_cb=lambda s: s == "running", timeout=RUN_TIMEOUT):
        page.run_view.pause_button.click()
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        page.run_view.stop_button.click()
    assert model.status == "stopped"
    assert 1 <= model.step < 400
    run_dir = Path(model.output_dir)
    assert (run_dir / "checkpoints" / f"step_{model.step}").is_dir()
    assert len(model.checkpoints) == 2  # the one asked for, and the one saved on stop
    assert page.run_view.outcome.resume_button.isVisible()
    stopped_at = model.step

    # Reopen it from the past runs list, after looking at something else.
    page.show_setup()
    model.clear()
    assert page.runs_list.count() == 1
    with qtbot.waitSignal(model.run_finished):
        page.open_run_button.click()
    assert model.reopened and model.status == "stopped"
    assert model.step == stopped_at
    log = page.run_view.log.toPlainText()  # the run's log.txt, as it was shown while it ran
    assert "Resumed at step" in log and f"Stopped at step {stopped_at}." in log
    assert log.index("Training 400 steps") < log.index("Checkpoint saved at step")
    assert page.run_view.chart.point_count() == stopped_at
    assert [step for step, _ in model.checkpoints][-1] == stopped_at
    assert page.stack.currentWidget() is page.run_view


def test_a_broken_dataset_shows_the_error_dialog_with_the_hint(qtbot, window, demo_folder):
    # The Dataset page saw four images; they are deleted behind its back, so only training finds out.
    with qtbot.waitSignal(window.dataset_page.images_loaded, timeout=RUN_TIMEOUT):
        window.dataset_page.set_folders([str(demo_folder)])
    for image in demo_folder.glob("*.jpg"):
        image.unlink()
    page = window.train_page
    model = window.controller.model
    with qtbot.waitSignals([model.run_failed, window.controller.run_ended], timeout=RUN_TIMEOUT):
        qtbot.mouseClick(window.header.train_button, Qt.MouseButton.LeftButton)
    assert "No usable images" in model.failure.message
    dialog = page.failure_dialog
    assert dialog is not None and dialog.isVisible()
    assert "No usable images" in dialog.text() and str(demo_folder) in dialog.text()
    assert "Check the dataset folders" in dialog.informativeText()
    outcome = page.run_view.outcome
    assert outcome.property("kind") == "failed" and outcome.dataset_button.isVisible()
    dialog.accept()
    # the Dataset page shows the folder as it is now (scanned again), one click away
    qtbot.waitUntil(lambda: window.dataset_page.stats().images == 0, timeout=RUN_TIMEOUT)
    outcome.dataset_button.click()
    assert window.current_page() == "dataset"


@pytest.mark.slow
def test_when_the_engine_process_dies_the_window_says_why_and_offers_to_resume(qtbot, window, demo_folder):
    page, model = start_a_long_run(qtbot, window, demo_folder)
    with qtbot.waitSignal(model.checkpoint_saved, timeout=RUN_TIMEOUT):
        page.run_view.save_button.click()
    (engine,) = engine_processes()
    with qtbot.waitSignals([model.run_failed, window.controller.run_ended], timeout=RUN_TIMEOUT):
        engine.kill()  # as the system's out-of-memory killer would
    assert window.isVisible() and model.status == "failed"
    dialog = page.failure_dialog
    assert dialog is not None and dialog.isVisible()
    assert "out of memory" in dialog.text() and "Resume continues from it" in dialog.informativeText()
    dialog.accept()
    outcome = page.run_view.outcome
    assert outcome.property("kind") == "failed" and outcome.resume_button.isVisible()
    saved = model.checkpoints[-1][0]
    outcome.resume_button.click()
    qtbot.waitUntil(lambda: model.step > saved, timeout=RUN_TIMEOUT)
    assert f"at step {saved}." in page.run_view.log.toPlainText()  # went on from it
    # the curve and the samples before the checkpoint are still there, and go on from it
    steps = list(model.series.steps)
    assert steps[: saved + 1] == list(range(1, saved + 2)) and steps == sorted(set(steps))
    assert [s.step for s in model.samples][:1] == [0]
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        page.run_view.stop_button.click()
    assert model.status == "stopped"


def test_invalid_settings_are_named_and_the_cursor_jumps_there(qtbot, window, demo_folder):
    window.dataset_page.set_folders([str(demo_folder)])
    window.show_page("train")
    page = window.train_page
    form = page.form
    resolution = form.rows["resolution"]
    resolution.editor.setValue(500)  # not a multiple of 64
    assert "multiple of 64" in resolution.error.text()
    learning_rate = form.rows["learning_rate"]
    learning_rate.editor.setText("fast")
    learning_rate.editor.editingFinished.emit()
    assert "must be a number" in learning_rate.error.text()
    page.start_button.click()
    assert not window.controller.running
    assert form.isVisible() and page.advanced_toggle.isChecked()
    summary = form.summary.text()
    assert "Resolution" in summary and "Learning rate" in summary
    assert QApplication.focusWidget() is learning_rate.focus_target()
    form.summary.linkActivated.emit("resolution")
    assert QApplication.focusWidget() is resolution.focus_target()
    learning_rate.editor.setText("2e-4")
    learning_rate.editor.editingFinished.emit()
    resolution.editor.setValue(512)
    assert window.session.config.optim.learning_rate == 2e-4
    assert not learning_rate.error.isVisible() and "Resolution" not in form.summary.text()


@pytest.mark.slow
def test_closing_during_a_run_asks_then_stops_with_a_checkpoint(qtbot, window, demo_folder, monkeypatch):
    window.dataset_page.set_folders([str(demo_folder)])
    window.session.update(max_train_steps=400, validation_steps=0)
    model = window.controller.model
    with qtbot.waitSignal(model.steps_added, timeout=RUN_TIMEOUT):
        window.train_page.start_button.click()
    asked = []
    monkeypatch.setattr(window, "ask_to_stop_on_close", lambda: asked.append(True) or True)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.close()
        assert window.isVisible()  # still open while the checkpoint is written
    assert asked == [True]
    assert model.status == "stopped"
    assert (Path(model.output_dir) / "checkpoints" / f"step_{model.step}").is_dir()
    assert not window.isVisible()


@pytest.mark.slow
def test_closing_again_while_it_saves_offers_to_quit_at_once(qtbot, window, demo_folder, monkeypatch):
    page, model = start_a_long_run(qtbot, window, demo_folder)
    asked = []
    monkeypatch.setattr(window, "ask_to_stop_on_close", lambda: asked.append("stop") or True)
    monkeypatch.setattr(window, "ask_to_quit_now", lambda: asked.append("quit now") or True)
    with qtbot.waitSignal(window.controller.run_ended, timeout=RUN_TIMEOUT):
        window.close()
        window.close()  # impatient: the engine process is ended without waiting for its checkpoint
    assert asked == ["stop", "quit now"]
    assert model.status == "stopped" and not window.controller.running
    assert not window.isVisible()
    assert page.failure_dialog is None or not page.failure_dialog.isVisible()  # ended on purpose: no failure


@pytest.mark.slow
def test_stop_ends_a_run_stuck_before_its_first_step(qtbot, window, demo_folder, silent_endpoint, monkeypatch):
    endpoint, connected = silent_endpoint
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # nothing can come from this endpoint anyway
    window.settings.hf_endpoint = endpoint
    window.dataset_page.set_folders([str(demo_folder)])
    window.session.update(model_flavour="base")
    window.show_page("train")
    page, model = window.train_page, window.controller.model
    page.start_button.click()
    assert connected.wait(60), "the run never asked the endpoint for the model"
    with qtbot.waitSignal(window.controller.run_ended, timeout=30_000):
        page.run_view.stop_button.click()  # the download it waits on will never answer
    assert model.status == "stopped" and model.step == 0
    assert page.failure_dialog is None or not page.failure_dialog.isVisible()


def test_the_advanced_drawer_says_what_the_simpletuner_noise_levels_do(qtbot, window, demo_folder):
    window.dataset_page.set_folders([str(demo_folder)])
    window.show_page("train")
    form = window.train_page.form
    noise = form.rows["flow_sigma_distribution"]
    assert noise.editor.currentText() == "chroma"
    assert "never trains noise levels between 0.25 and 0.75" in noise.help.text()
    noise.editor.setCurrentText("simpletuner")
    assert window.session.config.sigma_distribution == "simpletuner"
    form.rows["flow_use_uniform_schedule"].editor.setChecked(True)  # SimpleTuner's switch says otherwise
    assert "flow_use_uniform_schedule" in noise.error.text() and noise.error.isVisibleTo(form)
    noise.editor.setCurrentText("uniform")
    assert not noise.error.isVisibleTo(form) and window.session.config.sigma_distribution == "uniform"
