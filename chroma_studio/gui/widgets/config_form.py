"""The Advanced settings form, generated from the config's field metadata.

Nothing about a setting is declared here: label, help, choices and range come from
``chroma_studio.config.FIELDS``; the editor kind follows the field's type. An edit is reported
as ``value_edited(key, value)``; the owner applies it and hands back the problems, which show
under the field they name and in a summary whose links jump to that field.
"""

from __future__ import annotations

import html
import logging
import typing
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.config import FIELDS, SECTIONS, FieldInfo, Problem, TrainingConfig
from chroma_studio.gui.studio import MANAGED_ELSEWHERE

logger = logging.getLogger(__name__)

SECTION_TITLES = {
    "model": "Model and memory",
    "lora": "LoRA",
    "text": "Captions and text encoder",
    "data": "Images",
    "optim": "Optimizer and length",
    "run": "Output and checkpoints",
    "validation": "Sample images during training",
}
PATH_FIELDS = frozenset(
    {
        "pretrained_model_name_or_path",
        "pretrained_t5_model_name_or_path",
        "pretrained_vae_model_name_or_path",
        "t5_tokenizer_name_or_path",
        "cache_dir",
    }
)
INT_LIMIT = 2**31 - 1


def field_type(info: FieldInfo) -> tuple[Any, bool]:
    """(inner type, allows None) of a field."""
    args = typing.get_args(info.type)
    if type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return inner, True
    return info.type, False


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class FieldRow:
    """One setting's editor, with its inline error label."""

    def __init__(self, info: FieldInfo, on_edit) -> None:
        self.info = info
        self.key = info.name
        self.on_edit = on_edit
        self.inner, self.nullable = field_type(info)
        self.editor = self._make_editor()
        self.editor.setObjectName(f"field_{self.key}")
        self.editor.setToolTip(f"{info.help}\n\nSetting: {self.key}")
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.error.hide()
        self.help = QLabel(info.help)
        self.help.setObjectName("fieldHelp")
        self.help.setWordWrap(True)
        self._loading = False

    def _make_editor(self) -> QWidget:
        info, inner = self.info, self.inner
        if inner is bool:
            editor = QCheckBox()
            editor.toggled.connect(lambda checked: self._emit(checked))
            return editor
        if info.choices:
            editor = QComboBox()
            editor.addItems(list(info.choices))
            editor.currentTextChanged.connect(lambda text: self._emit(text))
            return editor
        if inner is int:
            editor = QSpinBox()
            low = int(info.minimum) if info.minimum is not None else 0
            editor.setRange(
                low - 1 if self.nullable else low, int(info.maximum) if info.maximum is not None else INT_LIMIT
            )
            if self.nullable:
                editor.setSpecialValueText("Not set")
            editor.setKeyboardTracking(False)
            editor.valueChanged.connect(self._on_spin_changed)
            return editor
        if typing.get_origin(inner) is list:
            editor = QPlainTextEdit()
            editor.setPlaceholderText("One per line")
            editor.setFixedHeight(72)
            self._debounce = QTimer(editor, singleShot=True, interval=400)
            self._debounce.timeout.connect(lambda: self._emit([s for s in editor.toPlainText().splitlines() if s]))
            editor.textChanged.connect(lambda: None if self._loading else self._debounce.start())
            return editor
        editor = QLineEdit()
        if self.nullable:
            editor.setPlaceholderText("Not set")
        editor.editingFinished.connect(lambda: self._emit(self._line_value(editor.text())))
        if self.key in PATH_FIELDS:
            return self._with_browse(editor)
        return editor

    def _with_browse(self, line: QLineEdit) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(line, 1)
        browse = QToolButton()
        browse.setText("Browse…")
        browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(browse)
        menu.addAction("Folder…", lambda: self._browse(line, folder=True))
        if self.key != "cache_dir":
            menu.addAction(".safetensors file…", lambda: self._browse(line, folder=False))
        browse.setMenu(menu)
        layout.addWidget(browse)
        self.line = line
        return box

    def _browse(self, line: QLineEdit, folder: bool) -> None:
        if folder:
            chosen = QFileDialog.getExistingDirectory(line, self.info.label, line.text())
        else:
            chosen, _ = QFileDialog.getOpenFileName(line, self.info.label, line.text(), "Safetensors (*.safetensors)")
        if chosen:
            line.setText(chosen)
            self._emit(chosen)

    def _line_value(self, text: str) -> Any:
        text = text.strip()
        return None if text == "" and self.nullable else text

    def _on_spin_changed(self, value: int) -> None:
        spin = self.editor
        self._emit(None if self.nullable and value == spin.minimum() else value)

    def _emit(self, value: Any) -> None:
        if not self._loading:
            self.on_edit(self.key, value)

    def set_value(self, value: Any) -> None:
        self._loading = True
        try:
            editor = self.editor
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            elif isinstance(editor, QSpinBox):
                editor.setValue(editor.minimum() if value is None else int(value))
            elif isinstance(editor, QPlainTextEdit):
                if [s for s in editor.toPlainText().splitlines() if s] != list(value or []):
                    editor.setPlainText("\n".join(value or []))
            else:
                line = editor if isinstance(editor, QLineEdit) else self.line
                if not line.hasFocus() or not self.error.isVisible():
                    line.setText(format_value(value))
        finally:
            self._loading = False

    def focus_target(self) -> QWidget:
        return getattr(self, "line", self.editor)

    def set_error(self, message: str | None, severity: str = "error") -> None:
        self.error.setText(message or "")
        self.error.setProperty("severity", severity)
        self.error.style().unpolish(self.error)
        self.error.style().polish(self.error)
        self.error.setVisible(bool(message))
        target = self.focus_target()
        target.setProperty("invalid", bool(message) and severity == "error")
        target.style().unpolish(target)
        target.style().polish(target)


