"""Applying caption changes, and undoing and redoing them, across an editing session.

Every apply first checks that each caption still reads as it did when the change was made (a
file edited elsewhere in the meantime stops the whole apply, before anything is written), then
writes atomically. A change set is all or nothing: if a write fails part-way, or the caller stops
it (``should_stop``), the captions already written are put back and nothing is recorded. Long
change sets report ``progress(done, total)`` after each file.

Typing saves a caption at every pause; ``CaptionHistory.apply(..., merge_key=...)`` folds such
saves into one undo step while they keep coming, so one undo takes back a burst of typing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chroma_studio.base.atomic import write_bytes_atomic
from chroma_studio.dataset.caption_ops import CaptionChange, CaptionPreview
from chroma_studio.dataset.captions import (
    CaptionError,
    delete_caption,
    normalise_caption,
    read_caption,
    write_caption,
)

log = logging.getLogger(__name__)

MERGE_WINDOW_S = 5.0  # saves with the same merge key this close together make one undo step

Progress = Callable[[int, int], object]  # (captions written, captions in all)
ShouldStop = Callable[[], bool]
_Write = tuple[Path, str | bytes | None, str | bytes | None]  # path, what to write, what to put back (None: no file)


class EditCancelled(Exception):
    """A change set was stopped part-way; every caption it had written was put back as it was."""

    def __init__(self, description: str, paths: Sequence[Path] = ()) -> None:
        super().__init__(f"{description} was cancelled; no caption was changed.")
        self.description = description
        self.paths = list(paths)  # the captions it wrote and then put back


@dataclass(frozen=True)
class CaptionEdit:
    """The undo record of one applied change set."""

    description: str
    changes: tuple[CaptionChange, ...]
    created: frozenset[Path] = field(default_factory=frozenset)  # caption files that did not exist before
    # each changed file's bytes before the edit: undo puts back exactly those (spacing and blank lines too)
    originals: Mapping[Path, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def paths(self) -> list[Path]:
        return [change.path for change in self.changes]


def apply_changes(
    changes: Iterable[CaptionChange],
    description: str = "Edit captions",
    *,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> CaptionEdit:
    """Write each change's ``after``; returns the undo record.

    Raises CaptionError, writing nothing, if any caption no longer reads as its ``before`` (both
    compared as ``read_caption`` returns them), and CaptionError or EditCancelled, with every
    caption put back, when a write fails or ``should_stop()`` turns true part-way.
    """
    changes = tuple(
        CaptionChange(Path(c.path), normalise_caption(c.before), normalise_caption(c.after)) for c in changes
    )
    _check_current(changes, "before", description, should_stop)
    created = frozenset(change.path for change in changes if not change.path.exists())
    originals = _bytes_of(change.path for change in changes if change.path not in created)
    writes = [(c.path, c.after, None if c.path in created else originals.get(c.path, c.before)) for c in changes]
    _write_all(writes, description, progress, should_stop)
    log.info("%s: %d captions changed", description, len(changes))
    return CaptionEdit(description, changes, created, originals)


def revert_edit(edit: CaptionEdit, *, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> None:
    """Put back every caption of ``edit`` as it was (deleting the ones it created).

    Raises CaptionError, changing nothing, if any caption was edited again since; a failed write
    or a stop part-way (EditCancelled) leaves every caption as ``edit`` had made it.
    """
    _check_current(edit.changes, "after", edit.description, should_stop)
    writes = [(c.path, _restored(edit, c), c.after) for c in reversed(edit.changes)]
    _write_all(writes, edit.description, progress, should_stop)
    log.info("undid %s: %d captions", edit.description, len(edit.changes))


def _check_current(
    changes: tuple[CaptionChange, ...], expected: str, description: str, should_stop: ShouldStop | None
) -> None:
    stale = []
    for change in changes:
        if should_stop is not None and should_stop():
            raise EditCancelled(description)
        if read_caption(change.path) != getattr(change, expected):
            stale.append(change)
    if stale:
        others = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise CaptionError(
            stale[0].path,
            f"was changed by something else after this edit was prepared{others}; nothing was written. "
            "Reload the captions and try again.",
        )


def _write_all(
    writes: Sequence[_Write], description: str, progress: Progress | None, should_stop: ShouldStop | None
) -> None:
    """Make every write, or none: on a failure or a stop, the ones made are put back, newest first."""
    done: list[_Write] = []
    try:
        for write in writes:
            if should_stop is not None and should_stop():
                raise EditCancelled(description, [path for path, _, _ in done])
            _set_caption(write[0], write[1])
            done.append(write)
            if progress is not None:
                progress(len(done), len(writes))
    except BaseException:
        for path, _, previous in reversed(done):
            try:
                _set_caption(path, previous)
            except CaptionError:
                log.exception("could not put back %s after a failed or stopped edit", path)
        raise


def _restored(edit: CaptionEdit, change: CaptionChange) -> str | bytes | None:
    """What undoing ``edit`` puts back for ``change``: no file, the file's old bytes, or its old text."""
    if change.path in edit.created:
        return None
    return edit.originals.get(change.path, change.before)


