"""The main window: a header (pages, machine, recommendation, Train) over four pages.

It opens on the Dataset page. From there, a folder dropped on the window, a trigger word and the
Train button are all it takes to start a run with the settings recommended for this machine.
The window holds the menus, the status bar and closing; what the pages show and do is the
``Studio``'s, which the window makes and hands to each page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.gui.machine_info import MachineSummary
from chroma_studio.gui.pages.dataset import DatasetPage
from chroma_studio.gui.pages.machine import MachinePage
from chroma_studio.gui.pages.samples import SamplesPage
from chroma_studio.gui.pages.train import TrainPage
from chroma_studio.gui.run_controller import RunController
from chroma_studio.gui.session import PROJECT_SUFFIX, AppSettings, ProjectError, ProjectSession
from chroma_studio.gui.studio import Studio
from chroma_studio.gui.widgets.app_header import AppHeaderWidget
from chroma_studio.gui.widgets.queue_panel import QueueDrawerWidget, QueuePanelWidget
from chroma_studio.gui.widgets.settings_dialog import SettingsDialog
from chroma_studio.gui.window_geometry import initial_geometry

logger = logging.getLogger(__name__)

PROJECT_FILTER = f"Chroma Studio project (*{PROJECT_SUFFIX})"
NOTE_MS = 12_000  # how long a note stays in the status bar
GEOMETRY_KEY = "window/geometry"  # where the window was (without its frame) when it last closed
MAXIMIZED_KEY = "window/maximized"


class MainWindow(QMainWindow):
    machine_detected = Signal(object)  # MachineSummary

    def __init__(
        self,
        settings: AppSettings | None = None,
        detector: Callable[[], MachineSummary] | str | None = "detect",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Chroma Studio")
        self.studio = Studio(settings, detector, self)
        self.studio.restore_untitled_state()
        self._close_when_stopped = False

        self.header = AppHeaderWidget()
        self.dataset_page = DatasetPage(self.studio)
        self.train_page = TrainPage(self.studio)
        self.samples_page = SamplesPage(self.controller.model)
        self.machine_page = MachinePage(self.studio)
        self.pages = QStackedWidget()
        self.page_widgets = {
            "dataset": self.dataset_page,
            "train": self.train_page,
            "samples": self.samples_page,
            "machine": self.machine_page,
        }
        for page in self.page_widgets.values():
            self.pages.addWidget(page)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        self._build_queue_drawer()
        self._build_menus()
        self._connect()
        self.show_page("dataset")
        self._update_title()
        self._restore_geometry()
        if detector is not None:
            QTimer.singleShot(0, self.studio.detect_machine)
        QTimer.singleShot(0, self.queue_panel.offer_resume)  # the queue was stopped when the app closed

    # -- what the tests and the launcher reach through the window ---------------------------
    @property
    def settings(self) -> AppSettings:
        return self.studio.settings

    @property
    def session(self) -> ProjectSession:
        return self.studio.session

    @property
    def controller(self) -> RunController:
        return self.studio.controller

    @property
    def summary(self) -> MachineSummary | None:
        return self.studio.summary

    def set_machine_summary(self, summary: MachineSummary) -> None:
        self.studio.set_machine_summary(summary)

    # -- building --------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "&New project", self._on_new_action_triggered, QKeySequence.StandardKey.New)
        self._add_action(file_menu, "&Open project…", self._on_open_action_triggered, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        self._add_action(file_menu, "&Save project", self._on_save_action_triggered, QKeySequence.StandardKey.Save)
        self._add_action(
            file_menu, "Save project &as…", self._on_save_as_action_triggered, QKeySequence.StandardKey.SaveAs
        )
        file_menu.addSeparator()
        self._add_action(file_menu, "Open a &run folder…", self._on_open_run_action_triggered)
        self._add_action(
            file_menu, "Se&ttings…", self._on_settings_action_triggered, QKeySequence.StandardKey.Preferences
        )
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        queue_menu = self.menuBar().addMenu("&Queue")
        queue_menu.addAction(self.queue_drawer.toggle_action)
        self._add_action(queue_menu, "&Add these settings to the queue", self._on_add_to_queue_action_triggered)
        self._add_action(queue_menu, "&Run the queue", self._on_run_queue_action_triggered)
        help_menu = self.menuBar().addMenu("&Help")
        self._add_action(help_menu, "&About Chroma Studio", self._on_about_action_triggered)

    def _add_action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect(self) -> None:
        self.header.page_requested.connect(self.show_page)
        self.header.train_requested.connect(self._on_header_train_requested)
        self.train_page.note_posted.connect(self._on_train_page_note_posted)
        self.train_page.queue_requested.connect(self.show_queue)
        self.queue_panel.run_open_requested.connect(self._on_queue_panel_run_open_requested)
        self.studio.queue.queue_finished.connect(self._on_queue_finished)
        self.train_page.dataset_page_requested.connect(lambda: self.show_page("dataset"))
        self.train_page.samples_page_requested.connect(lambda: self.show_page("samples"))
        self.train_page.machine_page_requested.connect(lambda: self.show_page("machine"))
        self.machine_page.recommendation_applied.connect(self._on_machine_page_recommendation_applied)
        self.studio.machine_detected.connect(self.header.machine.set_summary)
        self.studio.machine_detection_failed.connect(self.header.machine.set_failed)
        self.studio.machine_detected.connect(self.machine_detected)  # after the pages have shown it
        self.studio.project_changed.connect(self._on_studio_project_changed)
        model = self.controller.model
        model.status_changed.connect(self._on_model_status_changed)
        model.steps_added.connect(self._on_model_steps_added)
        model.phase_changed.connect(self._on_model_phase_changed)
        model.run_failed.connect(self._on_model_run_failed)
        self.controller.run_ended.connect(self._on_controller_run_ended)

    # -- where the window opens (its size is the user's: nothing here resizes it later) ----
    def _restore_geometry(self) -> None:
        qsettings = self.settings.qsettings
        remembered = qsettings.value(GEOMETRY_KEY)
        wanted = remembered if isinstance(remembered, QRect) else None
        self.setGeometry(initial_geometry(wanted, self.minimumSizeHint()))
        if qsettings.value(MAXIMIZED_KEY, False, type=bool):
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)

    def _remember_geometry(self) -> None:
        qsettings = self.settings.qsettings
        maximized = self.isMaximized()
        qsettings.setValue(GEOMETRY_KEY, self.normalGeometry() if maximized else self.geometry())
        qsettings.setValue(MAXIMIZED_KEY, maximized)

    def _build_queue_drawer(self) -> None:
        """The queue of runs, in a drawer over the pages' right edge (hidden until asked for)."""
        self.queue_panel = QueuePanelWidget(self.studio.queue)
        self.queue_drawer = QueueDrawerWidget(self.queue_panel, self.pages)

    def show_queue(self) -> None:
        self.queue_drawer.show()

    def _on_add_to_queue_action_triggered(self) -> None:
        self.show_page("train")
        self.train_page.add_to_queue()

    def _on_run_queue_action_triggered(self) -> None:
        self.show_queue()
        self.queue_panel.run_queue()

    def _on_queue_panel_run_open_requested(self, output_dir: str) -> None:
        self.show_page("train")
        self.train_page.open_run(output_dir)

    def _on_queue_finished(self, ran: int, failed: int) -> None:
        failures = f", {failed} failed" if failed else ""
        self.statusBar().showMessage(f"The queue of runs is done: {ran - failed} of {ran} finished{failures}.", NOTE_MS)
        QApplication.alert(self)  # the taskbar entry asks for attention when the window is in the background

    # -- pages -----------------------------------------------------------------------------
    def show_page(self, key: str) -> None:
        self.pages.setCurrentWidget(self.page_widgets[key])
        self.header.set_current_page(key)

    def current_page(self) -> str:
        widget = self.pages.currentWidget()
        return next(k for k, w in self.page_widgets.items() if w is widget)

    def _on_machine_page_recommendation_applied(self) -> None:
        self.statusBar().showMessage("The recommended settings are applied.", 4000)

    # -- training --------------------------------------------------------------------------
    def _on_header_train_requested(self) -> None:
        self.show_page("train")
        if not self.controller.running:
            self.train_page.start()

    def _on_train_page_note_posted(self, text: str) -> None:
        self.statusBar().showMessage(text, NOTE_MS)

    def _on_model_status_changed(self, status: str) -> None:
        self.header.set_run_status(status)
        self._update_status_line()

    def _on_model_steps_added(self) -> None:
        self._update_status_line()

    def _on_model_phase_changed(self, phase: str, detail: str) -> None:
        self._update_status_line()

    def _update_status_line(self) -> None:
        model = self.controller.model
        if model.status == "idle":
            self.status_label.setText("")
            return
        text = f"{model.status.capitalize()}"
        if model.total_steps:
            text += f" · step {model.step} of {model.total_steps}"
        if model.active and model.phase_detail and model.phase not in ("training", "paused"):
            text += f" · {model.phase_detail}"
        self.status_label.setText(text)

    def _on_model_run_failed(self, failure: Any) -> None:
        if failure.topic == "dataset":  # training saw the folders differently: show them as they are now
            self.dataset_page.rescan()

    def _on_controller_run_ended(self, result: Any) -> None:
        if self._close_when_stopped:
            self.close()

    # -- projects --------------------------------------------------------------------------
    def _on_studio_project_changed(self) -> None:
        self._update_title()

    def _update_title(self) -> None:
        mark = "*" if self.session.dirty else ""
        self.setWindowTitle(f"{self.session.name}{mark} — Chroma Studio")

    def open_project(self, path: str) -> bool:
        try:
            self.studio.open_project(path)
        except ProjectError as exc:
            QMessageBox.warning(self, "Open project", str(exc))
            self.settings.remove_recent_project(path)
            return False
        self.train_page.show_setup()
        return True

    def save_project(self, path: str | None = None) -> bool:
        if path is None and self.session.path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save project", self.session.name, PROJECT_FILTER)
            if not path:
                return False
        try:
            self.session.save(path)
        except OSError as exc:
            QMessageBox.warning(self, "Save project", f"The project could not be saved: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {self.session.path}", 4000)
        return True

    def _on_new_action_triggered(self) -> None:
        if self.session.path is not None and self.session.dirty:
            self.save_project()
        self.studio.new_project()
        self.show_page("dataset")

    def _on_open_action_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_projects
        for path in recent:
            action = self.recent_menu.addAction(Path(path).stem)
            action.setToolTip(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_project(p))
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    def _on_save_action_triggered(self) -> None:
        self.save_project(str(self.session.path) if self.session.path else None)

    def _on_save_as_action_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", self.session.name, PROJECT_FILTER)
        if path:
            self.save_project(path)

    def _on_open_run_action_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", self.settings.output_folder)
        if folder:
            self.show_page("train")
            self.train_page.open_run(folder)

    def _on_settings_action_triggered(self) -> None:
        SettingsDialog(self.settings, self).exec()

    def _on_about_action_triggered(self) -> None:
        QMessageBox.about(
            self,
            "About Chroma Studio",
            "<b>Chroma Studio</b><br>Train LoRAs for Chroma 1 on your own machine.<br>"
            "Drop in images, fix captions, press Train, watch it learn.",
        )

    # -- closing ---------------------------------------------------------------------------
    def ask_to_stop_on_close(self) -> bool:
        """Ask whether to stop the run in progress (True: stop it, save a checkpoint, then close)."""
        answer = QMessageBox.question(
            self,
            "Training is running",
            "Stop the training and close Chroma Studio?\n\nA checkpoint is saved first, so you can resume later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_to_quit_now(self) -> bool:
        """Asked when the window is closed again while the run is still saving its checkpoint."""
        answer = QMessageBox.question(
            self,
            "Still saving",
            "The run is still saving its checkpoint. Quit now without waiting?\n\n"
            "Checkpoints already saved are kept; the steps since the last one are lost.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.running:
            if not self._close_when_stopped:
                if not self.ask_to_stop_on_close():
                    event.ignore()
                    return
                self._close_when_stopped = True
                if self.studio.queue.running:  # the running entry resumes first on the next start
                    self.studio.queue.stop()
                else:
                    self.controller.stop()
                self.statusBar().showMessage("Saving a checkpoint, then closing…")
            elif self.ask_to_quit_now():
                self.controller.kill()
            event.ignore()  # closes again when the run has ended
            return
        if self.session.path is not None and self.session.dirty:
            self.save_project(str(self.session.path))
        elif self.session.path is None:
            self.studio.save_untitled_state()
        self._remember_geometry()
        self.machine_page.shutdown()
        self.dataset_page.shutdown()
        self.samples_page.export.shutdown()
        self.studio.shutdown()
        super().closeEvent(event)
