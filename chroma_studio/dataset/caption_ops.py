"""Bulk caption operations: each is a pure text transform, previewed over a selection before any write.

    op = add_trigger_word("ohwx")
    preview = preview_operation(caption_paths(selected_records), op)   # reads only
    edit = history.apply(preview)                                      # writes; undoable

A preview lists only the captions the operation would change, as (path, before, after). Captions
that cannot be read (not UTF-8, say) are listed in ``skipped`` and are never written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from chroma_studio.dataset.captions import CaptionError, read_caption

log = logging.getLogger(__name__)

_PUNCTUATION_AFTER_WORD = ".;:!?)]}\n"


class OperationError(ValueError):
    """The operation's settings are unusable (an empty word, a bad regular expression)."""


class CaptionChange(NamedTuple):
    path: Path
    before: str
    after: str


@dataclass(frozen=True)
class CaptionOperation:
    description: str  # for previews and the Undo menu, e.g. "Add trigger word 'ohwx'"
    transform: Callable[[str], str]

    def __call__(self, text: str) -> str:
        return self.transform(text)


@dataclass
class CaptionPreview:
    operation: CaptionOperation
    changes: list[CaptionChange] = field(default_factory=list)
    skipped: list[CaptionError] = field(default_factory=list)  # unreadable: left alone
    unchanged: int = 0

    @property
    def description(self) -> str:
        return self.operation.description


def preview_operation(paths: Iterable[Path], operation: CaptionOperation) -> CaptionPreview:
    """What ``operation`` would do to each caption in ``paths``; reads files, writes nothing."""
    preview = CaptionPreview(operation)
    for path in dict.fromkeys(Path(p) for p in paths):
        try:
            before = read_caption(path)
        except CaptionError as exc:
            preview.skipped.append(exc)
            continue
        after = operation(before).strip()
        if after == before:
            preview.unchanged += 1
        else:
            preview.changes.append(CaptionChange(path, before, after))
    return preview


# -- words ----------------------------------------------------------------------------------------
def word_pattern(word: str, ignore_case: bool = False) -> re.Pattern[str]:
    """Matches ``word`` as a whole word: not inside a longer word ("ohwx" is not in "ohwxy")."""
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE if ignore_case else 0)


def contains_word(text: str, word: str, ignore_case: bool = False) -> bool:
    return word_pattern(word, ignore_case).search(text) is not None


def _checked_word(word: str, what: str) -> str:
    word = word.strip()
    if not word:
        raise OperationError(f"the {what} is empty; type the word first.")
    return word


def add_trigger_word(word: str, position: Literal["start", "end"] = "start", separator: str = ", ") -> CaptionOperation:
    """Put ``word`` at the start (or end) of captions that do not already contain it."""
    word = _checked_word(word, "trigger word")
    if position not in ("start", "end"):
        raise OperationError(f"position must be 'start' or 'end', not {position!r}.")

    def transform(text: str) -> str:
        if contains_word(text, word):
            return text
        if not text:
            return word
        if position == "start":
            return word + separator + text.lstrip(" \t,")
        return text.rstrip(" \t,") + separator + word

    return CaptionOperation(f"Add trigger word '{word}'", transform)


def remove_trigger_word(word: str, ignore_case: bool = False) -> CaptionOperation:
    """Remove every whole-word occurrence of ``word`` and the separator that went with it."""
    word = _checked_word(word, "trigger word")
    pattern = word_pattern(word, ignore_case)

    def transform(text: str) -> str:
        for match in reversed(list(pattern.finditer(text))):
            text = _cut_word(text, match.start(), match.end())
        return text

    return CaptionOperation(f"Remove trigger word '{word}'", transform)


def _cut_word(text: str, start: int, end: int) -> str:
    """Remove text[start:end] with one adjoining separator: 'a, X, b' -> 'a, b'; 'X, a' -> 'a'."""
    left, right = text[:start], text[end:]
    rest = right.lstrip(" \t")
    if rest.startswith(","):
        rest = rest[1:].lstrip(" \t")
    if not left.strip():  # the first word of the caption
        return rest
    if not rest or rest[0] in _PUNCTUATION_AFTER_WORD:  # the last word of a phrase
        left = left.rstrip(" \t")
        return (left[:-1] if left.endswith(",") else left).rstrip(" \t") + rest
    return left + rest


# -- text -----------------------------------------------------------------------------------------
def add_prefix(prefix: str) -> CaptionOperation:
    """Put ``prefix`` (separator included, e.g. "photo of ohwx, ") before captions not starting with it."""
    if not prefix.strip():
        raise OperationError("the prefix is empty; type the text to add.")

    def transform(text: str) -> str:
        if not text:
            return prefix.strip(" \t,;")
        return text if text.startswith(prefix.strip()) else prefix + text

    return CaptionOperation(f"Add prefix '{prefix.strip()}'", transform)


def add_suffix(suffix: str) -> CaptionOperation:
    """Put ``suffix`` (separator included, e.g. ", film grain") after captions not ending with it."""
    if not suffix.strip():
        raise OperationError("the suffix is empty; type the text to add.")

    def transform(text: str) -> str:
        if not text:
            return suffix.strip(" \t,;")
        return text if text.endswith(suffix.strip()) else text + suffix

    return CaptionOperation(f"Add suffix '{suffix.strip()}'", transform)


def find_replace(find: str, replace: str, regex: bool = False, ignore_case: bool = False) -> CaptionOperation:
    """Replace every occurrence of ``find``. With ``regex``, ``replace`` may use \\1 or \\g<name>."""
    if not find:
        raise OperationError("the text to find is empty; type what to look for.")
    flags = re.IGNORECASE if ignore_case else 0
    if not regex:
        pattern = re.compile(re.escape(find), flags)
        description = f"Replace '{find}' with '{replace}'"
        return CaptionOperation(description, lambda text: pattern.sub(lambda _: replace, text))
    try:
        pattern = re.compile(find, flags)
    except re.error as exc:
        raise OperationError(
            f"'{find}' is not a valid regular expression: {exc.msg} at position {exc.pos}. "
            "Fix it, or turn off 'regular expression' to search for the text as typed."
        ) from None
    try:
        pattern.sub(replace, "")  # parses the replacement, so a bad group reference fails now
    except (re.error, IndexError) as exc:
        message = exc.msg if isinstance(exc, re.error) else str(exc)
        raise OperationError(
            f"the replacement '{replace}' is not valid for this expression: {message}. "
            "Refer to groups as \\1 or \\g<name>, and write a backslash as \\\\."
        ) from None
    return CaptionOperation(f"Replace /{find}/ with '{replace}'", lambda text: pattern.sub(replace, text))


_SPACE_RUN = re.compile(r"[^\S\n]+")  # whitespace except newlines: spaces, tabs, no-break spaces
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,.;:!?])")


def normalise_whitespace() -> CaptionOperation:
    """One space between words, none before punctuation, no blank or padded lines."""

    def transform(text: str) -> str:
        lines = (_SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACE_RUN.sub(" ", line)).strip() for line in text.split("\n"))
        return "\n".join(line for line in lines if line)

    return CaptionOperation("Normalise whitespace", transform)
