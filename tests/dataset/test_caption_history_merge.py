"""Saves of one caption typed in a burst make one undo step."""

from __future__ import annotations

from pathlib import Path

import pytest

from chroma_studio.dataset import CaptionChange, CaptionHistory, add_trigger_word, preview_operation
from chroma_studio.dataset.caption_history import MERGE_WINDOW_S


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def history(clock: Clock) -> CaptionHistory:
    return CaptionHistory(clock=clock)


@pytest.fixture
def caption(tmp_path: Path) -> Path:
    path = tmp_path / "cat.txt"
    path.write_bytes(b"a cat\r\n")
    return path


def typed(history: CaptionHistory, path: Path, before: str, after: str, key: object = "typing") -> None:
    history.apply([CaptionChange(path, before, after)], f"Edit the caption of {path.stem}", merge_key=(key, path))


def test_saves_close_together_undo_at_once(history, clock, caption):
    typed(history, caption, "a cat", "a cat on")
    clock.now += 2
    typed(history, caption, "a cat on", "a cat on a")
    clock.now += MERGE_WINDOW_S  # each save counts from the one before: the burst goes on
    typed(history, caption, "a cat on a", "a cat on a mat")

    assert history.undo_description == "Edit the caption of cat"
    edit = history.undo()

    assert edit is not None and edit.changes == (CaptionChange(caption, "a cat", "a cat on a mat"),)
    assert caption.read_bytes() == b"a cat\r\n"
    assert not history.can_undo
    history.redo()
    assert caption.read_bytes() == b"a cat on a mat\r\n"


def test_a_pause_longer_than_the_window_starts_a_new_step(history, clock, caption):
    typed(history, caption, "a cat", "a cat on")
    clock.now += MERGE_WINDOW_S + 0.1
    typed(history, caption, "a cat on", "a cat on a mat")

    history.undo()
    assert caption.read_text().strip() == "a cat on"
    history.undo()
    assert caption.read_text().strip() == "a cat"


def test_other_captions_keys_and_edits_in_between_do_not_merge(history, clock, tmp_path, caption):
    dog = tmp_path / "dog.txt"
    dog.write_text("a dog")
    typed(history, caption, "a cat", "a cat 1")
    typed(history, dog, "a dog", "a dog 1")  # another caption: its own step
    typed(history, dog, "a dog 1", "a dog 2", key="other")  # another key
    history.apply(preview_operation([caption], add_trigger_word("ohwx")))  # a bulk edit
    typed(history, caption, "ohwx, a cat 1", "ohwx, a cat 2")

    steps = 0
    while history.undo() is not None:
        steps += 1

    assert steps == 5
    assert (caption.read_text().strip(), dog.read_text()) == ("a cat", "a dog")


def test_no_merge_into_an_older_step_after_an_undo(history, clock, caption):
    typed(history, caption, "a cat", "a cat 1")
    clock.now += MERGE_WINDOW_S + 1
    typed(history, caption, "a cat 1", "a cat 2")  # a step of its own
    history.undo()  # back to "a cat 1": the first step is on top again
    clock.now += 1
    typed(history, caption, "a cat 1", "a cat 3")

    history.undo()
    assert caption.read_text().strip() == "a cat 1"
    history.undo()
    assert caption.read_text().strip() == "a cat"


def test_a_burst_that_ends_where_it_began_leaves_nothing_to_undo(history, tmp_path, caption):
    typed(history, caption, "a cat", "a cat?")
    typed(history, caption, "a cat?", "a cat")

    assert not history.can_undo
    assert caption.read_bytes() == b"a cat\r\n"


def test_a_caption_created_by_typing_is_removed_by_one_undo(history, tmp_path):
    path = tmp_path / "new.txt"
    typed(history, path, "", "a")
    typed(history, path, "a", "a new")
    typed(history, path, "a new", "")  # emptied again: the file still exists, and was created here

    history.undo()

    assert not path.exists()
    assert not history.can_undo
