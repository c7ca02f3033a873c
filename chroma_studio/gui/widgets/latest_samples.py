"""The newest sample images of a run, one per prompt, beside the loss chart."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from chroma_studio.gui.run_model import SampleImage
from chroma_studio.gui.widgets.scaled_image import ScaledImageWidget


class LatestSamplesWidget(QWidget):
    sample_activated = Signal(object)  # SampleImage
    all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step: int | None = None
        self.shown: dict[int, SampleImage] = {}  # prompt index -> sample of the newest step
        self.title = QLabel("Samples")
        self.title.setObjectName("sectionTitle")
        self.hint = QLabel("Sample images appear here at the start and every few steps.")
        self.hint.setObjectName("hintLabel")
        self.hint.setWordWrap(True)
        self.all_button = QPushButton("All samples…")
        self.all_button.clicked.connect(self.all_requested)
        self.all_button.hide()
        self._body = QWidget()
        self._column = QVBoxLayout(self._body)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self._body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.hint)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.all_button)

    def clear(self) -> None:
        self.step = None
        self.shown.clear()
        while self._column.count() > 1:
            self._column.takeAt(0).widget().deleteLater()
        self.title.setText("Samples")
        self.hint.show()
        self.all_button.hide()

    def set_samples(self, samples: list[SampleImage]) -> None:
        self.clear()
        for sample in samples:
            self.add_sample(sample)

    def add_sample(self, sample: SampleImage) -> None:
        if self.step is not None and sample.step < self.step:
            return
        if sample.step != self.step:
            self.clear()
            self.step = sample.step
        self.shown[sample.prompt_index] = sample
        image = ScaledImageWidget(minimum=120)
        image.set_path(sample.path)
        image.setToolTip(f"{sample.prompt}\nClick to enlarge.")
        image.setCursor(Qt.CursorShape.PointingHandCursor)
        image.clicked.connect(lambda s=sample: self.sample_activated.emit(s))
        caption = QLabel(sample.prompt)
        caption.setObjectName("hintLabel")
        caption.setWordWrap(True)
        self._column.insertWidget(self._column.count() - 1, image, 1)
        self._column.insertWidget(self._column.count() - 1, caption)
        self.title.setText(f"Samples at step {sample.step}")
        self.hint.hide()
        self.all_button.show()
