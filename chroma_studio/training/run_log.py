"""The run's log: a sink that passes events on and keeps their log lines in the run folder."""

from __future__ import annotations

import logging
import time

from chroma_studio.base.run_folder import RunFolder
from chroma_studio.base.text import display_text
from chroma_studio.protocol.events import (
    CheckpointSaved,
    Event,
    Failed,
    Finished,
    RunPlanned,
    Sink,
    log_lines,
    log_text,
)

logger = logging.getLogger(__name__)


class RunLog:
    """A sink that passes events on and appends the run's log lines to ``log.txt`` in its folder.

    Lines wait until the folder exists (the run creates it after reading the dataset), so a
    reopened run shows the same log the window showed while it ran.
    """

    def __init__(self, folder: RunFolder, sink: Sink) -> None:
        self.folder, self.sink = folder, sink
        self.pending: list[str] = []

    def __call__(self, event: Event) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for level, message in log_lines(event):
            self.pending.append(f"{stamp}  {display_text(log_text(level, message))}\n")  # always UTF-8
        if isinstance(event, Finished | Failed | CheckpointSaved | RunPlanned):
            self.flush()
        self.sink(event)

    def flush(self) -> None:
        if not self.pending or not self.folder.path.is_dir():
            return
        try:
            self.folder.append_log(self.pending)
        except OSError as exc:  # a log that cannot be written must not end the run
            logger.warning("cannot write %s: %s", self.folder.log_file, exc)
        self.pending.clear()
