"""Samples: every prompt at every sampled step, click to enlarge, two steps side by side."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.gui.run_model import RunModel, SampleImage
from chroma_studio.gui.widgets.export_panel import ExportPanelWidget
from chroma_studio.gui.widgets.gallery import GalleryWidget
from chroma_studio.gui.widgets.image_viewer import ImageViewerDialog
from chroma_studio.gui.widgets.scaled_image import ScaledImageWidget

logger = logging.getLogger(__name__)


class CompareWidget(QGroupBox):
    """One prompt at two steps, side by side."""

    def __init__(self, model: RunModel, parent: QWidget | None = None) -> None:
        super().__init__("Compare two steps", parent)
        self.model = model
        self.prompt_combo = QComboBox()
        self.prompt_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.prompt_combo.setMinimumContentsLength(24)
        self.left_combo = QComboBox()
        self.right_combo = QComboBox()
        for combo in (self.left_combo, self.right_combo):  # wide enough for "Step 1000" once it comes
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.left_image = ScaledImageWidget()
        self.right_image = ScaledImageWidget()
        for combo in (self.prompt_combo, self.left_combo, self.right_combo):
            combo.currentIndexChanged.connect(self._on_combo_current_index_changed)
        pickers = QHBoxLayout()
        pickers.addWidget(QLabel("Prompt"))
        pickers.addWidget(self.prompt_combo, 1)
        pickers.addWidget(QLabel("Left"))
        pickers.addWidget(self.left_combo)
        pickers.addWidget(QLabel("Right"))
        pickers.addWidget(self.right_combo)
        images = QHBoxLayout()
        images.addWidget(self.left_image)
        images.addWidget(self.right_image)
        layout = QVBoxLayout(self)
        layout.addLayout(pickers)
        layout.addLayout(images, 1)

    def refresh(self) -> None:
        """Fill the pickers from the model's samples; by default the first step against the latest."""
        prompts: dict[int, str] = {}
        steps: set[int] = set()
        for sample in self.model.samples:
            prompts.setdefault(sample.prompt_index, sample.prompt)
            steps.add(sample.step)
        ordered = sorted(steps)
        previous = (self.prompt_combo.currentData(), self.left_combo.currentData(), self.right_combo.currentData())
        right = self.right_combo
        follow_latest = right.count() == 0 or right.currentIndex() == right.count() - 1
        for combo in (self.prompt_combo, self.left_combo, self.right_combo):
            combo.blockSignals(True)
            combo.clear()
        for index, prompt in sorted(prompts.items()):
            self.prompt_combo.addItem(prompt, index)
        for step in ordered:
            self.left_combo.addItem(f"Step {step}", step)
            self.right_combo.addItem(f"Step {step}", step)
        if ordered:
            self._select(self.prompt_combo, previous[0], 0)
            self._select(self.left_combo, previous[1], 0)
            kept = None if follow_latest else previous[2]  # the right side keeps up with the newest step
            self._select(self.right_combo, kept, len(ordered) - 1)
        for combo in (self.prompt_combo, self.left_combo, self.right_combo):
            combo.blockSignals(False)
        self._show()

    @staticmethod
    def _select(combo: QComboBox, data, fallback: int) -> None:
        found = combo.findData(data) if data is not None else -1
        combo.setCurrentIndex(found if found >= 0 else fallback)

    def set_steps(self, left: int, right: int) -> None:
        self._select(self.left_combo, left, 0)
        self._select(self.right_combo, right, self.right_combo.count() - 1)

    def sample(self, prompt_index: int, step: int) -> SampleImage | None:
        for sample in reversed(self.model.samples):
            if sample.prompt_index == prompt_index and sample.step == step:
                return sample
        return None

    def _on_combo_current_index_changed(self, index: int) -> None:
        self._show()

    def _show(self) -> None:
        prompt = self.prompt_combo.currentData()
        for combo, label in ((self.left_combo, self.left_image), (self.right_combo, self.right_image)):
            step = combo.currentData()
            sample = self.sample(prompt, step) if prompt is not None and step is not None else None
            label.set_path(sample.path if sample else None)


class SamplesPage(QWidget):
    def __init__(self, model: RunModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.viewer: ImageViewerDialog | None = None
        self.title = QLabel()
        self.title.setObjectName("pageTitle")
        self.subtitle = QLabel()
        self.subtitle.setObjectName("hintLabel")
        self.subtitle.setWordWrap(True)
        self.gallery = GalleryWidget(thumb_size=128)
        self.gallery.sample_activated.connect(self._on_gallery_sample_activated)
        self.compare = CompareWidget(model)
        self.export = ExportPanelWidget()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.gallery)
        split.addWidget(self.compare)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([340, 300])
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(split, 1)
        layout.addWidget(self.export)
        model.cleared.connect(self._on_model_cleared)
        model.sample_added.connect(self._on_model_sample_added)
        model.checkpoint_saved.connect(self._on_model_checkpoint_saved)
        model.run_finished.connect(self._on_model_run_finished)
        self._on_model_cleared()

    def _on_model_cleared(self) -> None:
        self.gallery.set_samples(list(self.model.samples))
        self.compare.refresh()
        self._update_title()
        self._refresh_export()

    def _on_model_checkpoint_saved(self, step: int, path: str) -> None:
        self._refresh_export()

    def _on_model_run_finished(self, result: object) -> None:
        self._refresh_export()

    def _refresh_export(self) -> None:
        self.export.set_run(self.model.output_dir)

    def _on_model_sample_added(self, sample: SampleImage) -> None:
        self.gallery.add_sample(sample)
        self.compare.refresh()
        self._update_title()

    def _update_title(self) -> None:
        run = Path(self.model.output_dir).name if self.model.output_dir else ""
        self.title.setText(f"Samples — {run}" if run else "Samples")
        count = len(self.model.samples)
        text = (
            f"{count} images. Each row is a prompt, each column a training step; click a picture to enlarge it."
            " Samples use a fixed seed, so the change from left to right is what the LoRA learned."
            if count
            else "No samples yet. They are rendered at the start, every few steps and at the end of a run."
        )
        if self.model.run_settings.get("model_flavour") == "demo":
            text += " This run used the demo model, a tiny random network: its samples are noise by design."
        self.subtitle.setText(text)

    def _on_gallery_sample_activated(self, sample: SampleImage) -> None:
        self.viewer = ImageViewerDialog(sample, self)
        self.viewer.open()