def _bytes_of(paths: Iterable[Path]) -> dict[Path, bytes]:
    """The bytes of each caption file (already read as text by the caller; one that fails now is left out,
    and its text is what an undo writes)."""
    found = {}
    for path in paths:
        try:
            found[path] = path.read_bytes()
        except OSError as exc:
            log.warning("could not keep the bytes of %s for undo: %s", path, exc)
    return found


def _set_caption(path: Path, content: str | bytes | None) -> None:
    """Write a caption's text, delete it (None), or put back a file's old bytes.

    Old bytes go back as their text first (the file's style kept, as every write), then as the
    bytes themselves where the text alone does not give them back (spacing, blank lines).
    """
    if content is None:
        delete_caption(path)
        return
    if isinstance(content, str):
        write_caption(path, content)
        return
    write_caption(path, normalise_caption(content.decode("utf-8-sig")))
    try:
        if path.read_bytes() != content:
            write_bytes_atomic(path, content)
    except OSError as exc:
        raise CaptionError(path, f"could not be put back exactly ({exc.strerror or exc}).") from exc


def _merged(first: CaptionEdit, second: CaptionEdit) -> CaptionEdit:
    """One undo step for ``first`` followed by ``second``: each caption from its first ``before`` to
    its last ``after``; captions that end as they began are left out."""
    before = {change.path: change.before for change in first.changes}
    after = {change.path: change.after for change in first.changes}
    for change in second.changes:
        before.setdefault(change.path, change.before)
        after[change.path] = change.after
    created = first.created | (second.created - set(first.paths))
    changes = tuple(
        CaptionChange(path, before[path], after[path])
        for path in before
        if before[path] != after[path] or path in created
    )
    paths = {change.path for change in changes}
    originals = {p: b for p, b in {**second.originals, **first.originals}.items() if p in paths}
    return CaptionEdit(first.description, changes, created & paths, originals)


