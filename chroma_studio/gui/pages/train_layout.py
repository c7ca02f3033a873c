"""The Train page's parts and how they are arranged; what they do is in ``train.py``.

    Train your LoRA
    Dataset: 4 images · trigger word: sks · Model: demo model · 128 px · 4 steps
    [        Train the demo model on your CPU        ]      | Past runs
    (what the big button will change, when the settings differ from the recommended ones)
    why these settings                                     | run-…
    Or start from a preset                                 |
    [card] [card] [card] [card]                            |
    [card] [card] …                                        |
    ▸ Advanced settings        [Start training with these settings]
    (the settings form, or what happens when you press Train)  [Open run]

While a run is on, a stack shows the run instead of all this. On a low window (a laptop, Advanced
settings open) all this scrolls as one page; the form keeps enough height to be used in place.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.gui.run_controller import RunController
from chroma_studio.gui.widgets.config_form import ConfigFormWidget
from chroma_studio.gui.widgets.preset_cards import PresetCardsWidget
from chroma_studio.gui.widgets.run_view import RunViewWidget

FORM_MINIMUM_HEIGHT = 200  # a few settings at a time: below that the page scrolls instead

HOW_IT_WORKS = (
    "<b>What happens when you press Train</b><ol>"
    "<li>Your captions and images are encoded once and cached.</li>"
    "<li>The model is downloaded the first time (about 30 GB for Chroma; the demo needs nothing).</li>"
    "<li>Training runs in the background: the loss curve and sample images appear as it learns. "
    "Pause, stop (a checkpoint is kept, so you can resume), or ask for samples at any time.</li>"
    "<li>At the end, the LoRA file is in its run folder, ready for ComfyUI or diffusers.</li></ol>"
    "Every other setting is under <i>Advanced settings</i>; the defaults are the recommended ones."
)


class TrainLayout(QWidget):
    def __init__(self, controller: RunController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stack = QStackedWidget()
        self.setup_view = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.setup_view.setWidget(self._build_setup())
        self.run_view = RunViewWidget(controller.model)
        self.stack.addWidget(self.setup_view)
        self.stack.addWidget(self.run_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    def _build_setup(self) -> QWidget:
        view = QWidget()
        title = QLabel("Train your LoRA")
        title.setObjectName("pageTitle")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("trainSummary")
        self.summary_label.setWordWrap(True)
        self.recommended_button = QPushButton("Train with the recommended settings")
        self.recommended_button.setObjectName("bigTrainButton")
        self.recommended_button.setMinimumHeight(64)
        self.reset_note = QLabel()
        self.reset_note.setObjectName("resetNote")
        self.reset_note.setWordWrap(True)
        self.reset_note.setTextFormat(Qt.TextFormat.RichText)
        self.reset_note.hide()
        self.reasons_label = QLabel("Detecting your machine…")
        self.reasons_label.setObjectName("hintLabel")
        self.reasons_label.setWordWrap(True)
        self.cards = PresetCardsWidget()
        self.start_button = QPushButton("Start training with these settings")
        self.start_button.setObjectName("startButton")
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setObjectName("advancedToggle")
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.form = ConfigFormWidget()
        self.form.setMinimumHeight(FORM_MINIMUM_HEIGHT)
        self.form.hide()
        self.how_label = QLabel(HOW_IT_WORKS)
        self.how_label.setObjectName("howItWorks")
        self.how_label.setWordWrap(True)
        self.how_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.runs_list = QListWidget()
        self.runs_list.setObjectName("pastRuns")
        self.open_run_button = QPushButton("Open run")

        presets_title = QLabel("Or start from a preset")
        presets_title.setObjectName("sectionTitle")
        main = QVBoxLayout()
        main.addWidget(title)
        main.addWidget(self.summary_label)
        main.addWidget(self.recommended_button)
        main.addWidget(self.reset_note)
        main.addWidget(self.reasons_label)
        main.addSpacing(8)
        main.addWidget(presets_title)
        main.addWidget(self.cards)
        row = QHBoxLayout()
        row.addWidget(self.advanced_toggle)
        row.addStretch(1)
        row.addWidget(self.start_button)
        main.addLayout(row)
        main.addWidget(self.form, 1)
        main.addWidget(self.how_label, 1)
        side = QVBoxLayout()
        runs_title = QLabel("Past runs")
        runs_title.setObjectName("sectionTitle")
        self.no_runs_label = QLabel("Runs of this project appear here; open one to see its curve and samples again.")
        self.no_runs_label.setObjectName("hintLabel")
        self.no_runs_label.setWordWrap(True)
        side.addWidget(runs_title)
        side.addWidget(self.no_runs_label)
        side.addWidget(self.runs_list, 1)
        side.addStretch(0)
        side.addWidget(self.open_run_button)
        layout = QHBoxLayout(view)
        layout.addLayout(main, 3)
        layout.addLayout(side, 1)
        return view

    def set_start_emphasis(self, emphasis: bool) -> None:
        """Make "Start training with these settings" the primary button (the settings differ from the
        recommended ones, so it is the button that trains them)."""
        self.start_button.setProperty("emphasis", emphasis)
        self.start_button.style().unpolish(self.start_button)
        self.start_button.style().polish(self.start_button)
