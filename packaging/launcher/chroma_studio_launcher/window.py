"""The first-run setup window: what was detected, the PyTorch build (changeable), progress, log, retry.

Setup runs in a worker moved to a QThread; cancelling sets a threading.Event that stops the
running command. Nothing here decides anything: ``prepare(backend)`` returns the plan and work.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import APP_NAME
from .decide import BACKENDS, Plan, Unsupported
from .install import InstallState, SetupCancelled, SetupError, Work, run_setup

Prepare = Callable[[str | None], tuple[Plan | Unsupported, Work]]


class SetupWorker(QObject):
    """Runs run_setup() on its thread and reports through signals."""

    line_logged = Signal(str)
    progress_changed = Signal(int, int, str)
    finished = Signal(object)  # InstallState, or the exception that stopped setup

    def __init__(self, plan: Plan, work: Work, setup_kwargs: dict, cancel) -> None:
        super().__init__()
        self._plan = plan
        self._work = work
        self._setup_kwargs = setup_kwargs
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        try:
            state = run_setup(
                self._plan,
                self._work,
                log=self.line_logged.emit,
                progress=self.progress_changed.emit,
                cancel=self._cancel,
                **self._setup_kwargs,
            )
        except (SetupError, SetupCancelled) as exc:
            self.finished.emit(exc)
        except Exception as exc:  # shown and logged, never swallowed
            self.line_logged.emit(traceback.format_exc())
            self.finished.emit(SetupError(f"Unexpected error: {exc}"))
        else:
            self.finished.emit(state)


class SetupWindow(QWidget):
    setup_succeeded = Signal(object)

    def __init__(
        self,
        prepare: Prepare,
        choices: tuple[str, ...],
        setup_kwargs: dict,
        on_ready: Callable[[InstallState], None],
        log_file: Callable[[str], None],
        install_dir: str,
        auto_start: bool = False,
    ) -> None:
        super().__init__()
        self._prepare = prepare
        self._setup_kwargs = setup_kwargs
        self._on_ready = on_ready
        self._log_file = log_file
        self._thread: QThread | None = None
        self._worker: SetupWorker | None = None
        self._cancel = None
        self._started_at = 0.0
        self._step = ""
        self._plan: Plan | Unsupported | None = None
        self._work = Work.INSTALL
        self.setWindowTitle(f"{APP_NAME} setup")
        self.resize(760, 560)

        self._title = QLabel()
        self._title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self._detected = QLabel(wordWrap=True)
        self._backend = QComboBox()
        self._backend.addItem("Automatic (recommended)", None)
        for key in choices:
            self._backend.addItem(BACKENDS[key].label, key)
        self._reason = QLabel(wordWrap=True)
        self._warning = QLabel(wordWrap=True)
        self._warning.setStyleSheet("color: #b35900;")
        self._where = QLabel(wordWrap=True)
        self._where.setText(f"Everything is installed into {install_dir} (removable at any time).")
        self._where.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._progress = QProgressBar()
        self._progress.setRange(0, 100)
        self._status = QLabel(wordWrap=True)
        self._log = QPlainTextEdit(readOnly=True)
        self._log.setMaximumBlockCount(20000)
        self._log.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self._copy = QPushButton("Copy log")
        self._cancel_button = QPushButton("Cancel")
        self._install = QPushButton("Install")
        self._install.setDefault(True)
        self._ticker = QTimer(self, interval=1000)

        choice_row = QHBoxLayout()
        choice_row.addWidget(QLabel("PyTorch build:"))
        choice_row.addWidget(self._backend, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self._copy)
        buttons.addStretch(1)
        buttons.addWidget(self._cancel_button)
        buttons.addWidget(self._install)
        layout = QVBoxLayout(self)
        for widget in (self._title, self._detected):
            layout.addWidget(widget)
        layout.addLayout(choice_row)
        for widget in (self._reason, self._warning, self._where, self._progress, self._status):
            layout.addWidget(widget)
        layout.addWidget(self._log, 1)
        layout.addLayout(buttons)

        self._backend.currentIndexChanged.connect(self._on_backend_current_index_changed)
        self._copy.clicked.connect(self._on_copy_clicked)
        self._cancel_button.clicked.connect(self._on_cancel_clicked)
        self._install.clicked.connect(self._on_install_clicked)
        self._ticker.timeout.connect(self._on_ticker_timeout)
        self._on_backend_current_index_changed()
        if auto_start:
            QTimer.singleShot(0, self._on_install_clicked)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def log_text(self) -> str:
        return self._log.toPlainText()

    def _on_backend_current_index_changed(self, _index: int = 0) -> None:
        self._plan, self._work = self._prepare(self._backend.currentData())
        plan = self._plan
        if self._backend.currentData() is None and isinstance(plan, Plan):
            self._backend.setItemText(0, f"Automatic: {plan.label}")
        verb = "Updating" if self._work is Work.UPDATE else "Setting up"
        self._title.setText(f"{verb} {APP_NAME}")
        self._detected.setText(f"Detected: {plan.detected}")
        if isinstance(plan, Unsupported):
            self._reason.setText(plan.reason)
            self._warning.setText("")
            self._install.setEnabled(False)
            return
        source = f"from {plan.find_links} (offline)" if plan.offline else f"download {plan.download}"
        self._reason.setText(f"<b>{plan.label}</b> — {plan.reason}<br>Python {plan.python}, {source}.")
        self._warning.setText(" ".join(plan.warnings))
        self._install.setEnabled(not self.running)

    def _on_install_clicked(self) -> None:
        if self.running or not isinstance(self._plan, Plan):
            return
        self._cancel = threading.Event()
        self._worker = SetupWorker(self._plan, self._work, self._setup_kwargs, self._cancel)
        self._thread = QThread(self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.line_logged.connect(self._on_worker_line_logged)
        self._worker.progress_changed.connect(self._on_worker_progress_changed)
        self._worker.finished.connect(self._thread.quit, Qt.DirectConnection)
        self._worker.finished.connect(self._on_worker_finished)
        self._set_running(True)
        self._on_worker_line_logged(f"Detected: {self._plan.detected}")
        self._on_worker_line_logged(f"Plan: {self._plan.label} ({self._plan.backend}) — {self._plan.reason}")
        self._thread.start()

    def _set_running(self, running: bool) -> None:
        self._backend.setEnabled(not running)
        self._install.setEnabled(not running and isinstance(self._plan, Plan))
        self._cancel_button.setText("Cancel")
        if running:
            self._started_at = time.monotonic()
            self._ticker.start()
        else:
            self._ticker.stop()

    def _on_worker_line_logged(self, line: str) -> None:
        self._log_file(line)
        self._log.appendPlainText(line)

    def _on_worker_progress_changed(self, done: int, total: int, title: str) -> None:
        self._progress.setValue(100 * done // total if total else 100)
        self._step = title
        self._on_ticker_timeout()

    def _on_ticker_timeout(self) -> None:
        elapsed = int(time.monotonic() - self._started_at)
        self._status.setText(f"{self._step}…  {elapsed // 60}:{elapsed % 60:02d}")

    def _on_worker_finished(self, result: object) -> None:
        if self._thread is None:  # the window closed while the worker was stopping
            return
        self._thread.wait()
        self._thread.deleteLater()
        self._thread = None
        self._worker = None
        self._set_running(False)
        if isinstance(result, InstallState):
            self._status.setText(f"Ready. Starting {APP_NAME}…")
            self.setup_succeeded.emit(result)
            self._on_ready(result)
            self.close()
            return
        if isinstance(result, SetupCancelled):
            self._status.setText("Cancelled. Choose Install to start again.")
            self._install.setText("Install")
        else:
            self._status.setText(f"<span style='color:#b00020'><b>Setup failed.</b> {result}</span>")
            self._on_worker_line_logged(f"Setup failed: {result}")
            self._install.setText("Retry")
        self._progress.setValue(0)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.log_text())
        self._status.setText("The log is on the clipboard.")

    def _on_cancel_clicked(self) -> None:
        if self.running and self._cancel is not None:
            self._cancel.set()
            self._status.setText("Cancelling…")
        else:
            self.close()

    def closeEvent(self, event) -> None:
        if self._thread is not None:
            if self._cancel is not None:
                self._cancel.set()
            self._thread.quit()
            self._thread.wait()
            self._thread = None
            self._worker = None
        super().closeEvent(event)


def run_window(**window_kwargs) -> int:
    """Show the setup window until setup succeeds (the app is started) or the user closes it."""
    app = QApplication.instance() or QApplication([])
    app.setApplicationName(APP_NAME)
    window = SetupWindow(**window_kwargs)
    succeeded: list[InstallState] = []
    window.setup_succeeded.connect(succeeded.append)
    window.show()
    app.exec()
    return 0 if succeeded else 1
