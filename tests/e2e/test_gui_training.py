"""A whole small training driven through the window, as a user would: detect the machine, drop a
folder of photos, type the trigger word, pick the demo model, shorten the run in the Advanced
drawer, train, watch the chart and samples, look at the samples, save the project, close, and
reopen the project and its run in a new window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from chroma_studio.gui.main_window import MainWindow

pytestmark = pytest.mark.slow  # a whole training run through the window

TIMEOUT = 180_000


def drop(target, folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, QDragEnterEvent(QPoint(30, 30), *args))
    QApplication.sendEvent(target, QDropEvent(QPointF(30, 30), *args))


def set_spin(form, key: str, value: int) -> None:
    spin = form.rows[key].editor
    spin.setFocus()
    spin.lineEdit().selectAll()
    spin.lineEdit().setText(str(value))
    spin.editingFinished.emit()
    spin.interpretText()


def test_train_a_demo_lora_through_the_window(qtbot, settings, photos, tmp_path):
    window = MainWindow(settings)  # the real machine detection
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.machine_detected, timeout=30_000):
        window.show()
    assert window.current_page() == "dataset"

    # Dataset: drop the folder, type the trigger word.
    page = window.dataset_page
    with qtbot.waitSignal(page.images_loaded, timeout=30_000) as loaded:
        drop(page.drop_zone, photos)
    assert loaded.args == [6]
    qtbot.keyClicks(page.trigger_edit, "sks")

    # Machine & model: the demo model (nothing to download).
    qtbot.mouseClick(window.header.machine, Qt.MouseButton.LeftButton)
    window.machine_page.flavour_buttons["demo"].click()

    # Train: a short run, set in the Advanced drawer.
    window.show_page("train")
    train = window.train_page
    train.advanced_toggle.click()
    form = train.form
    form.rows["mixed_precision"].editor.setCurrentText("no")
    for key, value in {
        "resolution": 128,
        "lora_rank": 4,
        "max_train_steps": 6,
        "validation_steps": 3,
        "validation_num_inference_steps": 2,
        "validation_resolution": 64,
        "checkpointing_steps": 3,
    }.items():
        set_spin(form, key, value)
    config = window.session.config
    assert (config.data.resolution, config.optim.max_train_steps, config.validation.validation_resolution) == (
        128,
        6,
        64,
    )
    assert not form.summary.isVisible() or "Error" not in form.summary.text()

    model = window.controller.model
    with qtbot.waitSignals([model.steps_added, model.sample_added], timeout=TIMEOUT):
        qtbot.mouseClick(train.start_button, Qt.MouseButton.LeftButton)
    assert model.active
    with qtbot.waitSignal(window.controller.run_ended, timeout=TIMEOUT):
        pass
    assert model.status == "finished", model.failure
    view = train.run_view
    assert view.chart.point_count() == 6
    assert sorted({s.step for s in model.samples}) == [0, 3, 6]
    assert view.outcome.title.text() == "Your LoRA is ready"
    run_dir = Path(model.output_dir)
    lora = run_dir / "pytorch_lora_weights.safetensors"
    assert lora.is_file()
    header_length = int.from_bytes(lora.read_bytes()[:8], "little")
    header = json.loads(lora.read_bytes()[8 : 8 + header_length])
    assert header["__metadata__"]["chroma_studio.trigger_word"] == "sks"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 6

    # Samples: the grid, one picture enlarged.
    window.show_page("samples")
    samples = window.samples_page
    grid = samples.gallery.model
    assert (grid.rowCount(), grid.columnCount()) == (1, 3)
    rect = samples.gallery.view.visualRect(grid.index(0, 2))
    qtbot.mouseClick(samples.gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert samples.viewer.isVisible() and samples.viewer.sample.step == 6
    samples.viewer.reject()

    # Save the project and close the window.
    project = tmp_path / "cat lora"
    assert window.save_project(str(project))
    with qtbot.waitSignal(window.destroyed, timeout=10_000, raising=False):
        window.close()
    assert not window.isVisible()

    # A new window: the project from the recent list, and its run with chart and samples.
    again = MainWindow(settings, detector=None)
    qtbot.addWidget(again)
    again.show()
    again.recent_menu.aboutToShow.emit()  # File > Open recent
    recent = [a for a in again.recent_menu.actions() if a.text() == "cat lora"]
    assert recent and recent[0].toolTip().endswith("cat lora.chromastudio")
    recent[0].trigger()
    assert again.session.path is not None and again.session.path.name == "cat lora.chromastudio"
    assert again.dataset_page.folders() == [str(photos)]
    assert again.dataset_page.trigger_word() == "sks"
    assert again.session.config.optim.max_train_steps == 6
    again.show_page("train")
    assert again.train_page.runs_list.count() == 1
    again.train_page.open_run_button.click()
    reopened = again.controller.model
    assert reopened.reopened and reopened.status == "finished"
    assert again.train_page.run_view.chart.point_count() == 6
    assert len(reopened.samples) == 3
    assert again.samples_page.gallery.model.columnCount() == 3
    again.close()
    again.dataset_page.wait_for_background(10_000)
