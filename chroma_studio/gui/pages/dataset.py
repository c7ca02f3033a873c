"""``DatasetPage``: drop a folder of images, fix their captions, choose the trigger word.

Empty, the page is one big drop target. With images it shows the thumbnail grid (badges for
problems, a filter by problem or text), the caption editor and the dataset's figures beside it,
and the bulk caption edits with undo and redo (Ctrl+Z, Ctrl+Shift+Z) above it; "Caption
images…" writes captions with a captioning model (``auto_caption_page``), one undo step. Scanning,
the image check, bulk edits, undo and redo run in the background with progress and Cancel (a
cancelled scan shows what it found; a cancelled caption job changes nothing); thumbnails decode
on their own pool. Call ``shutdown()`` before the page goes away: it waits for that work to end.

The folders, the trigger word and the resolution are the Studio's: the page shows them, changes
them through it, and follows its signals; it tells the Studio how many images can train.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QWidget

from chroma_studio.gui.dataset.auto_caption_page import AutoCaptionController
from chroma_studio.gui.dataset.bulk_caption_dialog import BulkCaptionDialog
from chroma_studio.gui.dataset.items import DatasetItem, DatasetStats
from chroma_studio.gui.dataset.jobs import CaptionState
from chroma_studio.gui.dataset.layout import DatasetLayout
from chroma_studio.gui.dataset.loading import DatasetLoading
from chroma_studio.gui.dataset.model import DatasetRole
from chroma_studio.gui.studio import Studio
from chroma_studio.gui.widgets.drop_zone import dropped_paths, folders_for_paths

log = logging.getLogger(__name__)

STATS_DELAY_MS = 150
TRIGGER_HINT = "Optional. Not added to captions for you: type it, then use <i>Add trigger word…</i>"


class DatasetPage(DatasetLayout):
    images_loaded = Signal(int)  # a scan ended: the number of images now shown
    images_checked = Signal()  # the image check (damage, duplicates) ended, or was cancelled

    def __init__(self, studio: Studio, parent: QWidget | None = None) -> None:
        super().__init__(studio.resolution, parent)
        self.studio = studio
        self._history_outdated = False  # a folder was removed: its undo steps go when no job runs
        self.loading = DatasetLoading(self.runner, self.model, self.loader, self)
        self.auto_caption = AutoCaptionController(self)  # "Caption images…"
        self._stats_timer = QTimer(self, singleShot=True, interval=STATS_DELAY_MS)
        self._stats_timer.timeout.connect(self._on_stats_timer_timeout)
        self.setAcceptDrops(True)  # a drop anywhere on the page adds folders
        self._connect()
        self.trigger_edit.setText(studio.trigger_word)
        self._show_folders()
        self._on_stats_timer_timeout()
        if studio.dataset_folders:
            self.rescan()

    def _connect(self) -> None:
        self.drop_zone.paths_dropped.connect(self.add_paths)
        self.drop_zone.add_folder_requested.connect(self.choose_folder)
        self.grid.paths_dropped.connect(self.add_paths)
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.trigger_edit.textChanged.connect(self._on_trigger_edit_text_changed)
        self.trigger_hint.linkActivated.connect(self._on_trigger_hint_link_activated)
        self.problem_combo.currentIndexChanged.connect(self._on_problem_combo_current_index_changed)
        self.search_edit.textChanged.connect(self.filter_model.set_text_filter)
        self.add_trigger_button.clicked.connect(partial(self.open_bulk_dialog, "add-trigger"))
        for kind, action in self.edit_actions.items():
            action.triggered.connect(partial(self.open_bulk_dialog, kind))
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        redo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        if QKeySequence("Ctrl+Shift+Z") not in redo_keys:
            redo_keys.append(QKeySequence("Ctrl+Shift+Z"))
        undo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Undo)
        for keys, slot in ((undo_keys, self.undo), (redo_keys, self.redo)):
            shortcut = QShortcut(self)
            shortcut.setKeys(keys)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        selection = self.grid.selectionModel()
        selection.currentChanged.connect(self._on_selection_current_changed)
        selection.selectionChanged.connect(self._update_selection_label)
        for signal in (self.filter_model.modelReset, self.filter_model.rowsInserted, self.filter_model.rowsRemoved):
            signal.connect(self._update_selection_label)
        self.model.modelReset.connect(self._stats_timer.start)
        self.model.dataChanged.connect(self._stats_timer.start)
        self.loader.thumbnail_changed.connect(self._on_loader_thumbnail_changed)
        self.editor.caption_saved.connect(self._on_editor_caption_saved)
        self.caption_actions.captions_changed.connect(self._on_caption_actions_captions_changed)
        self.caption_actions.busy_changed.connect(self._on_caption_actions_busy_changed)
        self.caption_actions.history_changed.connect(self._on_caption_actions_history_changed)
        self.caption_actions.failed.connect(partial(self.message_bar.show_message, level="error"))
        self.caption_actions.cancelled.connect(partial(self.message_bar.show_message, level="info"))
        self.loading.loaded.connect(self._on_loading_loaded)
        self.loading.checked.connect(self._on_loading_checked)
        self.loading.status_changed.connect(self._on_loading_status_changed)
        self.loading.message_posted.connect(self.message_bar.show_message)
        self.studio.dataset_folders_changed.connect(self._on_studio_dataset_folders_changed)
        self.studio.trigger_word_changed.connect(self._on_studio_trigger_word_changed)
        self.studio.resolution_changed.connect(self._on_studio_resolution_changed)

    # -- the interface of the main window (and of tests): the Studio's dataset --------------------------
    def folders(self) -> list[str]:
        return self.studio.dataset_folders

    def set_folders(self, folders: Iterable[str]) -> None:
        """Use these dataset folders (made absolute, each once); the page scans them when they change."""
        self.studio.set_dataset_folders(list(folders))

    def add_folders(self, folders: Iterable[str]) -> None:
        self.studio.add_dataset_folders(list(folders))

    def remove_folder(self, folder: str) -> None:
        self.studio.remove_dataset_folder(folder)

    def trigger_word(self) -> str:
        return self.studio.trigger_word

    def set_trigger_word(self, word: str) -> None:
        self.studio.set_trigger_word(word)

    def resolution(self) -> int:
        return self.studio.resolution

    def set_resolution(self, resolution: int) -> None:
        """The training resolution: for the training shapes and the 'smaller than' badges."""
        self.studio.set_resolution(resolution)

    def _on_studio_dataset_folders_changed(self, _folders: list[str], removed: list[str]) -> None:
        if removed:
            # Undo must not change captions in a folder that is no longer shown (the same file
            # name may be in the new one): the history of the old folders goes.
            self._history_outdated = True
            self._forget_outdated_history()
        self._show_folders()
        self.rescan()

    def _on_studio_trigger_word_changed(self, word: str) -> None:
        if self.trigger_edit.text().strip() != word:  # set elsewhere (a project opened), not typed here
            self.trigger_edit.setText(word)
        self.model.set_trigger_word(word)
        self._stats_timer.start()  # the hint follows the word even with no images to change

    def _on_studio_resolution_changed(self, resolution: int) -> None:
        self.model.set_resolution(resolution)
        self._on_selection_current_changed(self.grid.currentIndex())

    def image_count(self) -> int:
        return self.model.rowCount()

    def usable_image_count(self) -> int | None:
        """Images that train (not the damaged ones, nor those with an unreadable caption); None while
        the folders are being scanned."""
        if self.loading.is_scanning():
            return None
        return self.model.stats().trainable

    def shutdown(self) -> None:
        """Save the caption being typed and wait for all background work to end."""
        self.editor.flush()
        self.runner.shutdown()
        self.loader.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- folders and scanning ----------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folders = self.studio.dataset_folders
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of images", folders[-1] if folders else "")
        if folder:
            self.add_folders([folder])

    def add_paths(self, paths: Iterable[str]) -> None:
        """Add dropped folders and image files (an image adds the folder it is in)."""
        folders = folders_for_paths(paths)
        if folders:
            self.add_folders(folders)
        else:
            self.message_bar.show_message(
                "Drop folders or image files (JPEG, PNG, WebP and other common formats).", "warning"
            )

    def rescan(self) -> None:
        """Scan the folders again; the image check follows."""
        self.editor.set_item(None, None)
        self.message_bar.clear()
        folders = self.studio.dataset_folders
        self.stack.setCurrentIndex(1 if folders else 0)
        self.loading.load(folders)
        self.studio.set_dataset_images(None if self.loading.is_loading() else 0, 0)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def _on_loading_loaded(self, count: int) -> None:
        self._on_stats_timer_timeout()
        if count:
            self.grid.setCurrentIndex(self.filter_model.index(0, 0))
        self.images_loaded.emit(count)

    def _on_loading_checked(self, _completed: bool) -> None:
        self._refresh_filter()
        self._on_stats_timer_timeout()
        self._on_selection_current_changed(self.grid.currentIndex())  # a damaged image is now left out
        self.images_checked.emit()

    def _on_loading_status_changed(self, text: str) -> None:
        self.grid.empty_text = text
        self.grid.viewport().update()

    def _show_folders(self) -> None:
        folders = self.studio.dataset_folders
        names = [Path(f).name or f for f in folders]
        self.folders_button.setText(f"Folder: {names[0]}" if len(names) == 1 else f"{len(names)} folders")
        self.folders_button.setToolTip("\n".join(folders))
        self.folders_button.setVisible(bool(folders))
        self.add_folder_button.setVisible(bool(folders))
        menu = self.folders_menu
        menu.clear()
        for folder in folders:
            menu.addAction(f"Remove {folder}").triggered.connect(partial(self.remove_folder, folder))
        menu.addSeparator()
        menu.addAction("Scan again").triggered.connect(self.rescan)
        menu.addAction("Add folder…").triggered.connect(self.choose_folder)

    # -- selection and the editor --------------------------------------------------------------------------
    def selected_rows(self) -> list[int]:
        """Rows of the model (not of the filter) that are selected, in order."""
        rows = [index.row() for index in self.grid.selectionModel().selectedIndexes()]
        return sorted(self.filter_model.source_rows(rows))

    def shown_rows(self) -> list[int]:
        return self.filter_model.source_rows(list(range(self.filter_model.rowCount())))

    def _on_selection_current_changed(self, current: QModelIndex, _previous: QModelIndex | None = None) -> None:
        item = current.data(DatasetRole.ITEM) if current.isValid() else None
        if not isinstance(item, DatasetItem):
            self.editor.set_item(None, None)
            return
        if not item.usable:
            info = f"{item.width}×{item.height} · left out of training" if item.width else "left out of training"
            self.editor.set_item(item.path, item.caption_path, info, left_out=item.left_out_reason)
            self.editor.set_preview(self.loader.pixmap(str(item.path)))
            return
        bucket = item.bucket(self.resolution())
        shape = f" · trains as {bucket[0]}×{bucket[1]}" if bucket else ""
        if item.caption_error:
            shape = " · left out of training until its caption can be read"
        self.editor.set_item(item.path, item.caption_path, f"{item.width}×{item.height}{shape}")
        self.editor.set_preview(self.loader.pixmap(str(item.path)))

    def _on_loader_thumbnail_changed(self, path: str) -> None:
        if self.editor.image_path() is not None and str(self.editor.image_path()) == path:
            self.editor.set_preview(self.loader.pixmap(path))

    def _update_selection_label(self, *_args: object) -> None:
        total, shown = self.model.rowCount(), self.filter_model.rowCount()
        selected = len(self.grid.selectionModel().selectedIndexes())
        text = f"{total:,} images" if shown == total else f"{shown:,} of {total:,} images shown"
        if selected:
            text += f" · {selected:,} selected (caption edits apply to them)"
        elif shown:
            text += " · caption edits apply to all shown; select some to narrow them"
        self.selection_label.setText(text)

    def _on_editor_caption_saved(self, caption_path: Path, text: str) -> None:
        self.model.set_caption(caption_path, text)
        self._update_history_buttons()

    # -- trigger word, filter, stats -----------------------------------------------------------------------
    def _on_trigger_edit_text_changed(self, text: str) -> None:
        self.studio.set_trigger_word(text)

    def _on_trigger_hint_link_activated(self, _link: str) -> None:
        self.open_bulk_dialog("add-trigger", rows=range(self.model.rowCount()))

    def _on_problem_combo_current_index_changed(self, _index: int) -> None:
        self.filter_model.set_problem_filter(self.problem_combo.currentData() or "")

    def _refresh_filter(self) -> None:
        if self.filter_model.problem_filter() or self.filter_model.text_filter():
            self.filter_model.refresh()

    def _on_stats_timer_timeout(self) -> None:
        stats = self.model.stats()
        self.stats_widget.set_stats(stats)
        self._show_trigger_hint(stats)
        self.set_problem_counts(stats)
        self._update_selection_label()
        self.studio.set_dataset_images(self.usable_image_count(), self.image_count())

    def _show_trigger_hint(self, stats: DatasetStats) -> None:
        usable = stats.images - stats.unusable
        if not stats.trigger_word:
            text = TRIGGER_HINT
        elif not usable:
            text = ""
        elif stats.with_trigger < usable:
            missing = usable - stats.with_trigger
            text = f"Missing from {missing:,} caption{'s' if missing != 1 else ''} · <a href='add'>Add it to them…</a>"
        else:
            text = "✓ In every caption"
        self.trigger_hint.setText(text)

    # -- caption edits ------------------------------------------------------------------------------------------
    def open_bulk_dialog(self, kind: str, rows: Iterable[int] | None = None) -> BulkCaptionDialog | None:
        """Open the preview dialog of a bulk caption edit over ``rows`` (default: the selection, or all
        shown images); it is applied, undoably, when the dialog is accepted."""
        if self.caption_actions.is_busy() or self.auto_caption.active:
            return None
        self.editor.flush()
        rows = list(rows) if rows is not None else (self.selected_rows() or self.shown_rows())
        paths = self.model.caption_paths(rows)
        if not paths:
            self.message_bar.show_message("There are no captions to edit: add a folder of images first.", "info")
            return None
        dialog = BulkCaptionDialog(kind, paths, self.trigger_word(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(partial(self._on_bulk_dialog_accepted, dialog))
        dialog.open()
        return dialog

    def _on_bulk_dialog_accepted(self, dialog: BulkCaptionDialog) -> None:
        preview = dialog.preview()
        if preview is not None and preview.changes:
            self.caption_actions.apply(preview)

    def undo(self) -> bool:
        """Undo the newest caption change (bulk edit or typed caption); False when there is none."""
        self.editor.flush()
        return not self.auto_caption.active and self.caption_actions.undo()

    def redo(self) -> bool:
        self.editor.flush()
        return not self.auto_caption.active and self.caption_actions.redo()

    def _on_caption_actions_captions_changed(self, states: list[CaptionState]) -> None:
        for path, text, error in states:
            self.model.set_caption(path, text, error)
        if self.editor.caption_path() in {path for path, _, _ in states}:
            self.editor.reload()
        self._refresh_filter()

    def _on_caption_actions_busy_changed(self, busy: bool) -> None:
        self.editor.set_locked(busy)
        self.add_trigger_button.setEnabled(not busy)
        self.more_edits_button.setEnabled(not busy)
        self._forget_outdated_history()
        self._update_history_buttons()

    def _forget_outdated_history(self) -> None:
        """Clear the undo history after a folder was removed (once no caption job uses it)."""
        if self._history_outdated and not self.caption_actions.is_busy():
            self._history_outdated = False
            self.caption_actions.history.clear()
            self._update_history_buttons()

    def _on_caption_actions_history_changed(self) -> None:
        self._update_history_buttons()

    def _update_history_buttons(self) -> None:
        history, busy = self.caption_actions.history, self.caption_actions.is_busy() or self.auto_caption.active
        self.undo_button.setEnabled(history.can_undo and not busy)
        self.redo_button.setEnabled(history.can_redo and not busy)
        self.undo_button.setToolTip(
            f"Undo {history.undo_description} (Ctrl+Z)" if history.can_undo else "Nothing to undo"
        )
        self.redo_button.setToolTip(
            f"Redo {history.redo_description} (Ctrl+Shift+Z)" if history.can_redo else "Nothing to redo"
        )

    # -- for tests and the main window ---------------------------------------------------------------------
    def stats(self) -> DatasetStats:
        return self.model.stats()

    def wait_for_background(self, msecs: int = -1) -> bool:
        """Block until scans, checks, caption jobs and thumbnail decodes have ended."""
        return self.runner.wait_for_done(msecs) and self.loader.wait_for_done(msecs)
