"""``CaptionersBox``: the Machine & model page's list of downloaded captioners, with their size and Delete.

It reads the Hugging Face cache through the catalogue (``dataset.captioners``: the captioners'
repositories only, never another model there) when the page is shown and after a delete; a delete
asks first and says how much space it freed. The cache is the one the engine downloads to:
``HF_HUB_CACHE``, else ``HF_HOME``/hub, read when the list is read.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from chroma_studio.base.units import format_bytes
from chroma_studio.dataset.captioners import (
    CAPTIONERS,
    DownloadedCaptioner,
    delete_captioner,
    downloaded_captioners,
    total_size,
)
from chroma_studio.gui.dataset.auto_caption_dialog import recommended_choice
from chroma_studio.gui.machine_info import MachineSummary

log = logging.getLogger(__name__)

EMPTY_TEXT = (
    "No captioner is downloaded. “Caption images…” on the Dataset page downloads the one you choose, "
    "after showing its size and license."
)


def hub_cache_dir() -> Path | None:
    """The Hugging Face cache as the environment names it now (None: the library's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return None


class CaptionersBox(QGroupBox):
    deleted = Signal(str, int)  # the captioner's name, the bytes freed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Captioners", parent)
        self.recommendation_label = QLabel(wordWrap=True)
        self.summary_label = QLabel(wordWrap=True)
        self.rows = QGridLayout()
        self.rows.setColumnStretch(0, 1)
        self.delete_buttons: dict[str, QPushButton] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self.recommendation_label)
        layout.addWidget(self.summary_label)
        layout.addLayout(self.rows)
        self.found: list[DownloadedCaptioner] = []

    def set_machine(self, summary: MachineSummary | None) -> None:
        """Say which captioner "Caption images…" preselects on this machine, and why."""
        choice = recommended_choice(summary)
        label = CAPTIONERS[choice.name].label
        self.recommendation_label.setText(
            f"Recommended here: <b>{html.escape(label)}</b>: {html.escape(choice.reason)}"
        )

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Read the cache again and list what is there."""
        self.found = downloaded_captioners(hub_cache_dir())
        while self.rows.count():
            item = self.rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.delete_buttons.clear()
        for row, found in enumerate(self.found):
            captioner = found.captioner
            size = format_bytes(found.size_bytes, si=True)
            name = QLabel(f"<b>{html.escape(captioner.label)}</b> · {size} · {html.escape(captioner.license.name)}")
            name.setToolTip(f"{captioner.repo_id}\n{found.path}\nLicense: {captioner.license}")
            button = QPushButton("Delete…")
            button.setToolTip(
                f"Delete {captioner.label} from the model cache ({format_bytes(found.size_bytes, si=True)})."
            )
            button.clicked.connect(lambda _checked=False, n=captioner.name: self.delete(n))
            self.rows.addWidget(name, row, 0)
            self.rows.addWidget(button, row, 1)
            self.delete_buttons[captioner.name] = button
        if self.found:
            count = len(self.found)
            self.summary_label.setText(
                f"{count} captioner{'s' if count != 1 else ''} downloaded, "
                f"{format_bytes(total_size(self.found), si=True)} on disk."
            )
        else:
            self.summary_label.setText(EMPTY_TEXT)

    def confirm_delete(self, found: DownloadedCaptioner) -> bool:
        """Ask before deleting; True to go ahead."""
        answer = QMessageBox.question(
            self,
            "Delete captioner",
            f"Delete {found.captioner.label} ({format_bytes(found.size_bytes, si=True)})? "
            "Captioning with it downloads it again.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def delete(self, name: str) -> int:
        """Delete the captioner ``name`` after asking; the bytes freed (0 when not deleted)."""
        found = next((item for item in self.found if item.captioner.name == name), None)
        if found is None or not self.confirm_delete(found):
            return 0
        try:
            freed = delete_captioner(name, hub_cache_dir())
        except OSError as exc:
            log.warning("could not delete the captioner %s: %s", name, exc)
            self.summary_label.setText(f"{found.captioner.label} could not be deleted: {exc}. Close what uses it.")
            return 0
        self.refresh()
        self.summary_label.setText(
            f"Deleted {found.captioner.label}: {format_bytes(freed, si=True)} freed. " + self.summary_label.text()
        )
        self.deleted.emit(name, freed)
        return freed