class ConfigFormWidget(QScrollArea):
    """Every setting not edited elsewhere, grouped by section; the most used ones first."""

    value_edited = Signal(str, object)  # flat key, new value
    outside_field_requested = Signal(str)  # a problem named a setting edited on another page

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.rows: dict[str, FieldRow] = {}
        body = QWidget()
        layout = QVBoxLayout(body)
        self.summary = QLabel()
        self.summary.setObjectName("problemSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.linkActivated.connect(self.focus_field)
        self.summary.hide()
        layout.addWidget(self.summary)
        basic = [k for k, info in FIELDS.items() if info.basic and k not in MANAGED_ELSEWHERE]
        layout.addWidget(self._group("Most used", basic))
        for section in SECTIONS:
            keys = [k for k, i in FIELDS.items() if i.section == section and k not in MANAGED_ELSEWHERE]
            keys = [k for k in keys if k not in basic]
            if keys:
                layout.addWidget(self._group(SECTION_TITLES.get(section, section.title()), keys))
        layout.addStretch(1)
        self.setWidget(body)

    def _group(self, title: str, keys: list[str]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key in keys:
            row = FieldRow(FIELDS[key], self._on_row_edited)
            self.rows[key] = row
            column = QVBoxLayout()
            column.setSpacing(2)
            column.addWidget(row.editor)
            column.addWidget(row.help)
            column.addWidget(row.error)
            label = QLabel(FIELDS[key].label)
            label.setToolTip(f"Setting: {key}")
            label.setBuddy(row.focus_target())
            form.addRow(label, column)
        return box

    def _on_row_edited(self, key: str, value: Any) -> None:
        self.value_edited.emit(key, value)

    def set_config(self, config: TrainingConfig) -> None:
        """Show a config's values (without reporting them as edits)."""
        for key, row in self.rows.items():
            info = FIELDS[key]
            row.set_value(getattr(getattr(config, info.section), key))

    def show_problems(self, problems: list[Problem], input_errors: dict[str, str] | None = None) -> None:
        """Mark each named field and list every problem, errors first, with links to the fields."""
        input_errors = input_errors or {}
        by_key: dict[str, Problem] = {}
        for problem in [*(Problem(k, m) for k, m in input_errors.items()), *problems]:
            if problem.key not in by_key or (problem.severity == "error" and by_key[problem.key].severity != "error"):
                by_key[problem.key] = problem
        for key, row in self.rows.items():
            problem = by_key.get(key)
            row.set_error(problem.message if problem else None, problem.severity if problem else "error")
        ordered = sorted(by_key.values(), key=lambda p: p.severity != "error")
        if not ordered:
            self.summary.clear()
            self.summary.hide()
            return
        lines = []
        for p in ordered:
            label = FIELDS[p.key].label if p.key in FIELDS else p.key
            word = "Error" if p.severity == "error" else "Note"
            lines.append(
                f"<b>{word}</b> — <a href='{html.escape(p.key)}'>{html.escape(label)}</a>: {html.escape(p.message)}"
            )
        self.summary.setText("<br>".join(lines))
        self.summary.setProperty("severity", "error" if ordered[0].severity == "error" else "warning")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        self.summary.show()

    def focus_field(self, key: str) -> None:
        """Scroll to a setting and put the cursor in it (or ask the window, if another page edits it)."""
        row = self.rows.get(key)
        if row is None:
            self.outside_field_requested.emit(key)
            return
        target = row.focus_target()
        self.ensureWidgetVisible(target, 50, 120)
        target.setFocus(Qt.FocusReason.OtherFocusReason)
