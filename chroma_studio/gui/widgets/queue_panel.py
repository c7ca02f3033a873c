"""``QueuePanelWidget``: the queue of runs, narrow enough for a drawer beside the pages.

    Queue of runs
    (who else runs the queue, when the command line does)
    (news: the queue is done, a run could not start)
    #2 portraits-20261206-0812           <- waiting, running, finished, failed runs in order
       running · step 3 of 400
    #3 ...
    [↑] [↓] [Remove] [Open run]
    [          Run queue          ]

It shows a ``QueueModel`` and calls its verbs; opening a finished run is asked of the window
(``run_open_requested``), which shows it on the Train page. ``QueueDrawerWidget`` holds it in a
drawer that slides over the right edge of the pages: the window keeps its size (a dock beside the
pages would widen a 1024 px window, whose header alone needs most of that).
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.base.run_queue import EntryStatus, QueueEntry, QueueError
from chroma_studio.gui.queue_model import QueueModel
from chroma_studio.gui.widgets.message_bar import MessageBarWidget

DRAWER_WIDTH = 320
EMPTY_TEXT = "Runs added with “Add to queue” on the Train page wait here, and train one after another."


def describe_entry(entry: QueueEntry, live_step: int | None = None) -> str:
    """Two lines: "#2 name", then "running · step 3 of 400" or "finished · 4 steps · 08:12"."""
    total = entry.config.get("max_train_steps") or 0
    step = live_step if live_step is not None else entry.step
    state = entry.label
    if entry.status is EntryStatus.RUNNING or (entry.resume and step):
        state += f" · step {step} of {total}" if total else f" · step {step}"
    elif entry.status is EntryStatus.FINISHED:
        state += f" · {step} steps"
    if entry.ended:
        state += f" · {datetime.fromtimestamp(entry.ended):%H:%M}"
    return f"#{entry.id} {entry.name}\n{state}"


class QueuePanelWidget(QWidget):
    run_open_requested = Signal(str)  # a finished (or failed, or stopped) run's folder

    def __init__(self, queue: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.resume_dialog: QMessageBox | None = None
        title = QLabel("Queue of runs")
        title.setObjectName("sectionTitle")
        self.busy_label = QLabel()
        self.busy_label.setObjectName("hintLabel")
        self.busy_label.setWordWrap(True)
        self.message_bar = MessageBarWidget()
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("hintLabel")
        self.empty_label.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.list.setSpacing(3)
        self.up_button = QPushButton("↑")
        self.up_button.setToolTip("Run this one earlier")
        self.down_button = QPushButton("↓")
        self.down_button.setToolTip("Run this one later")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take it off the queue (a run folder it made is kept)")
        self.open_button = QPushButton("Open run")
        self.open_button.setToolTip("Show this run's curve, samples and files on the Train page")
        self.run_button = QPushButton("Run queue")
        self.run_button.setObjectName("startButton")
        self.run_button.setMinimumHeight(36)
        buttons = QHBoxLayout()
        for button in (self.up_button, self.down_button, self.remove_button, self.open_button):
            buttons.addWidget(button)
        self.up_button.setMaximumWidth(36)
        self.down_button.setMaximumWidth(36)
        self.close_button = QToolButton()  # shown in a drawer
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Hide the queue (it keeps running)")
        self.close_button.hide()
        title_row = QHBoxLayout()
        title_row.addWidget(title, 1)
        title_row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(title_row)
        layout.addWidget(self.busy_label)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.run_button)

        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(1))
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.run_button.clicked.connect(self._on_run_button_clicked)
        self.list.currentRowChanged.connect(self._update_buttons)
        self.list.itemActivated.connect(self._on_list_item_activated)
        queue.entries_changed.connect(self._refresh)
        queue.busy_changed.connect(self._on_queue_busy_changed)
        queue.running_changed.connect(self._update_buttons)
        queue.queue_finished.connect(self._on_queue_finished)
        queue.problem_found.connect(lambda text: self.message_bar.show_message(text, "error"))
        queue.controller.model.steps_added.connect(self._on_model_steps_added)
        self._on_queue_busy_changed(queue.busy)
        if queue.error:
            self.message_bar.show_message(queue.error, "error")
        self._refresh()

    # -- showing ---------------------------------------------------------------------------------
    def selected(self) -> QueueEntry | None:
        item = self.list.currentItem()
        if item is None:
            return None
        wanted = item.data(Qt.ItemDataRole.UserRole)
        return next((e for e in self.queue.entries if e.id == wanted), None)

    def _refresh(self) -> None:
        chosen = self.selected()
        self.list.clear()
        for entry in self.queue.entries:
            item = QListWidgetItem(describe_entry(entry, self._live_step(entry)))
            item.setData(Qt.ItemDataRole.UserRole, entry.id)
            item.setToolTip(f"{entry.output_dir}\n{entry.result}".strip())
            self.list.addItem(item)
            if chosen is not None and entry.id == chosen.id:
                self.list.setCurrentItem(item)
        self.empty_label.setVisible(not self.queue.entries)
        self._update_buttons()

    def _live_step(self, entry: QueueEntry) -> int | None:
        current = self.queue.current
        return self.queue.controller.model.step if current is not None and current.id == entry.id else None

    def _on_model_steps_added(self) -> None:
        current = self.queue.current
        if current is None:
            return
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == current.id:
                item.setText(describe_entry(current, self._live_step(current)))

    def _update_buttons(self) -> None:
        entry = self.selected()
        editable = entry is not None and not self.queue.error
        self.up_button.setEnabled(editable)
        self.down_button.setEnabled(editable)
        self.remove_button.setEnabled(editable and entry.status is not EntryStatus.RUNNING)
        self.open_button.setEnabled(
            entry is not None and entry.status in (EntryStatus.FINISHED, EntryStatus.FAILED, EntryStatus.STOPPED)
        )
        if self.queue.running:
            self.run_button.setText("Stop queue")
            self.run_button.setToolTip("Stop the running entry with a checkpoint; it resumes first next time.")
            self.run_button.setEnabled(True)
        else:
            self.run_button.setText("Run queue")
            self.run_button.setToolTip("Train the waiting runs one after another.")
            self.run_button.setEnabled(not self.queue.busy and bool(self.queue.queue.waiting()))

    def _on_queue_busy_changed(self, busy: str) -> None:
        self.busy_label.setText(f"{busy} The app does not run it meanwhile." if busy else "")
        self.busy_label.setVisible(bool(busy))
        self._update_buttons()

    def _on_queue_finished(self, ran: int, failed: int) -> None:
        if failed:
            text, level = f"The queue is done: {ran - failed} of {ran} runs finished, {failed} failed.", "warning"
        else:
            text, level = f"The queue is done: {'the run' if ran == 1 else f'all {ran} runs'} finished.", "info"
        self.message_bar.show_message(text, level)

    # -- acting ----------------------------------------------------------------------------------
    def _move(self, offset: int) -> None:
        entry = self.selected()
        if entry is not None:
            self._try(lambda: self.queue.move(entry.id, offset))

    def _on_remove_button_clicked(self) -> None:
        entry = self.selected()
        if entry is not None:
            self._try(lambda: self.queue.remove(entry.id))

    def _try(self, change) -> None:
        try:
            change()
        except (QueueError, OSError) as exc:
            self.message_bar.show_message(str(exc), "error")

    def _on_open_button_clicked(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.run_open_requested.emit(entry.output_dir)

    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        entry = self.selected()
        if entry is not None and entry.status in (EntryStatus.FINISHED, EntryStatus.FAILED, EntryStatus.STOPPED):
            self.run_open_requested.emit(entry.output_dir)

    def _on_run_button_clicked(self) -> None:
        if self.queue.running:
            self.queue.stop()
            self.message_bar.show_message("Stopping the running entry; a checkpoint is saved first.")
            return
        self.run_queue()

    def run_queue(self) -> bool:
        why = self.queue.run()
        if why:
            self.message_bar.show_message(why, "warning")
            return False
        self.message_bar.clear()
        return True

    def offer_resume(self) -> QMessageBox | None:
        """At start: when the queue was interrupted (the app closed during a run), ask whether to go on."""
        interrupted = self.queue.interrupted()
        if not interrupted or self.queue.running:
            return None
        first = interrupted[0]
        dialog = QMessageBox(
            QMessageBox.Icon.Question,
            "Resume the queue?",
            f"The queue of runs was stopped during “{first.name}” (a checkpoint was saved). Resume it now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        dialog.setObjectName("queueResumeDialog")
        dialog.setInformativeText("It continues from its checkpoint first, then the runs that wait after it.")
        dialog.setDefaultButton(QMessageBox.StandardButton.Yes)
        dialog.finished.connect(self._on_resume_dialog_finished)
        self.resume_dialog = dialog
        dialog.open()  # window-modal, does not block the event loop
        return dialog

    def _on_resume_dialog_finished(self, code: int) -> None:
        if code == QMessageBox.StandardButton.Yes:
            self.run_queue()
        else:
            self.message_bar.show_message("The interrupted run waits first in line; press Run queue to resume it.")


class QueueDrawerWidget(QFrame):
    """The queue panel in a drawer over the right edge of ``host``; ``toggle_action`` shows and hides it."""

    def __init__(self, panel: QueuePanelWidget, host: QWidget) -> None:
        super().__init__(host)
        self.setObjectName("queueDrawer")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.panel = panel
        self.host = host
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel)
        panel.close_button.show()
        panel.close_button.clicked.connect(self.hide)
        self.toggle_action = QAction("&Show the queue of runs", self)
        self.toggle_action.setCheckable(True)
        self.toggle_action.toggled.connect(self.setVisible)
        host.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.host and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

    def _place(self) -> None:
        width = min(DRAWER_WIDTH, self.host.width())
        self.setGeometry(self.host.width() - width, 0, width, self.host.height())
        self.raise_()

    def showEvent(self, event: QShowEvent) -> None:
        self._place()
        self.toggle_action.setChecked(True)
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self.toggle_action.setChecked(False)
        super().hideEvent(event)
