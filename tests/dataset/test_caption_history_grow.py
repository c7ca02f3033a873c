"""A long pass that writes captions one at a time grows one undo step, even with typed saves in between."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from chroma_studio.dataset import CaptionChange, CaptionError, CaptionHistory

PASS = ("caption images", 1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_bytes(codecs.BOM_UTF8 + b"old a\r\n")
    (tmp_path / "b.txt").write_bytes(b"old b")
    # c.txt does not exist: the pass creates it
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.txt"))}


def write(history: CaptionHistory, path: Path, before: str, after: str) -> None:
    history.grow_step(PASS, [CaptionChange(path, before, after)], "Caption 3 images")


def test_writes_one_at_a_time_undo_as_one_step_byte_for_byte(folder: Path) -> None:
    history = CaptionHistory(merge_window_s=0.0)  # no time window: the step grows however long the pass takes
    before = snapshot(folder)
    write(history, folder / "a.txt", "old a", "new a")
    write(history, folder / "b.txt", "old b", "new b")
    write(history, folder / "c.txt", "", "new c")
    assert (folder / "a.txt").read_bytes() == codecs.BOM_UTF8 + b"new a\r\n"  # the file's style is kept
    assert (folder / "c.txt").read_text() == "new c"
    assert history.end_step(PASS) is not None
    assert history.undo_description == "Caption 3 images"
    history.undo()
    assert snapshot(folder) == before
    assert not (folder / "c.txt").exists()
    assert not history.can_undo


def test_typed_saves_in_between_stay_their_own_steps(folder: Path) -> None:
    history = CaptionHistory()
    write(history, folder / "a.txt", "old a", "new a")
    history.apply([CaptionChange(folder / "b.txt", "old b", "typed b")], "Edit the caption of b", merge_key="t")
    write(history, folder / "c.txt", "", "new c")  # grows the pass's step below the typed one
    history.end_step(PASS)
    assert history.undo_description == "Edit the caption of b"
    history.undo()
    assert (folder / "b.txt").read_bytes() == b"old b"
    assert (folder / "c.txt").exists(), "the typed save's undo must not touch the pass's captions"
    history.undo()
    assert not (folder / "c.txt").exists()
    assert (folder / "a.txt").read_bytes() == codecs.BOM_UTF8 + b"old a\r\n"
    assert not history.can_undo


def test_a_caption_edited_since_the_pass_began_is_refused_and_left_alone(folder: Path) -> None:
    history = CaptionHistory()
    (folder / "b.txt").write_bytes(b"typed by the user")
    with pytest.raises(CaptionError):
        write(history, folder / "b.txt", "old b", "new b")
    assert (folder / "b.txt").read_bytes() == b"typed by the user"
    assert not history.can_undo


def test_withdraw_puts_back_every_caption_and_leaves_no_step(folder: Path) -> None:
    history = CaptionHistory()
    history.apply([CaptionChange(folder / "b.txt", "old b", "earlier")], "An earlier edit")
    before = snapshot(folder)
    write(history, folder / "a.txt", "old a", "new a")
    write(history, folder / "c.txt", "", "new c")
    withdrawn = history.withdraw_step(PASS)
    assert withdrawn is not None and len(withdrawn.changes) == 2
    assert snapshot(folder) == before
    assert history.undo_description == "An earlier edit"
    assert not history.can_redo
    assert history.withdraw_step(PASS) is None  # nothing left to withdraw


def test_withdraw_refuses_when_a_caption_was_edited_since(folder: Path) -> None:
    history = CaptionHistory()
    write(history, folder / "a.txt", "old a", "new a")
    (folder / "a.txt").write_text("typed since")
    with pytest.raises(CaptionError):
        history.withdraw_step(PASS)
    assert (folder / "a.txt").read_text() == "typed since"
    assert history.can_undo


def test_a_new_pass_after_the_step_was_undone_makes_a_new_step(folder: Path) -> None:
    history = CaptionHistory()
    write(history, folder / "a.txt", "old a", "new a")
    history.undo()
    write(history, folder / "b.txt", "old b", "new b")
    assert history.can_undo and not history.can_redo  # a new write clears redo
    history.undo()
    assert (folder / "b.txt").read_bytes() == b"old b"
    assert not history.can_undo


def test_undo_puts_back_the_exact_bytes_spacing_and_blank_lines_too(tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"  a caption with spaces  \r\n\r\n\r\n")  # reads as "a caption with spaces"
    history = CaptionHistory()
    write(history, odd, "a caption with spaces", "new words")
    write(history, tmp_path / "new.txt", "", "a new caption")
    history.undo()
    assert odd.read_bytes() == b"  a caption with spaces  \r\n\r\n\r\n"
    assert not (tmp_path / "new.txt").exists()
    history.redo()
    assert odd.read_bytes() == b"new words\r\n"
    history.undo()
    assert odd.read_bytes() == b"  a caption with spaces  \r\n\r\n\r\n", "after a redo too"


def test_a_failed_apply_puts_back_the_exact_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes(b"old a  \n\n")
    second.write_bytes(b"\xff\xfe not utf-8")  # cannot be written: the apply stops there
    history = CaptionHistory()
    with pytest.raises(CaptionError):
        history.apply([CaptionChange(first, "old a", "new a"), CaptionChange(second, "", "x")], "Both")
    assert first.read_bytes() == b"old a  \n\n"
