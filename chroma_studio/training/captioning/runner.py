"""The captioning job: load the captioner, caption each image, report every caption as an event.

Nothing here writes a caption file (see ``CaptionJob``): each caption goes out as ``CaptionMade``
and the asker writes it. An image that cannot be decoded goes out as ``CaptionSkipped`` and the
job goes on. ``pause_after`` pauses the job once that many captions are made, until the caller
resumes or stops it; a stop is obeyed between images (and between the two questions of "both"),
and everything made before it has already been sent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from chroma_studio.dataset.caption_shaping import shape_caption
from chroma_studio.dataset.captioners import UnknownCaptioner, captioner, describe_download
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import (
    CaptioningFinished,
    CaptionMade,
    CaptionSkipped,
    LogLevel,
    LogMessage,
    Phase,
    PhaseChanged,
    Progress,
    Sink,
)
from chroma_studio.protocol.jobs import CaptionJob
from chroma_studio.training.errors import TrainingError

logger = logging.getLogger(__name__)

PAUSE_POLL_S = 0.2
TASK = "Captioning images"


def run_captioning(job: CaptionJob, sink: Sink, control: TrainingControl | None = None) -> CaptioningFinished:
    """Caption ``job.images`` with ``job.model``; the summary is also sent to ``sink`` last."""
    from chroma_studio.training.captioning.model import LoadedCaptioner, choose_placement, fetch
    from chroma_studio.training.captioning.prompts import requests_for
    from chroma_studio.training.hub import DownloadCancelled

    control = control or TrainingControl()
    started = time.monotonic()
    try:
        chosen = captioner(job.model)
    except UnknownCaptioner as exc:
        message = str(exc)
        raise TrainingError(message[:1].upper() + message[1:], "Choose a captioner from the list.") from None
    problem = chosen.style_problem(job.style)
    if problem:
        raise TrainingError(problem, "Choose the natural style, or another captioner.")
    missing = chosen.missing_packages()
    if missing:
        raise TrainingError(
            f"{chosen.label} needs {' and '.join(missing)}, which is not installed.",
            f"Install it (pip install {' '.join(missing)}, the build that matches your torch), or choose another "
            "captioner.",
        )
    requests = requests_for(chosen.family, job.style, job.length)

    sink(PhaseChanged(Phase.LOADING, f"Loading the captioner {chosen.label}"))
    if not chosen.demo:
        sink(LogMessage(LogLevel.INFO, describe_download(chosen.name)))
    try:
        folder = fetch(chosen, sink, control)
    except DownloadCancelled:
        return _finish(sink, CaptioningFinished(0, 0, cancelled=True, seconds=time.monotonic() - started))
    loaded = LoadedCaptioner(chosen, folder, choose_placement(chosen))

    total = len(job.images)
    made = skipped = 0
    cancelled = False
    sink(PhaseChanged(Phase.CAPTIONING, f"Captioning {total} images"))
    sink(Progress(TASK, 0, total, "images"))
    for index, path in enumerate(job.images):
        if control.stop_requested:
            cancelled = True
            break
        try:
            image = open_image(Path(path))
        except UnreadableImage as exc:
            skipped += 1
            sink(CaptionSkipped(path, str(exc)))
            sink(Progress(TASK, index + 1, total, "images"))
            continue
        answers: dict[str, str] = {}
        for request in requests:
            if control.stop_requested:
                break
            answers[request.kind] = loaded.ask(image, request)
        if len(answers) < len(requests):  # stopped between the two questions of "both"
            cancelled = True
            break
        caption = shape_caption(
            answers.get("sentences", ""),
            answers.get("tags", ""),
            style=job.style,
            length=job.length,
            trigger=job.trigger,
            class_word=job.class_word,
            prefix=job.prefix,
            suffix=job.suffix,
        )
        if not caption:
            skipped += 1
            sink(CaptionSkipped(path, "the captioner wrote nothing for this image; caption it by hand."))
        else:
            made += 1
            sink(CaptionMade(path, caption, index, total))
        sink(Progress(TASK, index + 1, total, "images"))
        if job.pause_after and made == job.pause_after and index + 1 < total and not _pause(sink, control, made):
            cancelled = True
            break
    seconds = time.monotonic() - started
    logger.info("captioned %d images (%d skipped) in %.1f s", made, skipped, seconds)
    return _finish(sink, CaptioningFinished(made, skipped, cancelled=cancelled, seconds=seconds))


def _pause(sink: Sink, control: TrainingControl, made: int) -> bool:
    """Wait after the first ``made`` captions until resumed (True) or stopped (False)."""
    control.pause()
    sink(PhaseChanged(Phase.PAUSED, f"Paused after {made} captions: resume to caption the rest"))
    while control.paused and not control.stop_requested:
        control.wait_while_paused(PAUSE_POLL_S)
    if control.stop_requested:
        return False
    sink(PhaseChanged(Phase.CAPTIONING, "Captioning the rest"))
    return True


def _finish(sink: Sink, summary: CaptioningFinished) -> CaptioningFinished:
    sink(summary)
    return summary


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says what to do."""


def open_image(path: Path):  # -> PIL.Image.Image
    """``path`` decoded in full, upright, as RGB; raises ``UnreadableImage`` for a damaged file."""
    from PIL import Image, ImageOps

    from chroma_studio.dataset.images import to_rgb

    try:
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
            return to_rgb(upright).copy()
    except FileNotFoundError:
        raise UnreadableImage("the file is gone; it was moved or deleted.") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        detail = str(exc).replace(repr(str(path)), "").replace(str(path), "").strip(" :") or type(exc).__name__
        raise UnreadableImage(f"cannot be decoded ({detail}); re-export it or remove it from the dataset.") from None
