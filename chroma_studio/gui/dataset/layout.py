"""The Dataset page's parts and how they are arranged; what they do is in ``dataset.py``.

    Trigger word [__________]  hint       [Caption images…] [Folder: photos ▾] [Add folder…]
    (messages)
    Show [All images ▾] [Search…]    [Add trigger word…] [More edits ▾]  [Undo] [Redo] | Caption
    ┌ thumbnail grid ─────────────────────────────────────────────────────┐ | preview, text
    └──────────────────────────────────────────────────────────────────────┘ | Dataset figures
    10 images · 3 selected                                   (progress of a background job, Cancel)

Until a folder is added, a drop zone stands in the place of the grid and the side panel.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.gui.background_jobs import JobRunner
from chroma_studio.gui.dataset.bulk_caption_dialog import OPERATIONS
from chroma_studio.gui.dataset.caption_editor import CaptionEditorWidget
from chroma_studio.gui.dataset.captions import CaptionActions
from chroma_studio.gui.dataset.filter_model import ANY_PROBLEM, DatasetFilterModel
from chroma_studio.gui.dataset.items import PROBLEM_KINDS, DatasetStats
from chroma_studio.gui.dataset.model import DatasetModel
from chroma_studio.gui.dataset.stats import DatasetStatsWidget
from chroma_studio.gui.dataset.thumbnail_loader import ThumbnailLoader
from chroma_studio.gui.dataset.thumbnails import ThumbnailGridWidget
from chroma_studio.gui.widgets.drop_zone import DropZoneWidget
from chroma_studio.gui.widgets.job_progress import JobProgressWidget
from chroma_studio.gui.widgets.message_bar import MessageBarWidget

SIDE_PANEL_WIDTH = 340  # what the side panel starts with; it can be narrowed to SIDE_PANEL_MINIMUM
SIDE_PANEL_MINIMUM = 260
TRIGGER_PLACEHOLDER = "a rare word for your subject, like sks"


class DatasetLayout(QWidget):
    def __init__(self, resolution: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(parent=self)
        self.loader = ThumbnailLoader(parent=self)
        self.model = DatasetModel(resolution, self)
        self.filter_model = DatasetFilterModel(self)
        self.filter_model.setSourceModel(self.model)
        self.caption_actions = CaptionActions(self.runner, self)
        self.message_bar = MessageBarWidget()
        self.drop_zone = DropZoneWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.drop_zone)
        self.stack.addWidget(self._build_content())
        self.progress = JobProgressWidget(self.runner)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addLayout(self._build_header())
        layout.addWidget(self.message_bar)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.progress)

    def _build_header(self) -> QHBoxLayout:
        label = QLabel("Trigger word")
        font = QFont(label.font())
        font.setBold(True)
        label.setFont(font)
        self.trigger_edit = QLineEdit(placeholderText=TRIGGER_PLACEHOLDER, clearButtonEnabled=True)
        self.trigger_edit.setMinimumWidth(200)
        self.trigger_edit.setToolTip(
            "A word the base model does not know yet, for your subject. The LoRA learns it from the captions, "
            "so it must be written in them: Chroma Studio does not add it by itself; Add trigger word… puts it "
            "into the captions that lack it, with a preview first. Use it in your prompts to call up what the "
            "LoRA learned."
        )
        self.trigger_edit.setAcceptDrops(False)  # a dropped folder goes to the page, not into the word
        label.setBuddy(self.trigger_edit)
        self.trigger_hint = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)  # wraps on a narrow window
        self.folders_menu = QMenu(self)
        self.folders_button = QToolButton(popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.folders_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.folders_button.setMenu(self.folders_menu)
        self.add_folder_button = QPushButton("Add folder…")
        self.auto_caption_button = QPushButton("Caption images…")  # here: the tools row has no room at 1024 px
        self.auto_caption_button.setToolTip("Write captions with a captioning model.")  # the page says more
        header = QHBoxLayout()
        header.addWidget(label)
        header.addWidget(self.trigger_edit)
        header.addWidget(self.trigger_hint)
        header.addStretch(1)
        header.addWidget(self.auto_caption_button)
        header.addWidget(self.folders_button)
        header.addWidget(self.add_folder_button)
        return header

    def _build_content(self) -> QWidget:
        self.problem_combo = QComboBox()
        self.problem_combo.addItem("All images", "")
        self.problem_combo.addItem("Images with problems", ANY_PROBLEM)
        for kind in PROBLEM_KINDS:
            self.problem_combo.addItem(kind.label, kind.key)
        # as wide as its longest entry when there is room, narrower (elided) on a small window
        self.problem_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.problem_combo.setMinimumContentsLength(12)
        self.search_edit = QLineEdit(placeholderText="Search captions and file names", clearButtonEnabled=True)
        self.search_edit.setMinimumWidth(120)
        self.search_edit.setAcceptDrops(False)
        self.add_trigger_button = QPushButton("Add trigger word…")
        self.add_trigger_button.setToolTip("Put the trigger word into the captions that lack it, with a preview first.")
        more_menu = QMenu(self)
        self.edit_actions = {kind: more_menu.addAction(f"{label}…") for kind, label in OPERATIONS.items()}
        self.more_edits_button = QToolButton(popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_edits_button.setText("Edit captions")
        self.more_edits_button.setMenu(more_menu)
        self.undo_button = QToolButton(text="Undo", enabled=False)
        self.redo_button = QToolButton(text="Redo", enabled=False)
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Show"))
        tools.addWidget(self.problem_combo)
        tools.addWidget(self.search_edit, 1)
        tools.addSpacing(12)
        tools.addWidget(self.add_trigger_button)
        tools.addWidget(self.more_edits_button)
        tools.addWidget(self.undo_button)
        tools.addWidget(self.redo_button)
        self.grid = ThumbnailGridWidget(self.loader)
        self.grid.setModel(self.filter_model)
        self.selection_label = QLabel()
        self.selection_label.setEnabled(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(tools)
        left_layout.addWidget(self.grid, 1)
        left_layout.addWidget(self.selection_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self._build_side_panel())
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([3 * SIDE_PANEL_WIDTH, SIDE_PANEL_WIDTH])
        return splitter

    def _build_side_panel(self) -> QWidget:
        self.editor = CaptionEditorWidget(self.caption_actions.history)
        caption_box = QGroupBox("Caption")
        QVBoxLayout(caption_box).addWidget(self.editor)
        self.stats_widget = DatasetStatsWidget()
        stats_box = QGroupBox("Dataset")
        QVBoxLayout(stats_box).addWidget(self.stats_widget)
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(caption_box, 1)
        layout.addWidget(stats_box)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)  # scrolls on a low window
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(side)
        scroll.setMinimumWidth(SIDE_PANEL_MINIMUM)
        scroll.setMaximumWidth(2 * SIDE_PANEL_WIDTH)
        return scroll

    def set_problem_counts(self, stats: DatasetStats) -> None:
        """Show how many images each problem filter would list."""
        for index in range(self.problem_combo.count()):
            key = self.problem_combo.itemData(index)
            if not key:
                continue
            count = stats.with_problems if key == ANY_PROBLEM else stats.problems.get(key, 0)
            base = self.problem_combo.itemText(index).split(" (")[0]
            self.problem_combo.setItemText(index, f"{base} ({count:,})")
