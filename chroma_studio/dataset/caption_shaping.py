"""From a captioner's raw answer to the caption written beside the image: pure text functions.

``shape_caption`` does it all, in this order: tidy the sentences (drop a last sentence cut off by
the token limit), parse the tags (split, trim, drop repeats, at most as many as the length
allows), compose the style ("both": sentences, then tags), place the trigger word, add the
prefix and suffix, and tidy whitespace and punctuation.

The trigger word goes after the class word when one is given: the first "a <class>", "an
<class>" or "the <class>" (any case, whole words) becomes "a <trigger> <class>", so "A photo of
the dog" with trigger "sks" and class "dog" reads "A photo of a sks dog". When the class word
does not appear (or none is given) the trigger goes first. A caption that already has the
trigger is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

Style = Literal["natural", "tags", "both"]
Length = Literal["short", "medium", "long"]

MAX_TAGS: dict[str, int] = {"short": 12, "medium": 25, "long": 50}
TAG_SEPARATOR = ", "

_SPACES = re.compile(r"[^\S\n]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([,.;:!?])")
_REPEATED_COMMAS = re.compile(r",(\s*,)+")
_NO_SPACE_AFTER_COMMA = re.compile(r"([,;])(?=[^\s\d,;])")  # "a,b" -> "a, b"; "1,000" stays
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_TAG_SPLIT = re.compile(r"[,\n;]+")
_TAG_NOISE = " \t-*•#\"'`"


def tidy(text: str) -> str:
    """One space between words, none before punctuation, no doubled commas, no dangling separators."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _SPACES.sub(" ", line)
        line = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", line)
        line = _REPEATED_COMMAS.sub(",", line)
        line = _NO_SPACE_AFTER_COMMA.sub(r"\1 ", line)
        line = line.strip(" ,;")
        if line:
            lines.append(line)
    return " ".join(lines)


def complete_sentences(text: str) -> str:
    """``text`` without a last sentence that the token limit cut off ("... a red car parked on").

    A text with no complete sentence at all is kept as it is: part of a caption beats none.
    """
    text = tidy(text)
    ends = list(_SENTENCE_END.finditer(text))
    if not ends or ends[-1].end() == len(text):
        return text
    return text[: ends[-1].end()]


def parse_tags(text: str | Iterable[str], limit: int | None = None) -> list[str]:
    """Tags from a captioner's answer: split at commas, semicolons and new lines; list markers and
    quotes trimmed; repeats (ignoring case) and empty ones dropped; at most ``limit``."""
    pieces = _TAG_SPLIT.split(text) if isinstance(text, str) else list(text)
    tags: list[str] = []
    seen: set[str] = set()
    for piece in pieces:
        tag = _SPACES.sub(" ", piece.strip(_TAG_NOISE).rstrip(".").strip(_TAG_NOISE))
        key = tag.lower()
        if tag and key not in seen:
            seen.add(key)
            tags.append(tag)
    return tags if limit is None else tags[:limit]


def compose(style: Style | str, sentences: str = "", tags: Iterable[str] = ()) -> str:
    """The caption of ``style``: the sentences, the tags joined by commas, or sentences then tags."""
    body = complete_sentences(sentences)
    tag_text = TAG_SEPARATOR.join(tags)
    match style:
        case "natural":
            return body
        case "tags":
            return tag_text
        case "both":
            return " ".join(part for part in (body, tag_text) if part)
    raise ValueError(f"'{style}' is not a caption style; use natural, tags or both.")


def place_trigger(text: str, trigger: str, class_word: str = "") -> str:
    """Put ``trigger`` into ``text``: "a <trigger> <class>" at the first "a/an/the <class>", else first."""
    trigger = trigger.strip()
    if not trigger:
        return text
    if re.search(r"(?<!\w)" + re.escape(trigger) + r"(?!\w)", text, re.IGNORECASE):
        return text
    class_word = class_word.strip()
    if class_word:
        pattern = re.compile(r"(?<!\w)(a|an|the)\s+(" + re.escape(class_word) + r")(?!\w)", re.IGNORECASE)
        match = pattern.search(text)
        if match:
            starts_sentence = not text[: match.start()].strip() or text[: match.start()].rstrip()[-1] in ".!?"
            article = "A" if starts_sentence and match.group(1)[0].isupper() else "a"
            return f"{text[: match.start()]}{article} {trigger} {match.group(2)}{text[match.end() :]}"
    if not text:
        return trigger
    return trigger + TAG_SEPARATOR + text


def add_affixes(text: str, prefix: str = "", suffix: str = "") -> str:
    """``prefix`` before and ``suffix`` after ``text``, each joined with ", " unless it carries its own
    separator (a prefix ending in "," or a space, a suffix starting with one)."""
    if prefix.strip():
        joiner = "" if prefix[-1:] in ", ;:" or not text else TAG_SEPARATOR
        text = prefix + joiner + text
    if suffix.strip():
        joiner = "" if suffix[:1] in ", ;:." or not text else TAG_SEPARATOR
        text = text + joiner + suffix
    return text


def shape_caption(
    sentences: str = "",
    tags: str | Iterable[str] = "",
    *,
    style: Style | str = "natural",
    length: Length | str = "medium",
    trigger: str = "",
    class_word: str = "",
    prefix: str = "",
    suffix: str = "",
) -> str:
    """The caption to write, from the captioner's sentences and/or tags (see the module's docstring)."""
    tag_list = parse_tags(tags, MAX_TAGS.get(str(length), MAX_TAGS["medium"]))
    text = compose(style, sentences, tag_list)
    text = place_trigger(text, trigger, class_word)
    return tidy(add_affixes(text, prefix, suffix))
