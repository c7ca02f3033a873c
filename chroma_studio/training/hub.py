"""Downloads from the Hugging Face Hub with progress reported as events.

huggingface_hub reads ``HF_ENDPOINT`` (e.g. a mirror) and ``HF_HUB_OFFLINE`` itself; offline,
only what is already in the local cache is used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import Progress, Sink

logger = logging.getLogger(__name__)


class DownloadCancelled(Exception):
    pass


def _progress_class(sink: Sink, task: str, control: TrainingControl | None):
    """A tqdm class that turns byte counts into Progress events (at most ~4 per second)."""
    from tqdm.auto import tqdm

    class EventTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # nothing on the terminal; the sink shows it
            super().__init__(*args, **kwargs)
            # the hub drives two byte bars (network transfer and bytes written); report the written one
            self._bytes = kwargs.get("unit") == "B" and kwargs.get("desc") != "Downloading bytes"
            self._done = int(kwargs.get("initial") or 0)
            self._last = 0.0

        def update(self, n=1):
            # a disabled tqdm keeps no count (and the hub grows ``total`` as files start), so count here
            if control is not None and control.stop_requested:
                raise DownloadCancelled("download cancelled")
            self._done += int(n or 0)
            total = int(self.total or 0)
            now = time.monotonic()
            if self._bytes and (now - self._last > 0.25 or (total and self._done >= total)):
                self._last = now
                sink(Progress(task=task, done=self._done, total=total, unit="B"))

    return EventTqdm


def download(
    repo_id: str,
    patterns: Sequence[str],
    sink: Sink,
    control: TrainingControl | None = None,
) -> str:
    """Fetch the files of ``repo_id`` that match ``patterns``; return the local snapshot folder."""
    from huggingface_hub import snapshot_download

    task = f"Downloading {repo_id}"
    logger.info("fetching %s (%s)", repo_id, ", ".join(patterns))
    return snapshot_download(
        repo_id,
        allow_patterns=list(patterns),
        tqdm_class=_progress_class(sink, task, control),
        # read now, not when huggingface_hub was imported, so a mirror set in the app's settings applies
        endpoint=os.environ.get("HF_ENDPOINT") or None,
    )
