"""Caption change sets report progress and can be stopped part-way: a stopped one changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chroma_studio.dataset import (
    CaptionError,
    CaptionHistory,
    EditCancelled,
    add_trigger_word,
    apply_changes,
    preview_operation,
)
from chroma_studio.dataset import caption_history as history_module

COUNT = 12


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(COUNT):
        if i % 4 != 3:  # every fourth caption does not exist yet: the edit creates it
            (tmp_path / f"c{i:02d}.txt").write_bytes(b"a photo\r\n" if i % 2 else b"\xef\xbb\xbfa photo")
    return tmp_path


def paths(folder: Path) -> list[Path]:
    return [folder / f"c{i:02d}.txt" for i in range(COUNT)]


def stop_after(writes: int, seen: list[tuple[int, int]]):
    """A should_stop that turns true once ``writes`` captions have been written (as progress tells)."""
    return lambda: bool(seen) and seen[-1][0] >= writes


def test_apply_reports_each_caption_written(folder):
    seen: list[tuple[int, int]] = []

    edit = apply_changes(
        preview_operation(paths(folder), add_trigger_word("ohwx")).changes, progress=lambda *a: seen.append(a)
    )

    assert seen == [(i, COUNT) for i in range(1, COUNT + 1)]
    assert len(edit.changes) == COUNT


def test_a_cancelled_apply_puts_back_every_caption_and_records_nothing(folder):
    history = CaptionHistory()
    before = snapshot(folder)
    seen: list[tuple[int, int]] = []
    preview = preview_operation(paths(folder), add_trigger_word("ohwx"))

    with pytest.raises(EditCancelled) as stopped:
        history.apply(preview, progress=lambda *a: seen.append(a), should_stop=stop_after(5, seen))

    assert snapshot(folder) == before, "byte for byte, and the captions it created are gone"
    assert seen[-1] == (5, COUNT)
    assert stopped.value.paths == paths(folder)[:5]
    assert "no caption was changed" in str(stopped.value)
    assert not history.can_undo and not history.can_redo


def test_a_stop_while_checking_writes_nothing(folder):
    before = snapshot(folder)

    with pytest.raises(EditCancelled) as stopped:
        apply_changes(preview_operation(paths(folder), add_trigger_word("ohwx")).changes, should_stop=lambda: True)

    assert stopped.value.paths == []
    assert snapshot(folder) == before


def test_a_cancelled_undo_leaves_the_edit_in_place_and_undoable(folder):
    history = CaptionHistory()
    history.apply(preview_operation(paths(folder), add_trigger_word("ohwx")))
    after = snapshot(folder)
    seen: list[tuple[int, int]] = []

    with pytest.raises(EditCancelled):
        history.undo(progress=lambda *a: seen.append(a), should_stop=stop_after(4, seen))

    assert snapshot(folder) == after
    assert history.can_undo and not history.can_redo
    assert history.undo() is not None
    assert not (folder / "c03.txt").exists()


def test_a_cancelled_redo_leaves_the_edit_undone_and_redoable(folder):
    history = CaptionHistory()
    before = snapshot(folder)
    history.apply(preview_operation(paths(folder), add_trigger_word("ohwx")))
    history.undo()
    seen: list[tuple[int, int]] = []

    with pytest.raises(EditCancelled):
        history.redo(progress=lambda *a: seen.append(a), should_stop=stop_after(7, seen))

    assert snapshot(folder) == before
    assert history.can_redo and not history.can_undo
    history.redo()
    assert (folder / "c03.txt").read_text() == "ohwx"


def test_a_failed_write_during_undo_puts_back_the_captions_already_undone(folder, monkeypatch):
    history = CaptionHistory()
    history.apply(preview_operation(paths(folder), add_trigger_word("ohwx")))
    after = snapshot(folder)
    real = history_module.write_caption
    failing = folder / "c05.txt"

    def write(path: Path, text: str) -> None:
        if path == failing and text == "a photo":
            raise CaptionError(path, "could not be saved (disk full); the previous caption is unchanged.")
        real(path, text)

    monkeypatch.setattr(history_module, "write_caption", write)

    with pytest.raises(CaptionError, match="disk full"):
        history.undo()

    assert snapshot(folder) == after
    assert history.can_undo
