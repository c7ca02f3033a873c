"""``CaptionEditorWidget``: the selected image and its caption, saved on its own as you type.

A save happens ``SAVE_DELAY_MS`` after the last keystroke (or at once when another image is
chosen), atomically, through the page's ``CaptionHistory`` so that it can be undone like a
bulk edit and never conflicts with one; saves of one caption that follow each other closely make
one undo step there. Ctrl+Z inside the text undoes typing. A caption file
that is not UTF-8 is shown read-only with the reason, and is never written; so is the caption of
an image that training leaves out (a damaged file), with the reason it is left out.

The preview gives up height first when the panel is short, so the text below never overlaps it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSizePolicy, QVBoxLayout, QWidget

from chroma_studio.dataset import CaptionChange, CaptionError, CaptionHistory, read_caption

log = logging.getLogger(__name__)

SAVE_DELAY_MS = 500
PREVIEW_HEIGHT = 220  # at most; it shrinks to PREVIEW_MIN_HEIGHT when the panel is short
PREVIEW_MIN_HEIGHT = 72


class _PreviewLabel(QLabel):
    """The selected picture, scaled to fit whatever height the layout leaves it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(PREVIEW_MIN_HEIGHT)
        self.setMaximumHeight(PREVIEW_HEIGHT)
        # Ignored: the picture's size does not push the layout; the preview takes the height left over
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_source(self, pixmap: QPixmap | None) -> None:
        self._source = pixmap if pixmap is not None else QPixmap()
        self._rescale()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._source.isNull():
            self.setPixmap(QPixmap())
            return
        size = self._source.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        self.setPixmap(
            self._source.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )


