"""``AutoCaptionController``: the Dataset page's "Caption images…": its button, dialog and pass.

It enables the button only when a pass can run (images are shown, no training run and no other
caption job is under way; the tooltip says why not), opens ``AutoCaptionDialog`` over the
selection or the whole dataset, shows each caption in the grid as it is written, lets the user
keep typing (a caption saved during the pass is skipped by it) and says how the pass ended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt

from chroma_studio.dataset.captioners import downloaded_captioners
from chroma_studio.gui.dataset.auto_caption_dialog import AutoCaptionDialog, recommended_captioner
from chroma_studio.gui.dataset.auto_caption_run import AutoCaptionRun, Backend, PassOutcome, Stage
from chroma_studio.gui.dataset.auto_caption_targets import duration_text
from chroma_studio.gui.dataset.jobs import CaptionState
from chroma_studio.protocol.remote import run_in_process

if TYPE_CHECKING:
    from chroma_studio.gui.pages.dataset import DatasetPage

log = logging.getLogger(__name__)

TRAINING_REASON = "A training run is using this computer: caption images once it has ended."
BUSY_REASON = "A caption edit is being written: wait for it to finish."
NO_IMAGES_REASON = "Add a folder of images first."
RUNNING_REASON = "Captioning is under way: the progress line below shows it."
READY_TIP = "Write captions with a captioning model; the first ones are shown before the rest."


class AutoCaptionController(QObject):
    def __init__(self, page: DatasetPage, backend: Backend = run_in_process) -> None:
        super().__init__(page)
        self.page = page
        self.run = AutoCaptionRun(page.runner, page.caption_actions.history, backend, self)
        self.run.prepare_write = self._save_typing_first
        self.dialog: AutoCaptionDialog | None = None
        page.auto_caption_button.clicked.connect(self.open_dialog)
        page.editor.caption_saved.connect(self._on_editor_caption_saved)
        self.run.captions_changed.connect(self._on_run_captions_changed)
        self.run.stage_changed.connect(self._on_run_stage_changed)
        self.run.ended.connect(self._on_run_ended)
        page.studio.controller.model.status_changed.connect(self.update_button)
        page.caption_actions.busy_changed.connect(self.update_button)
        page.model.modelReset.connect(self.update_button)
        page.studio.dataset_folders_changed.connect(self.run.cancel)  # its captions belong to the old folders
        page.studio.dataset_folders_changed.connect(self.update_button)
        self.update_button()

    @property
    def active(self) -> bool:
        return self.run.active

    def unavailable_reason(self) -> str:
        """Why a pass cannot start now ("" when it can)."""
        if self.page.studio.controller.model.active:
            return TRAINING_REASON
        if self.run.active:
            return RUNNING_REASON
        if self.page.caption_actions.is_busy():
            return BUSY_REASON
        if not self.page.model.rowCount():
            return NO_IMAGES_REASON
        return ""

    def update_button(self, *_args: object) -> None:
        reason = self.unavailable_reason()
        self.page.auto_caption_button.setVisible(bool(self.page.studio.dataset_folders))
        self.page.auto_caption_button.setEnabled(not reason)
        self.page.auto_caption_button.setToolTip(reason or READY_TIP)

    def open_dialog(self) -> AutoCaptionDialog | None:
        reason = self.unavailable_reason()
        if reason:
            self.page.message_bar.show_message(reason, "info")
            return None
        page = self.page
        page.editor.flush()
        items = page.model.items()
        selected = [page.model.item(row) for row in page.selected_rows()]
        downloaded = {found.captioner.name for found in downloaded_captioners()}
        dialog = AutoCaptionDialog(
            self.run,
            items,
            selected,
            page.trigger_word(),
            recommended_captioner(page.studio.summary),
            downloaded,
            page.loader.pixmap,
            page,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(self._on_dialog_destroyed)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _on_dialog_destroyed(self) -> None:
        self.dialog = None

    # -- during the pass ------------------------------------------------------------------------------------
    def _save_typing_first(self, caption_path: Path) -> None:
        """Before the pass writes a caption the editor shows, save what was typed there (the pass then skips it)."""
        editor = self.page.editor
        if editor.caption_path() == caption_path and editor.has_unsaved_changes():
            editor.flush()

    def _on_editor_caption_saved(self, caption_path: Path, _text: str) -> None:
        self.run.note_user_edit(caption_path)

    def _on_run_captions_changed(self, states: list[CaptionState]) -> None:
        page = self.page
        for path, text, error in states:
            page.model.set_caption(path, text, error)
        if page.editor.caption_path() in {path for path, _, _ in states}:
            page.editor.reload()

    def _on_run_stage_changed(self, stage: Stage) -> None:
        page = self.page
        busy = stage is not Stage.IDLE
        page.add_trigger_button.setEnabled(not busy)
        page.more_edits_button.setEnabled(not busy)
        page.undo_button.setEnabled(not busy and page.caption_actions.history.can_undo)
        page.redo_button.setEnabled(not busy and page.caption_actions.history.can_redo)
        self.update_button()

    def _on_run_ended(self, outcome: PassOutcome) -> None:
        page = self.page
        page.filter_model.refresh()  # a filter by "no caption" follows the new captions
        page.caption_actions.history_changed.emit()  # the page's Undo names the pass
        if outcome.withdrawn and not outcome.failure:
            return
        message, level = pass_message(outcome)
        if message:
            page.message_bar.show_message(message, level)


def pass_message(outcome: PassOutcome) -> tuple[str, str]:
    """What the page says when a pass has ended: (text, level)."""
    written = len(outcome.written)
    parts = []
    if outcome.failure:
        parts.append(outcome.failure)
    if outcome.cancelled:
        parts.append(f"Captioning was stopped: the {written:,} caption{'s' if written != 1 else ''} written are kept.")
    elif written:
        took = f" in {duration_text(outcome.seconds)}" if outcome.seconds else ""
        parts.append(f"{written:,} caption{'s' if written != 1 else ''} written{took}.")
    if outcome.edited:
        count = len(outcome.edited)
        parts.append(f"{count:,} caption{'s' if count != 1 else ''} you edited meanwhile were left as you wrote them.")
    if outcome.unreadable:
        image, reason = outcome.unreadable[0]
        more = f" (and {len(outcome.unreadable) - 1:,} more)" if len(outcome.unreadable) > 1 else ""
        parts.append(f"Skipped {Path(image).name}{more}: {reason}")
    if written:
        parts.append("Undo takes the whole pass back.")
    level = "error" if outcome.failure else "warning" if outcome.unreadable else "info"
    return " ".join(parts), level
