from __future__ import annotations

from pathlib import Path

import pytest

from chroma_studio.dataset.caption_history import CaptionHistory, apply_changes
from chroma_studio.dataset.caption_ops import (
    CaptionChange,
    add_trigger_word,
    find_replace,
    normalise_whitespace,
    preview_operation,
    remove_trigger_word,
)
from chroma_studio.dataset.captions import CaptionError


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def captions(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_bytes(b"a woman  in a park\r\n")  # CRLF and a final newline
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfohwx, a woman on a bench")  # BOM
    (tmp_path / "c.txt").write_bytes(b"a dog")
    return tmp_path


def paths(folder: Path) -> list[Path]:
    return [folder / name for name in ("a.txt", "b.txt", "c.txt", "d.txt")]  # d.txt does not exist


def test_apply_undo_redo_across_several_operations(captions):
    history = CaptionHistory()
    original = snapshot(captions)

    history.apply(preview_operation(paths(captions), add_trigger_word("ohwx")))
    after_trigger = snapshot(captions)
    history.apply(preview_operation(paths(captions), find_replace("woman", "person")))
    history.apply(preview_operation(paths(captions), normalise_whitespace()))

    assert snapshot(captions) == {
        "a.txt": b"ohwx, a person in a park\r\n",
        "b.txt": b"\xef\xbb\xbfohwx, a person on a bench",
        "c.txt": b"ohwx, a dog",
        "d.txt": b"ohwx",
    }
    assert history.undo_description == "Normalise whitespace"

    history.undo()
    history.undo()
    assert snapshot(captions) == after_trigger
    assert history.redo_description == "Replace 'woman' with 'person'"

    history.undo()
    assert snapshot(captions) == original  # byte for byte; the created d.txt is gone
    assert not history.can_undo and history.undo() is None

    history.redo()
    assert snapshot(captions) == after_trigger
    assert history.can_redo


def test_a_new_edit_clears_redo(captions):
    history = CaptionHistory()
    history.apply(preview_operation(paths(captions), add_trigger_word("ohwx")))
    history.undo()

    history.apply(preview_operation(paths(captions), remove_trigger_word("ohwx")))

    assert not history.can_redo and history.redo() is None
    assert (captions / "b.txt").read_bytes() == b"\xef\xbb\xbfa woman on a bench"


def test_apply_returns_an_undo_record(captions):
    edit = apply_changes([CaptionChange(captions / "c.txt", "a dog", "a black dog")], "Edit caption")

    assert edit.description == "Edit caption"
    assert edit.paths == [captions / "c.txt"]
    assert edit.created == frozenset()
    assert (captions / "c.txt").read_text() == "a black dog"


def test_a_hand_edit_with_padding_and_crlf_undoes_cleanly(captions):
    history = CaptionHistory()

    history.apply([CaptionChange(captions / "c.txt", "a dog\r\n", "  a dog\r\nrunning  ")], "Edit caption")
    assert (captions / "c.txt").read_bytes() == b"a dog\nrunning"

    history.undo()
    assert (captions / "c.txt").read_bytes() == b"a dog"


def test_stale_preview_writes_nothing(captions):
    preview = preview_operation(paths(captions), add_trigger_word("ohwx"))
    (captions / "c.txt").write_text("edited elsewhere")
    before = snapshot(captions)

    with pytest.raises(CaptionError, match="changed by something else"):
        CaptionHistory().apply(preview)

    assert snapshot(captions) == before


def test_undo_refuses_when_a_caption_was_edited_since(captions):
    history = CaptionHistory()
    history.apply(preview_operation(paths(captions), add_trigger_word("ohwx")))
    (captions / "a.txt").write_text("hand edited")
    before = snapshot(captions)

    with pytest.raises(CaptionError, match=r"a\.txt"):
        history.undo()

    assert snapshot(captions) == before
    assert history.can_undo and not history.can_redo


def test_non_utf8_caption_in_a_selection_is_skipped_and_kept(captions):
    latin = "\u00e9t\u00e9 \u00e0 Paris".encode("cp1252")
    (captions / "e.txt").write_bytes(latin)
    history = CaptionHistory()

    preview = preview_operation([captions / "e.txt", captions / "c.txt"], add_trigger_word("ohwx"))
    history.apply(preview)
    history.undo()
    history.redo()

    assert [e.path for e in preview.skipped] == [captions / "e.txt"]
    assert (captions / "e.txt").read_bytes() == latin
    assert (captions / "c.txt").read_text() == "ohwx, a dog"


def test_a_failed_write_puts_back_what_was_already_written(captions):
    # A name this long can be read, but the temporary file beside it (a longer name) cannot be created.
    long_name = captions / ("x" * 246 + ".txt")
    long_name.write_text("long")
    changes = [
        CaptionChange(captions / "a.txt", "a woman  in a park", "changed"),
        CaptionChange(long_name, "long", "never written"),
    ]
    before = snapshot(captions)

    with pytest.raises(CaptionError, match="could not be saved"):
        apply_changes(changes)

    assert snapshot(captions) == before


def test_empty_preview_is_not_recorded(captions):
    history = CaptionHistory()

    edit = history.apply(preview_operation([captions / "c.txt"], find_replace("absent", "x")))

    assert edit.changes == () and not history.can_undo


def test_history_limit_drops_the_oldest(captions):
    history = CaptionHistory(limit=2)
    for word in ("one", "two", "three"):
        history.apply(preview_operation([captions / "c.txt"], add_trigger_word(word)))

    history.undo()
    history.undo()

    assert history.undo() is None
    assert (captions / "c.txt").read_text() == "one, a dog"