class CaptionEditorWidget(QWidget):
    caption_saved = Signal(object, str)  # caption path (Path), the text now on disk

    def __init__(self, history: CaptionHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._history = history
        self._image_path: Path | None = None
        self._caption_path: Path | None = None
        self._disk_text = ""  # what the caption file says ("" when it does not exist)
        self._unreadable = ""  # why the caption cannot be read
        self._left_out = ""  # why training leaves the image out ("" when it trains)
        self._locked = False
        self._loading = False
        self._preview_pixmap: QPixmap | None = None
        self._timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._build()
        self._load()

    def _build(self) -> None:
        self.preview = _PreviewLabel()
        self.title = QLabel()
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setWordWrap(True)
        self.info = QLabel()
        self.info.setEnabled(False)  # quieter text
        self.info.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setObjectName("captionProblem")
        self.problem.setStyleSheet("#captionProblem { color: #c62828; }")
        self.problem.hide()
        self.edit = QPlainTextEdit()
        self.edit.setTabChangesFocus(True)
        self.edit.setMinimumHeight(90)
        self.edit.textChanged.connect(self._on_edit_text_changed)
        self.status = QLabel()
        self.status.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.preview, 3)
        layout.addWidget(self.title)
        layout.addWidget(self.info)
        layout.addWidget(self.problem)
        layout.addWidget(self.edit, 2)
        layout.addWidget(self.status)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._reserve_text_height()

    def _reserve_text_height(self) -> None:
        """Give each wrapped line of text the height it needs at this width, as its minimum.

        Layouts count a wrapped label's minimum as one line; a long message would then push the
        file name up over the preview when the window is short. With the real minimum, the
        preview shrinks first, and the window cannot get shorter than the text needs.
        """
        width = self.width()
        for label in (self.title, self.info, self.problem):
            label.setMinimumHeight(label.heightForWidth(width) if width > 0 and label.text() else 0)

    # -- what is shown --------------------------------------------------------------------------
    def set_item(self, image_path: Path | None, caption_path: Path | None, info: str = "", left_out: str = "") -> None:
        """Show ``image_path`` and its caption (saving the previous one's changes first).

        ``left_out``: why training leaves the image out; its caption is then shown read-only.
        """
        same = (image_path, caption_path) == (self._image_path, self._caption_path)
        if not same:
            self.flush()
            self._preview_pixmap = None
            self._image_path, self._caption_path = image_path, caption_path
        self._left_out = left_out if image_path is not None else ""
        self.title.setText(f"<b>{image_path.name}</b>" if image_path else "")
        self.info.setText(info)
        if same:
            self._update_state()
        else:
            self._load()

    def set_preview(self, pixmap: QPixmap | None) -> None:
        self._preview_pixmap = pixmap
        self._show_preview()

    def reload(self) -> None:
        """Read the caption again (it was changed on disk by a bulk edit or an undo)."""
        if self._caption_path is not None and not self.has_unsaved_changes():
            self._load()

    def set_locked(self, locked: bool) -> None:
        """Make the text read-only while a bulk edit runs (it writes the same files)."""
        if locked:
            self.flush()
        self._locked = locked
        self._update_state()

    # -- state -------------------------------------------------------------------------------------
    def image_path(self) -> Path | None:
        return self._image_path

    def caption_path(self) -> Path | None:
        return self._caption_path

    def text(self) -> str:
        return self.edit.toPlainText()

    def is_read_only(self) -> bool:
        return self.edit.isReadOnly()

    def unreadable_reason(self) -> str:
        return self._unreadable

    def left_out_reason(self) -> str:
        return self._left_out

    def has_unsaved_changes(self) -> bool:
        return self._editable() and self.edit.toPlainText().strip() != self._disk_text

    def flush(self) -> bool:
        """Save pending changes now; True when nothing is left unsaved."""
        self._timer.stop()
        return self._save()

    # -- internals ---------------------------------------------------------------------------------
    def _editable(self) -> bool:
        return self._caption_path is not None and not self._unreadable and not self._left_out and not self._locked

    def _load(self) -> None:
        self._timer.stop()
        self._unreadable = ""
        self._disk_text = ""
        if self._caption_path is not None:
            try:
                self._disk_text = read_caption(self._caption_path)
            except CaptionError as exc:
                self._unreadable = exc.reason
        self._loading = True
        self.edit.setPlainText(self._disk_text)
        self._loading = False
        exists = self._caption_path is not None and self._caption_path.exists()
        self.edit.setPlaceholderText(
            f"No caption yet. Describe what is in the picture; it is saved as {self._caption_path.name}."
            if self._caption_path is not None and not exists and not self._left_out
            else ""
        )
        self._update_state()
        self._show_status("Changes are saved automatically." if self._editable() else "")

    def _update_state(self) -> None:
        has_item = self._caption_path is not None
        self.edit.setEnabled(has_item and not self._left_out)
        self.edit.setReadOnly(not self._editable())
        if self._left_out and self._image_path is not None:
            reason = self._left_out if self._left_out.endswith(".") else f"{self._left_out}."
            self.problem.setText(
                f"Left out of training: {self._image_path.name} {reason} "
                "Its caption cannot be edited until the image is fixed or replaced."
            )
        elif self._unreadable:
            self.problem.setText(f"{self._caption_path.name} {self._unreadable}" if self._caption_path else "")
        self.problem.setVisible(bool(self._left_out or self._unreadable))
        if self._image_path is None:
            self.title.setText("<b>No image selected</b>")
            self.info.setText("Click a thumbnail to see and edit its caption.")
        self._reserve_text_height()
        self._show_preview()

    def _show_preview(self) -> None:
        self.preview.set_source(self._preview_pixmap)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status.setEnabled(error)
        self.status.setStyleSheet("color: #c62828;" if error else "")
        self.status.setText(text)

    def _on_edit_text_changed(self) -> None:
        if self._loading or not self._editable():
            return
        self._show_status("Saving in a moment…")
        self._timer.start()

    def _on_timer_timeout(self) -> None:
        self._save()

    def _save(self) -> bool:
        if not self._editable() or self._caption_path is None:
            return True
        text = self.edit.toPlainText().strip()
        if text == self._disk_text:
            return True
        path = self._caption_path
        try:
            self._history.apply(
                [CaptionChange(path, self._disk_text, text)],
                f"Edit the caption of {path.stem}",
                merge_key=("typing", path),
            )
        except CaptionError as exc:
            log.warning("caption not saved: %s", exc)
            self._show_status(f"Not saved: {exc.reason}", error=True)
            return False
        self._disk_text = text
        words = len(text.split())
        self._show_status(f"Saved · {words} word{'s' if words != 1 else ''}")
        self.caption_saved.emit(path, text)
        return True
