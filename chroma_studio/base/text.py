"""Text that is safe to show, print and write: file names that are not valid UTF-8 included.

On Linux a file name is any bytes. Python hands a name that is not UTF-8 out with each bad byte
as a lone surrogate (``b"caf\\xe9.jpg"`` -> ``"caf\\udce9.jpg"``), which keeps the file openable
but cannot be encoded as UTF-8: printing it, writing it to a UTF-8 file or handing it to Qt
fails or loses it. ``display_text`` turns each such byte into U+FFFD, for people to read; the
path itself stays as it was, for opening the file.
"""

from __future__ import annotations

import codecs
import contextlib
import os
from typing import TextIO

REPLACEMENT = "\ufffd"
ERROR_HANDLER = "chroma-studio-display"  # a codec error handler: what cannot be encoded becomes U+FFFD (or "?")


def display_text(text: str | os.PathLike[str]) -> str:
    """``text`` with every lone surrogate (an undecodable byte of a file name) as U+FFFD."""
    text = os.fspath(text)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # surrogateescape turns "\udce9" back into the byte 0xE9; "replace" then shows it as U+FFFD.
        # Surrogates that did not come from a byte (outside U+DC80..U+DCFF) are replaced first.
        raw = text.encode("utf-8", "surrogateescape") if _only_escaped_bytes(text) else _replaced(text).encode()
        return raw.decode("utf-8", "replace")
    return text


def _only_escaped_bytes(text: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def _replaced(text: str) -> str:
    return "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _display_errors(error: UnicodeError) -> tuple[str | bytes, int]:
    """Codec error handler: a character the stream cannot encode is written as U+FFFD, or "?".

    The replacement is handed back encoded: the UTF-8 encoder takes only ASCII text from a handler.
    """
    if not isinstance(error, UnicodeEncodeError):
        raise error
    try:
        replacement = REPLACEMENT.encode(error.encoding)
    except (UnicodeEncodeError, LookupError):
        replacement = b"?"
    return replacement * (error.end - error.start), error.end


codecs.register_error(ERROR_HANDLER, _display_errors)


def make_stream_safe(stream: TextIO | None) -> None:
    """Let ``stream`` (stdout, stderr) write any text: what its encoding cannot hold is replaced, never raised."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):  # a closed or detached stream: nothing to do
            reconfigure(errors=ERROR_HANDLER)
