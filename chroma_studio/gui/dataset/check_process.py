"""The image check in a process of its own, so the window stays smooth while it runs.

``check_dataset`` decodes and hashes every image with Python and Pillow code. On a thread of
this process it would take turns with the GUI thread for the interpreter lock, and every paint
(dozens of short calls into Python) would wait its turn: the grid stutters while the check runs.
A separate process (started clean with "spawn", without Qt) shares nothing with the window.
Progress and the findings come back over a pipe; cancelling sets an event that the check polls
between images. A frozen build (one executable) runs the check on the calling thread instead,
because a spawned child of a frozen app starts the app itself unless its entry point is prepared
for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from chroma_studio.dataset import Finding, check_dataset

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05
POLL_S = 0.05
STOP_GRACE_S = 10.0


def check_findings(
    folders: Sequence[str],
    resolution: int,
    progress: Callable[[int, int], object],
    should_stop: Callable[[], bool],
) -> list[Finding]:
    """The findings of ``check_dataset`` (trigger word and captions aside, the caller checks those live)."""
    if getattr(sys, "frozen", False):
        report = check_dataset(folders, resolution, None, progress=progress, should_stop=should_stop)
        return report.findings
    return _check_in_child(list(folders), resolution, progress, should_stop)


def _check_in_child(
    folders: list[str], resolution: int, progress: Callable[[int, int], object], should_stop: Callable[[], bool]
) -> list[Finding]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    stop = context.Event()
    child = context.Process(
        target=_run_check, args=(folders, resolution, sender, stop), name="chroma-studio image check", daemon=True
    )
    child.start()
    sender.close()  # the child holds the sending end now: end-of-file on the pipe means it ended
    try:
        while True:
            if should_stop():
                stop.set()
            if not receiver.poll(POLL_S):
                continue
            try:
                message = receiver.recv()
            except EOFError:
                raise RuntimeError(f"the image check ended unexpectedly (exit code {child.exitcode})") from None
            if message[0] == "progress":
                progress(message[1], message[2])
            elif message[0] == "done":
                return message[1]
            else:
                log.error("image check failed in its process:\n%s", message[2])
                raise RuntimeError(message[1])
    finally:
        stop.set()
        child.join(STOP_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()


def _run_check(folders: list[str], resolution: int, sender: Connection, stop: Event) -> None:
    """The child process: run the check, report progress, send the findings (or the error)."""
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S or done >= total:
            last = now
            sender.send(("progress", done, total))

    try:
        report = check_dataset(folders, resolution, None, progress=progress, should_stop=stop.is_set)
        sender.send(("done", report.findings))
    except Exception as exc:  # sent to the window, which shows it and logs the traceback
        sender.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        sender.close()
