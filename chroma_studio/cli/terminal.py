"""What the commands print while engine work runs: one status line redrawn in place on a terminal,
sparse whole lines into a log or a pipe, and the shared pieces of those lines."""

from __future__ import annotations

import time
from typing import TextIO

from chroma_studio.base.units import format_amount


class StatusLine:
    """One line of progress: redrawn in place on a terminal; in a log, a line when ``due``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last_print = 0.0

    def due(self, final: bool, every: float) -> bool:
        """Whether to print now: always on a terminal and for the last update, else every ``every`` s."""
        now = time.monotonic()
        if self.tty or final or now - self.last_print > every:
            self.last_print = now
            return True
        return False

    def note(self, text: str) -> None:
        """A line that stays (a message, or the last state of the progress line)."""
        self.line(text, final=True)

    def line(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def failure(self, message: str, hint: str = "", details: str = "") -> None:
        """A failure as the engine reports it; ``details`` (a traceback) are the ones its hint promises."""
        self.note(f"error: {message}")
        if hint:
            self.note(f"hint: {hint}")
        if details:
            self.note("details:\n" + details.rstrip())


def plural(count: int, noun: str) -> str:
    """ "1 image", "2 images"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def bar(done: int, total: int, width: int = 24) -> str:
    """``[#####-------]``: ``done`` of ``total`` as a bar of ``width`` characters."""
    filled = int(width * done / max(total, 1))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def amount_text(task: str, done: int, total: int, unit: str) -> str:
    """A download or caching step: "Downloading transformer: 1.2 GB/17.8 GB" (no total: as far as known)."""
    shown = format_amount(done, unit) + (f"/{format_amount(total, unit)}" if total else "")
    return f"{task}: {shown}"
