"""Machine & model: the detected devices and memory, the recommendation with its reasons, the model
(a Chroma flavour, the demo, or local files) and its download with progress."""

from __future__ import annotations

import html
import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.base.units import format_amount, format_bytes
from chroma_studio.config import FIELDS, FLAVOUR_REPOS, ConfigError
from chroma_studio.gui.dataset.auto_caption_models import CaptionersBox
from chroma_studio.gui.machine_info import MachineSummary, describe_settings
from chroma_studio.gui.studio import Studio
from chroma_studio.gui.widgets.run_view import show_progress
from chroma_studio.gui.worker import ModelDownloadWorker, connect_worker
from chroma_studio.protocol.events import Event, Failed, Finished, PhaseChanged, Progress

logger = logging.getLogger(__name__)

FLAVOUR_TITLES = {
    "base": "Chroma1-Base — balanced quality",
    "hd": "Chroma1-HD — higher fidelity, heavier",
    "flash": "Chroma1-Flash — fast sampling, less stable",
    "demo": "Demo model — tiny, trains offline in a minute (samples are noise)",
}
RECOMMENDED_MARK = "(recommended for this machine)"
DOWNLOAD_LABEL = "Download the model now"
BUILD_DEMO_LABEL = "Build the demo model"
SHUTDOWN_WAIT_MS = 5_000  # how long closing the window waits for a cancelled download