class CaptionHistory:
    """Undo and redo over the caption edits of a session, newest last.

    Each action takes ``progress`` and ``should_stop`` (see ``apply_changes``); one that fails or
    is stopped leaves the captions and the history as they were.
    """

    def __init__(
        self, limit: int = 200, merge_window_s: float = MERGE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.merge_window_s = merge_window_s
        self._clock = clock
        self._undo: list[CaptionEdit] = []
        self._redo: list[CaptionEdit] = []
        self._merge_key: Hashable | None = None  # the key of the newest undo step while it may still grow
        self._merge_time = 0.0  # when that step last grew
        self._open_steps: dict[Hashable, CaptionEdit] = {}  # steps that ``grow_step`` still adds to

    def apply(
        self,
        changes: CaptionPreview | Iterable[CaptionChange],
        description: str | None = None,
        *,
        merge_key: Hashable | None = None,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
    ) -> CaptionEdit:
        """Apply a preview (or plain changes) and remember it for undo; returns what was applied now.
        Clears the redo list.

        With a ``merge_key``, an edit that follows the newest undo step within ``merge_window_s``
        of its last growth, with the same key and nothing undone or applied in between, joins that
        step instead of making a new one (typing saved at every pause undoes as one burst).
        """
        if isinstance(changes, CaptionPreview):
            description = description or changes.description
            changes = changes.changes
        edit = apply_changes(changes, description or "Edit captions", progress=progress, should_stop=should_stop)
        if not edit.changes:
            return edit
        now = self._clock()
        if self._merges(merge_key, now):
            merged = _merged(self._undo[-1], edit)
            if merged.changes:
                self._undo[-1] = merged
            else:  # the burst ended where it began: nothing is left to undo
                self._undo.pop()
                merge_key = None
        else:
            self._undo.append(edit)
            del self._undo[: -self.limit]
        self._redo.clear()
        self._merge_key, self._merge_time = merge_key, now
        return edit

    def _merges(self, merge_key: Hashable | None, now: float) -> bool:
        return (
            merge_key is not None
            and merge_key == self._merge_key
            and bool(self._undo)
            and now - self._merge_time <= self.merge_window_s
        )

    def grow_step(self, key: Hashable, changes: Iterable[CaptionChange], description: str) -> CaptionEdit:
        """Apply ``changes`` (checked and written as ``apply`` does) into the one undo step ``key``
        names, wherever that step now is in the undo list; the first call makes it, the newest.

        For a long pass that writes captions one at a time while the user may type in between (the
        typed saves become undo steps of their own above it): the whole pass still undoes as one
        step. Steps above it never touch its captions as long as the pass skips a caption the user
        has edited, which its ``CaptionError`` on a changed caption makes sure of. ``end_step``
        closes it. Returns what was applied now.
        """
        edit = apply_changes(changes, description)
        if not edit.changes:
            return edit
        step = self._open_steps.get(key)
        position = next((i for i, done in enumerate(self._undo) if done is step), None)
        if position is None:  # the first write, or the step was dropped past the limit
            self._undo.append(edit)
            del self._undo[: -self.limit]
            self._merge_key = None
            step = edit
        else:
            step = _merged(self._undo[position], edit)
            self._undo[position] = step
        self._open_steps[key] = step
        self._redo.clear()
        return edit

    def end_step(self, key: Hashable) -> CaptionEdit | None:
        """Stop growing the step ``key`` names; it stays in the history. Returns it (None: it made none)."""
        step = self._open_steps.pop(key, None)
        return step if step is not None and any(done is step for done in self._undo) else None

    def withdraw_step(self, key: Hashable) -> CaptionEdit | None:
        """Put back every caption of the step ``key`` names and forget the step (it cannot be redone).

        Raises CaptionError, changing nothing and keeping the step open, if one of its captions was
        edited again since. None when the step wrote nothing.
        """
        step = self._open_steps.get(key)
        position = next((i for i, done in enumerate(self._undo) if done is step), None)
        if step is None or position is None:
            self._open_steps.pop(key, None)
            return None
        revert_edit(step)
        del self._undo[position]
        del self._open_steps[key]
        if position == len(self._undo):
            self._merge_key = None
        return step

    def undo(self, *, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> CaptionEdit | None:
        """Revert the newest edit; None when there is nothing to undo."""
        if not self._undo:
            return None
        edit = self._undo[-1]
        revert_edit(edit, progress=progress, should_stop=should_stop)  # on an error the history is unchanged
        self._redo.append(self._undo.pop())
        self._merge_key = None
        return edit

    def redo(self, *, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> CaptionEdit | None:
        """Apply the newest undone edit again; None when there is nothing to redo."""
        if not self._redo:
            return None
        undone = self._redo[-1]
        edit = apply_changes(undone.changes, undone.description, progress=progress, should_stop=should_stop)
        self._redo.pop()
        self._undo.append(edit)
        self._merge_key = None
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
        self._open_steps.clear()
        self._merge_key = None
