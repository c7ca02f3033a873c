"""Applying caption changes, and undoing and redoing them, across an editing session.

Every apply first checks that each caption still reads as it did when the change was made (a
file edited elsewhere in the meantime stops the whole apply, before anything is written), then
writes atomically. If a write fails part-way, the captions already written are put back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chroma_studio.dataset.caption_ops import CaptionChange, CaptionPreview
from chroma_studio.dataset.captions import (
    CaptionError,
    delete_caption,
    normalise_caption,
    read_caption,
    write_caption,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionEdit:
    """The undo record of one applied change set."""

    description: str
    changes: tuple[CaptionChange, ...]
    created: frozenset[Path] = field(default_factory=frozenset)  # caption files that did not exist before

    @property
    def paths(self) -> list[Path]:
        return [change.path for change in self.changes]


def apply_changes(changes: Iterable[CaptionChange], description: str = "Edit captions") -> CaptionEdit:
    """Write each change's ``after``; returns the undo record. Raises CaptionError, writing nothing,
    if any caption no longer reads as its ``before`` (both compared as ``read_caption`` returns them)."""
    changes = tuple(
        CaptionChange(Path(c.path), normalise_caption(c.before), normalise_caption(c.after)) for c in changes
    )
    _check_current(changes, expected="before")
    created = frozenset(change.path for change in changes if not change.path.exists())
    done: list[CaptionChange] = []
    try:
        for change in changes:
            write_caption(change.path, change.after)
            done.append(change)
    except CaptionError:
        _put_back(done, created)
        raise
    log.info("%s: %d captions changed", description, len(changes))
    return CaptionEdit(description, changes, created)


def revert_edit(edit: CaptionEdit) -> None:
    """Put back every caption of ``edit`` as it was (deleting the ones it created). Raises
    CaptionError, changing nothing, if any caption was edited again since."""
    _check_current(edit.changes, expected="after")
    _put_back(edit.changes, edit.created, strict=True)
    log.info("undid %s: %d captions", edit.description, len(edit.changes))


def _check_current(changes: tuple[CaptionChange, ...], expected: str) -> None:
    stale = [c for c in changes if read_caption(c.path) != getattr(c, expected)]
    if stale:
        others = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise CaptionError(
            stale[0].path,
            f"was changed by something else after this edit was prepared{others}; nothing was written. "
            "Reload the captions and try again.",
        )


def _put_back(changes: Iterable[CaptionChange], created: frozenset[Path], strict: bool = False) -> None:
    for change in reversed(list(changes)):
        try:
            if change.path in created:
                delete_caption(change.path)
            else:
                write_caption(change.path, change.before)
        except CaptionError:
            if strict:
                raise
            log.exception("could not restore %s after a failed write", change.path)


class CaptionHistory:
    """Undo and redo over the caption edits of a session, newest last."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._undo: list[CaptionEdit] = []
        self._redo: list[CaptionEdit] = []

    def apply(self, changes: CaptionPreview | Iterable[CaptionChange], description: str | None = None) -> CaptionEdit:
        """Apply a preview (or plain changes) and remember it for undo. Clears the redo list."""
        if isinstance(changes, CaptionPreview):
            description = description or changes.description
            changes = changes.changes
        edit = apply_changes(changes, description or "Edit captions")
        if edit.changes:
            self._undo.append(edit)
            del self._undo[: -self.limit]
            self._redo.clear()
        return edit

    def undo(self) -> CaptionEdit | None:
        """Revert the newest edit; None when there is nothing to undo."""
        if not self._undo:
            return None
        edit = self._undo[-1]
        revert_edit(edit)  # on CaptionError the history is unchanged
        self._redo.append(self._undo.pop())
        return edit

    def redo(self) -> CaptionEdit | None:
        """Apply the newest undone edit again; None when there is nothing to redo."""
        if not self._redo:
            return None
        edit = apply_changes(self._redo[-1].changes, self._redo[-1].description)
        self._redo.pop()
        self._undo.append(edit)
        return edit

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_description(self) -> str | None:
        return self._undo[-1].description if self._undo else None

    @property
    def redo_description(self) -> str | None:
        return self._redo[-1].description if self._redo else None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