class MachinePage(QWidget):
    recommendation_applied = Signal()
    download_finished = Signal()

    def __init__(self, studio: Studio, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.studio = studio
        self.download_worker: ModelDownloadWorker | None = None
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._build_machine_box())
        layout.addWidget(self._build_recommendation_box())
        layout.addWidget(self._build_model_box())
        self.captioners_box = CaptionersBox()  # the recommended captioner; downloaded ones, their size, Delete
        self.captioners_box.set_machine(studio.summary)
        studio.machine_detected.connect(self.captioners_box.set_machine)
        layout.addWidget(self.captioners_box)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        studio.config_changed.connect(self._on_studio_config_changed)
        studio.machine_detected.connect(self._on_studio_machine_detected)
        studio.machine_detection_failed.connect(self._on_studio_machine_detection_failed)
        self._on_studio_config_changed()
        if studio.summary is not None:
            self._on_studio_machine_detected(studio.summary)

    # -- layout ----------------------------------------------------------------------------
    def _build_machine_box(self) -> QGroupBox:
        box = QGroupBox("Your machine")
        self.devices_grid = QGridLayout()
        self.ram_label = QLabel("Detecting…")
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setObjectName("hintLabel")
        self.detect_button = QPushButton("Detect again")
        self.detect_button.clicked.connect(self.studio.detect_machine)
        layout = QVBoxLayout(box)
        layout.addLayout(self.devices_grid)
        layout.addWidget(self.ram_label)
        layout.addWidget(self.notes_label)
        layout.addWidget(self.detect_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _build_recommendation_box(self) -> QGroupBox:
        box = QGroupBox("Recommended settings")
        self.recommendation_label = QLabel("—")
        self.recommendation_label.setObjectName("recommendationSettings")
        self.reasons_label = QLabel()
        self.reasons_label.setWordWrap(True)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("hintLabel")
        self.apply_button = QPushButton("Use these settings")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._on_apply_button_clicked)
        layout = QVBoxLayout(box)
        layout.addWidget(self.recommendation_label)
        layout.addWidget(self.reasons_label)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _build_model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.flavour_group = QButtonGroup(self)
        self.flavour_buttons: dict[str, QRadioButton] = {}
        for flavour in FIELDS["model_flavour"].choices or ():
            button = QRadioButton(FLAVOUR_TITLES.get(flavour, flavour))
            button.setObjectName(f"flavour_{flavour}")
            repo = FLAVOUR_REPOS.get(flavour)
            button.setToolTip(
                f"Downloads {repo} from Hugging Face." if repo else "Built on this machine; nothing to download."
            )
            self.flavour_group.addButton(button)
            self.flavour_buttons[flavour] = button
            layout.addWidget(button)
        self.local_button = QRadioButton("Local files: a diffusers folder or a ComfyUI single .safetensors file")
        self.local_button.setObjectName("flavour_local")
        self.flavour_group.addButton(self.local_button)
        layout.addWidget(self.local_button)
        self.flavour_group.buttonClicked.connect(self._on_flavour_group_button_clicked)
        local_row = QHBoxLayout()
        self.local_path = QLineEdit()
        self.local_path.setPlaceholderText("Path to a diffusers folder or a Chroma transformer .safetensors file")
        self.local_path.editingFinished.connect(self._on_local_path_editing_finished)
        self.folder_button = QPushButton("Diffusers folder…")
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.file_button = QPushButton("ComfyUI file…")
        self.file_button.clicked.connect(self._on_file_button_clicked)
        local_row.addWidget(self.local_path, 1)
        local_row.addWidget(self.folder_button)
        local_row.addWidget(self.file_button)
        layout.addLayout(local_row)
        self.model_error = QLabel()
        self.model_error.setObjectName("fieldError")
        self.model_error.hide()
        layout.addWidget(self.model_error)
        hint = QLabel(
            "With a ComfyUI file, the T5 text encoder, VAE and tokenizer can be set under Train → Advanced "
            "settings; what is not given there is downloaded from the flavour's repository."
        )
        hint.setWordWrap(True)
        hint.setObjectName("hintLabel")
        layout.addWidget(hint)
        download_row = QHBoxLayout()
        self.download_button = QPushButton(DOWNLOAD_LABEL)
        self.download_button.clicked.connect(self._on_download_button_clicked)
        self.download_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.cancel_button.hide()
        self.download_bar = QProgressBar()
        self.download_bar.hide()
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.download_bar, 1)
        download_row.addWidget(self.cancel_button)
        download_row.addStretch(0)
        layout.addLayout(download_row)
        self.download_label = QLabel()
        self.download_label.setWordWrap(True)
        layout.addWidget(self.download_label)
        return box

    # -- machine ---------------------------------------------------------------------------
    def _on_studio_machine_detected(self, summary: MachineSummary) -> None:
        while self.devices_grid.count():
            self.devices_grid.takeAt(0).widget().deleteLater()
        for column, title in enumerate(("Device", "Type", "Memory", "Free", "Details")):
            label = QLabel(f"<b>{title}</b>")
            self.devices_grid.addWidget(label, 0, column)
        for row, device in enumerate(summary.devices, start=1):
            free = format_bytes(device.free_bytes) if device.free_bytes is not None else "—"
            cells = (device.name, device.kind.upper(), format_bytes(device.total_bytes or None), free, device.detail)
            for column, text in enumerate(cells):
                label = QLabel(text)
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.devices_grid.addWidget(label, row, column)
        self.ram_label.setText(
            f"System memory: {format_bytes(summary.ram_total or None)} "
            f"({format_bytes(summary.ram_available or None)} available)"
        )
        self.notes_label.setText(" ".join(summary.notes))
        self.notes_label.setVisible(bool(summary.notes))
        if summary.recommended is not None:
            self.recommendation_label.setText(
                html.escape(describe_settings(summary.recommended.settings)).replace("\n", "<br>")
            )
            self.apply_button.setEnabled(True)
        else:
            self.recommendation_label.setText("No recommendation for this machine.")
            self.apply_button.setEnabled(False)
        self.reasons_label.setText("<br>".join(html.escape(r) for r in summary.reasons))
        self._mark_recommended_flavour()
        self._update_estimate()

    def _mark_recommended_flavour(self) -> None:
        """Mark the model flavour the recommendation chose (none before the machine is known)."""
        recommended = self.studio.recommended
        chosen = None
        if recommended is not None:
            chosen = recommended.settings.get("model_flavour", FIELDS["model_flavour"].default)
        for flavour, button in self.flavour_buttons.items():
            name, dash, rest = FLAVOUR_TITLES.get(flavour, flavour).partition(" — ")
            mark = f" {RECOMMENDED_MARK}" if flavour == chosen else ""
            button.setText(f"{name}{mark}{dash}{rest}")

    def _on_studio_machine_detection_failed(self, message: str) -> None:
        self.ram_label.setText(f"The machine could not be detected: {message}")

    def _on_apply_button_clicked(self) -> None:
        try:
            applied = self.studio.apply_recommendation()
        except ConfigError as exc:
            QMessageBox.warning(self, "Recommended settings", f"The recommended settings cannot be applied:\n{exc}")
            return
        if applied:
            self.recommendation_applied.emit()

    def _update_estimate(self) -> None:
        if self.studio.summary is None:
            return
        try:
            text = self.studio.estimate_text()
        except Exception as exc:  # advice only: a failed estimate is said, not fatal to the page
            logger.warning("no memory estimate: %s", exc, exc_info=True)
            text = f"No memory estimate for these settings: {exc}"
        self.estimate_label.setText(text)

    # -- model choice ----------------------------------------------------------------------
    def _on_studio_config_changed(self) -> None:
        model = self.studio.config.model
        local = bool(model.pretrained_model_name_or_path) and model.model_flavour != "demo"
        button = self.local_button if local else self.flavour_buttons.get(model.model_flavour)
        if button is not None:
            button.setChecked(True)
        if not self.local_path.hasFocus():
            self.local_path.setText(model.pretrained_model_name_or_path or "")
        for widget in (self.local_path, self.folder_button, self.file_button):
            widget.setEnabled(local or self.local_button.isChecked())
        self._update_download_button()
        self._update_estimate()

    def _update_download_button(self) -> None:
        """The demo model is built here, not downloaded: the button says which it does."""
        model = self.studio.config.model
        if model.model_flavour == "demo":
            self.download_button.setText(BUILD_DEMO_LABEL)
            self.download_button.setToolTip(
                "The demo model needs no download: it is built on this machine in a few seconds "
                "(training also does it)."
            )
        else:
            self.download_button.setText(DOWNLOAD_LABEL)
            self.download_button.setToolTip("Fetch the model files ahead of training (training also does it).")

    def _on_flavour_group_button_clicked(self, button: QRadioButton) -> None:
        if button is self.local_button:
            for widget in (self.local_path, self.folder_button, self.file_button):
                widget.setEnabled(True)
            self.local_path.setFocus()
            return
        flavour = next(k for k, b in self.flavour_buttons.items() if b is button)
        self._update_model(model_flavour=flavour, pretrained_model_name_or_path=None)

    def _on_local_path_editing_finished(self) -> None:
        if not self.local_button.isChecked():
            return  # focus left the field because another model was chosen
        path = self.local_path.text().strip()
        flavour = self.studio.config.model.model_flavour
        self._update_model(
            pretrained_model_name_or_path=path or None, model_flavour="base" if flavour == "demo" else flavour
        )

    def _on_folder_button_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Diffusers folder of a Chroma model")
        if chosen:
            self.local_path.setText(chosen)
            self._on_local_path_editing_finished()

    def _on_file_button_clicked(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(
            self, "Chroma transformer (.safetensors)", "", "Safetensors (*.safetensors *.sft)"
        )
        if chosen:
            self.local_path.setText(chosen)
            self._on_local_path_editing_finished()

    def _update_model(self, **values: Any) -> None:
        try:
            self.studio.update_settings(**values)
        except ConfigError as exc:
            self.model_error.setText(str(exc))
            self.model_error.show()
            return
        self.model_error.hide()

    # -- download --------------------------------------------------------------------------
    def downloading(self) -> bool:
        return self.download_worker is not None and self.download_worker.is_running()

    def _on_download_button_clicked(self) -> None:
        if self.downloading():
            return
        worker = ModelDownloadWorker(self.studio.config, self.studio.settings.environment())
        connect_worker(worker, self._on_download_event_emitted, self._on_download_finished)
        self.download_worker = worker
        self.download_button.setEnabled(False)
        self.cancel_button.show()
        self.download_bar.setRange(0, 0)
        self.download_bar.show()
        self.download_label.setText("Preparing…")
        worker.start()

    def _on_cancel_button_clicked(self) -> None:
        worker = self.download_worker
        if worker is not None:
            worker.stop()  # seen at the next chunk of data
            self.download_label.setText("Cancelling…")
            # a stalled connection brings no next chunk: then the download process is ended
            QTimer.singleShot(SHUTDOWN_WAIT_MS, lambda: worker.is_running() and worker.control.kill())

    @Slot(object)
    def _on_download_event_emitted(self, event: Event) -> None:
        match event:
            case Progress(task=task, done=done, total=total, unit=unit):
                show_progress(self.download_bar, done, total)
                amount = format_amount(done, unit) + (f" of {format_amount(total, unit)}" if total else "")
                self.download_label.setText(f"{task}: {amount}")
            case PhaseChanged(detail=detail):
                self.download_label.setText(detail)
            case Finished(stopped=stopped):
                self.download_label.setText("Cancelled." if stopped else "The model is ready on this machine.")
            case Failed(message=message, hint=hint):
                self.download_label.setText(f"<b>{html.escape(message)}</b><br>{html.escape(hint)}")

    @Slot(object)
    def _on_download_finished(self, result: Any) -> None:
        if self.download_worker is not None:
            self.download_worker.wait()
        self.download_worker = None
        self.download_button.setEnabled(True)
        self.cancel_button.hide()
        self.download_bar.hide()
        self.download_finished.emit()

    def shutdown(self) -> None:
        """Cancel a download; one stuck on a stalled connection is ended (the Hub resumes its files later)."""
        worker = self.download_worker
        if worker is not None:
            worker.stop()
            if not worker.wait(SHUTDOWN_WAIT_MS):
                worker.control.kill()
                worker.wait()
