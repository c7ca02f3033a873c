"""``AutoCaptionDialog``: "Caption images…" on the Dataset page, from the choices to the first captions.

Two steps in one dialog. First the choices (``AutoCaptionForm``); Start begins the pass
(``AutoCaptionRun``). Then the first captions, written and shown with their pictures as they
arrive: Accept lets the pass caption the rest (the dialog closes; the page's progress line shows
images/s, the time left and Cancel, and the grid shows each caption as it is written), Change style
puts those captions back, byte for byte, and returns to the choices, Cancel keeps them and stops.
Sized to fit a 1024x640 window.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.dataset.captioners import GB, CaptionerChoice, recommend_captioner
from chroma_studio.gui.dataset.auto_caption_form import AutoCaptionForm
from chroma_studio.gui.dataset.auto_caption_run import PREVIEW_COUNT, AutoCaptionRun, PassOutcome, Stage
from chroma_studio.gui.dataset.items import DatasetItem
from chroma_studio.gui.machine_info import MachineSummary

THUMB_PX = 88
DIALOG_SIZE = (760, 540)  # inside a 1024x640 window with its title bar and margins

Thumbnail = Callable[[str], QPixmap | None]


def recommended_choice(summary: MachineSummary | None) -> CaptionerChoice:
    """The captioner the catalogue recommends for the detected machine (a CPU when none was detected)."""
    if summary is None or not summary.devices:
        return recommend_captioner("cpu", 0)
    device = summary.devices[0]
    memory = device.total_bytes if device.kind in ("cuda", "rocm") else summary.ram_total
    return recommend_captioner(device.kind, memory, summary.ram_total)


def recommended_captioner(summary: MachineSummary | None) -> str:
    return recommended_choice(summary).name


class AutoCaptionDialog(QDialog):
    def __init__(
        self,
        run: AutoCaptionRun,
        items: Sequence[DatasetItem],
        selected: Sequence[DatasetItem],
        trigger_word: str,
        recommended: str,
        downloaded: Collection[str] = (),
        thumbnail: Thumbnail | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Caption images")
        self.run = run
        self._thumbnail = thumbnail or (lambda _path: None)
        self._shown: list[QLabel] = []  # the captions of the preview
        self.form = AutoCaptionForm(items, selected, trigger_word, recommended, downloaded)
        self.error_label = QLabel(wordWrap=True)
        self.error_label.setObjectName("autoCaptionError")
        self.error_label.setStyleSheet("#autoCaptionError { color: #c62828; }")
        self.error_label.hide()
        self.start_button = QPushButton("Start", default=True)
        self.close_button = QPushButton("Close")
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_choices())
        self.stack.addWidget(self._build_preview())
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        self.resize(*DIALOG_SIZE)
        self.form.changed.connect(self._update_start)
        self.start_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        self.accept_button.clicked.connect(self.run.accept)
        self.change_button.clicked.connect(self.run.change_style)
        self.cancel_button.clicked.connect(self.run.cancel)
        run.stage_changed.connect(self._on_run_stage_changed)
        run.caption_written.connect(self._on_run_caption_written)
        run.status_changed.connect(self.status_label.setText)
        run.ended.connect(self._on_run_ended)
        self._update_start()

    def _build_choices(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "Write captions with a captioning model. The first captions are shown before the rest are "
            "written; the whole pass is one step of Undo."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.form)
        layout.addWidget(self.error_label)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.start_button)
        layout.addLayout(buttons)
        return page

    def _build_preview(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status_label = QLabel(wordWrap=True)
        self.bar = QProgressBar()
        self.bar.setMaximumHeight(16)
        self.preview_grid = QGridLayout()
        self.preview_grid.setColumnStretch(1, 1)
        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.addLayout(self.preview_grid)
        holder_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setFrameShape(QFrame.Shape.StyledPanel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(holder)
        self.accept_button = QPushButton("Accept: caption the rest", default=True)
        self.change_button = QPushButton("Change style")
        self.change_button.setToolTip("Put these captions back as they were and choose again.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop here and keep the captions already written (Undo takes them back).")
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.change_button)
        buttons.addWidget(self.accept_button)
        layout.addWidget(self.status_label)
        layout.addWidget(self.bar)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        return page

    # -- verbs ----------------------------------------------------------------------------------------------
    def start(self) -> bool:
        targets = self.form.targets()
        if not targets or not self.run.start(targets, self.form.job()):
            return False
        self._clear_preview()
        self.error_label.hide()
        self.status_label.setText(f"Starting {self.form.captioner().label}…")
        self.bar.setRange(0, 0)
        self.stack.setCurrentIndex(1)
        self._update_buttons()
        return True

    def reject(self) -> None:
        """Closing the dialog while the first captions are made stops the pass (keeping what was written)."""
        if self.run.stage in (Stage.STARTING, Stage.PREVIEW):
            self.run.cancel()
        super().reject()

    def preview_captions(self) -> list[str]:
        """The captions shown, in order."""
        return [label.text() for label in self._shown]

    # -- following the pass -------------------------------------------------------------------------------------
    def _on_run_stage_changed(self, stage: Stage) -> None:
        if stage is Stage.PREVIEW:
            count = len(self.run.preview)
            self.status_label.setText(
                f"The first {count} caption{'s are' if count != 1 else ' is'} written. Accept to caption the rest, "
                "or change the style: these are then put back as they were."
            )
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.accept_button.setText("Keep these captions" if self.run.job_over else "Accept: caption the rest")
        elif stage is Stage.RUNNING and self.isVisible():
            self.accept()  # the page's progress line follows the rest
        elif stage is Stage.WITHDRAWING:
            self.status_label.setText("Stopping, then putting these captions back…")
        elif stage is Stage.STOPPING:
            self.status_label.setText("Stopping; the captions written are kept…")
        self._update_buttons()

    def _on_run_caption_written(self, image: Path, caption: str) -> None:
        if self.stack.currentIndex() != 1 or self.run.stage is not Stage.STARTING:
            return
        row = len(self.run.preview) - 1
        if row >= PREVIEW_COUNT or row < 0:
            return
        picture = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        picture.setFixedSize(THUMB_PX, THUMB_PX)
        pixmap = self._thumbnail(str(image))
        if pixmap is not None and not pixmap.isNull():
            picture.setPixmap(pixmap.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio))
        text = QLabel(caption, wordWrap=True)
        self._shown.append(text)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.setToolTip(image.name)
        name = QLabel(f"<b>{image.name}</b>")
        column = QVBoxLayout()
        column.setSpacing(2)
        column.addWidget(name)
        column.addWidget(text)
        column.addStretch(1)
        self.preview_grid.addWidget(picture, row, 0, Qt.AlignmentFlag.AlignTop)
        self.preview_grid.addLayout(column, row, 1)
        self.status_label.setText(f"Writing the first captions: {row + 1} of {min(PREVIEW_COUNT, self._total())}…")

    def _on_run_ended(self, outcome: PassOutcome) -> None:
        if outcome.withdrawn and not outcome.failure:
            self.stack.setCurrentIndex(0)  # choose again
            self.error_label.hide()
            return
        if outcome.failure and self.isVisible():
            self.stack.setCurrentIndex(0)
            self.error_label.setText(outcome.failure)
            self.error_label.show()
            self._update_start()
            return
        if self.isVisible():
            self.accept()

    def _total(self) -> int:
        return len(self.form.targets()) or PREVIEW_COUNT

    def _clear_preview(self) -> None:
        self._shown.clear()
        while self.preview_grid.count():
            child = self.preview_grid.takeAt(0)
            _delete_item(child)

    def _update_start(self) -> None:
        self.start_button.setEnabled(bool(self.form.targets()) and not self.run.active)
        size = self.form.download_size()
        self.start_button.setText(f"Download {size / GB:.1f} GB and start" if size else "Start")

    def _update_buttons(self) -> None:
        stage = self.run.stage
        self.accept_button.setEnabled(stage is Stage.PREVIEW)
        self.change_button.setEnabled(stage in (Stage.STARTING, Stage.PREVIEW))
        self.cancel_button.setEnabled(stage in (Stage.STARTING, Stage.PREVIEW))
        self._update_start()


def _delete_item(item: object) -> None:
    """Remove a layout item and whatever it holds (a widget, or a layout of widgets)."""
    widget = item.widget() if hasattr(item, "widget") else None
    if widget is not None:
        widget.deleteLater()
        return
    layout = item.layout() if hasattr(item, "layout") else None
    if layout is not None:
        while layout.count():
            _delete_item(layout.takeAt(0))
        layout.deleteLater()
