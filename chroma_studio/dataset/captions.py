"""Caption sidecar files: read them forgivingly, write them atomically in the style they had.

A caption is UTF-8 text, with or without a byte-order mark, with LF or CRLF line endings. The
text handed out has its line endings turned into ``\\n`` and surrounding whitespace stripped; a
write puts back the file's BOM, line ending and final newline. A file that is not UTF-8 raises
``CaptionError`` and is never overwritten: guessing its encoding could destroy the user's words.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chroma_studio.base.atomic import write_text_atomic

log = logging.getLogger(__name__)


class CaptionError(Exception):
    """A caption that cannot be read or written; the message names the file and what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


@dataclass(frozen=True)
class CaptionStyle:
    """How a caption file is laid out on disk, so a rewrite changes only the words."""

    bom: bool = False
    newline: str = "\n"
    final_newline: bool = False


NEW_FILE_STYLE = CaptionStyle()


def read_caption(path: Path) -> str:
    """The caption text, stripped, with ``\\n`` line endings; "" when the file does not exist."""
    return read_caption_with_style(path)[0]


def normalise_caption(text: str) -> str:
    """A caption as ``read_caption`` hands it out: ``\n`` line endings, no surrounding whitespace."""
    return _normalise_newlines(text).strip()


def read_caption_if_present(path: Path) -> str | None:
    """Like ``read_caption`` but None when there is no caption file (so missing and empty differ)."""
    raw = _read_bytes(Path(path))
    return None if raw is None else normalise_caption(_decode(Path(path), raw))


def read_caption_with_style(path: Path) -> tuple[str, CaptionStyle]:
    raw = _read_bytes(Path(path))
    if raw is None:
        return "", NEW_FILE_STYLE
    text = _decode(Path(path), raw)
    style = CaptionStyle(
        bom=raw.startswith(codecs.BOM_UTF8),
        newline="\r\n" if "\r\n" in text else "\n",
        final_newline=text.endswith("\n"),
    )
    return normalise_caption(text), style


def write_caption(path: Path, text: str) -> None:
    """Write ``text`` atomically, keeping the existing file's BOM, line endings and final newline.

    Raises CaptionError, leaving the file as it was, when the existing file is not UTF-8 or the
    write fails.
    """
    path = Path(path)
    _, style = read_caption_with_style(path)  # raises for a file that is not UTF-8
    body = normalise_caption(text)
    if style.final_newline and body:
        body += "\n"
    body = body.replace("\n", style.newline)
    if style.bom:
        body = "\ufeff" + body
    try:
        write_text_atomic(path, body, encoding="utf-8", newline="")
    except OSError as exc:
        raise CaptionError(
            path, f"could not be saved ({exc.strerror or exc}); the previous caption is unchanged."
        ) from exc
    log.debug("wrote caption %s", path)


def delete_caption(path: Path) -> None:
    """Remove a caption file (used to undo the creation of one); a missing file is fine."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise CaptionError(Path(path), f"could not be deleted ({exc.strerror or exc}).") from None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CaptionError(path, "is a folder, not a caption file; rename the folder.") from None
    except PermissionError:
        raise CaptionError(path, "cannot be read (permission denied); allow reading it.") from None
    except OSError as exc:
        raise CaptionError(path, f"cannot be read ({exc.strerror or exc}).") from None


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptionError(path, _not_utf8_message(raw, exc)) from None


def _not_utf8_message(raw: bytes, exc: UnicodeDecodeError) -> str:
    where = f"byte 0x{raw[exc.start]:02x} at position {exc.start}"
    guess = ""
    try:
        sample = raw.decode("cp1252")
        guess = f" It reads as Windows-1252 text ('{sample.strip()[:60]}')."
    except UnicodeDecodeError:
        pass
    return (
        f"is not UTF-8 text ({where}).{guess} Open it in a text editor and save it as UTF-8; "
        "Chroma Studio does not change it until then."
    )


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class HasCaption(Protocol):
    @property
    def caption_path(self) -> Path: ...


def caption_paths(records: Iterable[HasCaption]) -> list[Path]:
    """The caption path of each record (an ``ImageRecord``, say), in order, without repeats."""
    return list(dict.fromkeys(Path(record.caption_path) for record in records))
