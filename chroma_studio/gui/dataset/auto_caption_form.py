"""``AutoCaptionForm``: the choices of a captioning pass (which images, captioner, style, words to add).

The captioner list shows, before anything is downloaded, each one's size on disk and license
(from ``dataset.captioners``), the recommended one for this machine preselected; a style the
chosen captioner cannot write is disabled with the reason beside it. ``job()`` is the
``CaptionJob`` the choices make (without its images: the pass fills them in).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.dataset.captioners import CAPTIONERS, GB, Captioner
from chroma_studio.gui.dataset.auto_caption_targets import CaptionTarget, caption_targets
from chroma_studio.gui.dataset.items import DatasetItem
from chroma_studio.protocol.jobs import CaptionJob, CaptionLength, CaptionStyle

STYLE_LABELS = {
    CaptionStyle.NATURAL: "Sentences (natural language)",
    CaptionStyle.TAGS: "Tags (comma-separated)",
    CaptionStyle.BOTH: "Both: sentences, then tags",
}
LENGTH_LABELS = {CaptionLength.SHORT: "Short", CaptionLength.MEDIUM: "Medium", CaptionLength.LONG: "Long"}


def captioner_label(captioner: Captioner, recommended: bool, downloaded: bool) -> str:
    if captioner.demo:
        where = "no download"
    elif downloaded:
        where = "downloaded"
    else:
        where = f"{captioner.size_bytes / GB:.1f} GB download"
    return f"{captioner.label} · {where}{' · recommended' if recommended else ''}"


def captioner_details(captioner: Captioner, downloaded: bool) -> str:
    """What the form says of a captioner before it is used: what it does, its size and license."""
    if captioner.demo:
        size = "Built on this computer: nothing to download."
    elif downloaded:
        size = f"Downloaded ({captioner.size_bytes / GB:.1f} GB on disk)."
    else:
        size = f"Downloads {captioner.size_bytes / GB:.1f} GB from {html.escape(captioner.repo_id)} the first time."
    terms = "" if captioner.license.commercial_use else " Its terms forbid commercial use."
    license_link = f"<a href='{html.escape(captioner.license.url)}'>{html.escape(captioner.license.name)}</a>"
    return f"{html.escape(captioner.description)} {size} License: {license_link}.{terms}"


class AutoCaptionForm(QWidget):
    changed = Signal()  # any choice changed

    def __init__(
        self,
        items: Sequence[DatasetItem],
        selected: Sequence[DatasetItem],
        trigger_word: str,
        recommended: str,
        downloaded: Collection[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._items, self._selected = list(items), list(selected)
        self._recommended, self._downloaded = recommended, set(downloaded)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        layout.addLayout(form)
        form.addRow("Images", self._build_scope())
        form.addRow("Captioner", self._build_captioner())
        self.style_combo = QComboBox()
        for style, label in STYLE_LABELS.items():
            self.style_combo.addItem(label, style)
        self.style_note = QLabel(wordWrap=True)
        self.style_note.setEnabled(False)
        form.addRow("Style", self._stacked(self.style_combo, self.style_note))
        self.length_combo = QComboBox()
        for length, label in LENGTH_LABELS.items():
            self.length_combo.addItem(label, length)
        self.length_combo.setCurrentIndex(1)
        form.addRow("Length", self.length_combo)
        self.trigger_edit = QLineEdit(trigger_word, placeholderText="optional, e.g. sks")
        self.class_edit = QLineEdit(placeholderText="optional, e.g. dog: “a dog” becomes “a sks dog”")
        self.class_edit.setToolTip(
            "Without a class word the trigger word goes first. With one, the first “a/the <class>” of "
            "each caption becomes “a <trigger> <class>”."
        )
        words = QHBoxLayout()
        words.addWidget(self.trigger_edit, 1)
        words.addWidget(QLabel("Class word"))
        words.addWidget(self.class_edit, 1)
        form.addRow("Trigger word", words)
        self.prefix_edit = QLineEdit(placeholderText="text put before every caption")
        self.suffix_edit = QLineEdit(placeholderText="text put after every caption")
        affixes = QHBoxLayout()
        affixes.addWidget(self.prefix_edit, 1)
        affixes.addWidget(QLabel("Suffix"))
        affixes.addWidget(self.suffix_edit, 1)
        form.addRow("Prefix", affixes)
        for combo in (self.captioner_combo, self.style_combo, self.length_combo):
            combo.currentIndexChanged.connect(self._on_choice_changed)
        for button in (self.selection_button, self.all_button, self.only_missing_box):
            button.toggled.connect(self._on_choice_changed)
        self._on_choice_changed()

    @staticmethod
    def _stacked(*widgets: QWidget) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        for widget in widgets:
            column.addWidget(widget)
        return box

    def _build_scope(self) -> QWidget:
        count = len(self._selected)
        self.selection_button = QRadioButton(f"The {count:,} selected image{'s' if count != 1 else ''}")
        self.selection_button.setEnabled(bool(count))
        self.all_button = QRadioButton(f"All {len(self._items):,} images of the dataset")
        (self.selection_button if count > 1 else self.all_button).setChecked(True)
        self.only_missing_box = QCheckBox("Only images without a caption")
        self.only_missing_box.setChecked(True)
        self.only_missing_box.setToolTip("Unticked, existing captions are replaced; one Undo puts them all back.")
        self.scope_label = QLabel(wordWrap=True)
        choices = QWidget()
        row = QHBoxLayout(choices)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.selection_button)
        row.addWidget(self.all_button)
        row.addStretch(1)
        return self._stacked(choices, self.only_missing_box, self.scope_label)

    def _build_captioner(self) -> QWidget:
        self.captioner_combo = QComboBox()
        self.captioner_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.captioner_combo.setMinimumContentsLength(30)
        for name, captioner in CAPTIONERS.items():
            label = captioner_label(captioner, name == self._recommended, name in self._downloaded)
            self.captioner_combo.addItem(label, name)
        self.captioner_combo.setCurrentIndex(max(0, self.captioner_combo.findData(self._recommended)))
        self.captioner_details = QLabel(wordWrap=True, textFormat=Qt.TextFormat.RichText, openExternalLinks=True)
        return self._stacked(self.captioner_combo, self.captioner_details)

    # -- what was chosen -----------------------------------------------------------------------------------
    def captioner(self) -> Captioner:
        return CAPTIONERS[self.captioner_combo.currentData()]

    def download_size(self) -> int:
        """Bytes the chosen captioner downloads before it runs (0: it is here, or built here)."""
        captioner = self.captioner()
        return 0 if captioner.demo or captioner.name in self._downloaded else captioner.size_bytes

    def targets(self) -> list[CaptionTarget]:
        items = self._selected if self.selection_button.isChecked() else self._items
        return caption_targets(items, self.only_missing_box.isChecked())

    def job(self) -> CaptionJob:
        return CaptionJob(
            images=(),
            model=self.captioner().name,
            style=CaptionStyle(self.style_combo.currentData()),
            length=CaptionLength(self.length_combo.currentData()),
            trigger=self.trigger_edit.text().strip(),
            class_word=self.class_edit.text().strip(),
            prefix=self.prefix_edit.text().strip(),
            suffix=self.suffix_edit.text().strip(),
        )

    def set_style(self, style: CaptionStyle) -> None:
        self.style_combo.setCurrentIndex(self.style_combo.findData(style))

    # -- following the choices -------------------------------------------------------------------------------
    def _on_choice_changed(self, *_args: object) -> None:
        captioner = self.captioner()
        self.captioner_details.setText(captioner_details(captioner, captioner.name in self._downloaded))
        self._show_styles(captioner)
        count = len(self.targets())
        replacing = not self.only_missing_box.isChecked()
        if count:
            text = f"{count:,} image{'s' if count != 1 else ''} will be captioned"
            text += " (their captions are replaced; Undo puts them back)." if replacing else "."
        elif self.only_missing_box.isChecked():
            text = "Every one of these images has a caption: untick the box to write new ones."
        else:
            text = "There is no image to caption here."
        self.scope_label.setText(text)
        self.changed.emit()

    def _show_styles(self, captioner: Captioner) -> None:
        model = self.style_combo.model()
        assert isinstance(model, QStandardItemModel)
        for row in range(self.style_combo.count()):
            style = self.style_combo.itemData(row)
            item = model.item(row)
            problem = captioner.style_problem(style)
            item.setEnabled(problem is None)
            item.setToolTip(problem or "")
        current = self.style_combo.currentData()
        if not captioner.supports(current):
            self.style_combo.setCurrentIndex(self.style_combo.findData(captioner.styles[0]))
        missing = [str(style) for style in STYLE_LABELS if not captioner.supports(style)]
        self.style_note.setText(
            f"Not with this captioner: {', '.join(missing)}. {captioner.styles_note}".strip() if missing else ""
        )
        self.style_note.setVisible(bool(missing))
