"""The compact header line: the detected machine and the recommended settings; a click opens Machine & model."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from chroma_studio.base.units import format_bytes
from chroma_studio.gui.machine_info import MachineSummary, describe_settings


class MachineHeaderWidget(QToolButton):
    """Two short lines: what this machine is, and what Chroma Studio recommends for it."""

    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("machineHeader")
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Your machine and the settings that fit it. Click for details and the model choice.")
        self.machine_label = QLabel("Detecting your machine…")
        self.machine_label.setObjectName("headerMachine")
        self.recommendation_label = QLabel("")
        self.recommendation_label.setObjectName("headerRecommendation")
        for label in (self.machine_label, self.recommendation_label):
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            label.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        layout.setSpacing(0)
        layout.addWidget(self.machine_label)
        layout.addWidget(self.recommendation_label)
        self.setMinimumHeight(44)
        self.clicked.connect(self.details_requested)

    def set_summary(self, summary: MachineSummary) -> None:
        device = summary.devices[0] if summary.devices else None
        if device is not None and device.kind != "cpu":
            memory = f" · {format_bytes(device.total_bytes)}" if device.total_bytes else ""
            machine = f"<b>{html.escape(device.name)}</b>{memory}"
        else:
            machine = "<b>No supported GPU</b> · CPU only"
        if summary.ram_total:
            machine += f" · RAM {format_bytes(summary.ram_total)}"
        self.machine_label.setText(machine)
        if summary.recommended is not None:
            text = describe_settings(summary.recommended.settings, short=True)
            self.recommendation_label.setText(f"Recommended: {html.escape(text)}")
        else:
            self.recommendation_label.setText("No recommendation — see Machine & model")

    def set_failed(self, message: str) -> None:
        self.machine_label.setText("<b>Machine not detected</b>")
        self.recommendation_label.setText(html.escape(message[:80]))
