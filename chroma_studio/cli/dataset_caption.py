"""``chroma-studio dataset caption DIR``: caption a folder of images automatically.

The captioner runs in the engine process (``protocol/remote.py``), as it does for the app: torch
and the model stay out of this process, and a stop works the same way. Each caption it sends is
written here at once through the app's sidecar writer (``dataset/captions.py``: atomic, line
endings kept), so an interrupted pass keeps every caption made until then and never leaves a
partial file. With ``--overwrite`` each replaced caption is first copied, byte for byte, into the
app's data folder (never into the dataset folder), and the command says where.

Exit status: 0 when every image got its caption, 1 when the captioner failed or some images were
skipped, 2 for bad usage, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chroma_studio.cli.terminal import StatusLine, amount_text, bar, plural


def add_caption_parser(actions: argparse._SubParsersAction) -> None:
    from chroma_studio.dataset.captioners import captioner_names

    caption = actions.add_parser(
        "caption",
        help="write captions for the images of a folder with a captioning model",
        description="Caption every image of DIR (searched recursively) that has no caption yet, with a "
        "captioning model, and write each caption as a .txt file beside its image.",
    )
    caption.add_argument("folder", metavar="DIR", help="the image folder")
    caption.add_argument(
        "--model",
        default=None,
        choices=captioner_names(),
        metavar="NAME",
        help=f"the captioner: {', '.join(captioner_names())} (default: the one recommended for this machine)",
    )
    caption.add_argument("--style", choices=("natural", "tags", "both"), default="natural", help="%(choices)s")
    caption.add_argument("--length", choices=("short", "medium", "long"), default="medium", help="%(choices)s")
    caption.add_argument("--trigger", default="", metavar="WORD", help="trigger word, first or after --class")
    caption.add_argument(
        "--class", dest="class_word", default="", metavar="WORD", help='the first "a/the WORD" becomes "a TRIGGER WORD"'
    )
    caption.add_argument("--prefix", default="", metavar="TEXT", help="text put before every caption")
    caption.add_argument("--suffix", default="", metavar="TEXT", help="text put after every caption")
    which = caption.add_mutually_exclusive_group()
    which.add_argument(
        "--only-missing", dest="overwrite", action="store_false", help="caption only images without one (default)"
    )
    which.add_argument(
        "--overwrite", action="store_true", help="replace existing captions (kept in the app's data folder)"
    )
    caption.add_argument("--dry-run", action="store_true", help="say what would happen; write nothing")
    caption.set_defaults(run=run_caption, overwrite=False)  # store_false alone would default to True


@dataclass
class _Plan:
    todo: list[Any] = field(default_factory=list)  # ImageRecords to caption
    kept: int = 0  # already captioned, left alone
    unreadable: list[str] = field(default_factory=list)  # images and captions that cannot be read: left alone


def run_caption(args: argparse.Namespace) -> int:
    from chroma_studio.dataset.captioners import captioner, describe_download

    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        return _usage(f"{folder} is not a folder; give the folder of images to caption.")
    model = args.model or _recommended()
    chosen = captioner(model)
    problem = chosen.style_problem(args.style)
    if problem:
        return _usage(f"--style {args.style}: {problem}")
    if args.class_word and not args.trigger:
        return _usage("--class places the trigger word: give --trigger too.")
    plan = _plan(folder, args.overwrite)
    for line in plan.unreadable:
        print(f"warning: {line}", file=sys.stderr)
    what = f"{len(plan.todo)} of {len(plan.todo) + plan.kept + len(plan.unreadable)} images"
    if args.dry_run:
        print(f"Dry run: would caption {what} in {folder} with {chosen.label} ({args.style}, {args.length}).")
        if plan.kept:
            have = "1 image already has" if plan.kept == 1 else f"{plan.kept} images already have"
            print(f"{have} a caption and would be kept (--overwrite replaces them).")
        print(describe_download(chosen.name))
        for record in plan.todo[:10]:
            exists = " (replacing its caption)" if record.caption_path.exists() else ""
            print(f"  {_short(record.caption_path)}{exists}")
        if len(plan.todo) > 10:
            print(f"  ... and {len(plan.todo) - 10} more")
        print("Nothing was written.")
        return 0
    if not plan.todo:
        print(f"Nothing to caption: every image in {folder} has a caption (--overwrite replaces them).")
        return 0
    print(f"Captioning {what} with {chosen.label}.", file=sys.stderr)
    return _caption(args, chosen.name, plan)


def _recommended() -> str:
    from chroma_studio.dataset.captioners import recommend_captioner
    from chroma_studio.hardware.detect import detect_machine

    try:
        best = detect_machine().best_device
        device, memory = str(best.kind), int(best.total_bytes)
    except Exception as exc:  # detection only picks the default here: the fast captioner runs anywhere
        logging.getLogger(__name__).warning("the hardware could not be detected (%s); using the CPU captioner", exc)
        device, memory = "cpu", 0
    return recommend_captioner(device, memory).name


def _plan(folder: Path, overwrite: bool) -> _Plan:
    from chroma_studio.dataset.captions import CaptionError, read_caption_if_present
    from chroma_studio.dataset.scan import scan_folders

    plan = _Plan()
    scan = scan_folders([folder])
    plan.unreadable += [f"{problem} It is skipped." for problem in scan.errors]
    for record in scan.images:
        try:
            existing = read_caption_if_present(record.caption_path)
        except CaptionError as exc:
            plan.unreadable.append(f"{exc} It is left alone, and its image is not captioned.")
            continue
        if existing and not overwrite:
            plan.kept += 1
        else:
            plan.todo.append(record)
    return plan


def _caption(args: argparse.Namespace, model: str, plan: _Plan) -> int:
    from chroma_studio.protocol.jobs import CaptionJob
    from chroma_studio.protocol.remote import RemoteControl, run_in_process

    job = CaptionJob(
        images=tuple(str(record.path) for record in plan.todo),
        model=model,
        style=args.style,
        length=args.length,
        trigger=args.trigger,
        class_word=args.class_word,
        prefix=args.prefix,
        suffix=args.suffix,
    )
    control = RemoteControl()
    writer = CaptionWriter({str(r.path): r.caption_path for r in plan.todo}, Path(args.folder), sys.stderr)

    def on_interrupt(signum: int, frame: object) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        writer.note("Stopping after this image; the captions written so far are kept (Ctrl-C again to abort)...")
        control.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = run_in_process(job, writer, control)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        writer.note(f"Aborted; {writer.written} captions were written.")
        writer.report_backup()
        return 130
    finally:
        if signal.getsignal(signal.SIGINT) is on_interrupt:
            signal.signal(signal.SIGINT, previous)
    writer.report_backup()
    if result is None:
        return 1
    skipped = result.skipped + len(plan.unreadable)
    print(f"Wrote {plural(writer.written, 'caption')}; {plural(skipped, 'image')} skipped, {writer.failed} not saved.")
    if control.stop_requested or result.cancelled:
        return 130
    return 1 if skipped or writer.failed else 0


class CaptionWriter(StatusLine):
    """The sink of a captioning job: writes each caption as it comes, draws the progress, reports."""

    def __init__(self, caption_paths: dict[str, Path], folder: Path, stream: TextIO) -> None:
        super().__init__(stream)
        self.caption_paths = caption_paths
        self.folder = folder
        self.written = self.failed = 0
        self.backup: Path | None = None
        self.started = time.monotonic()

    def __call__(self, event: object) -> None:
        from chroma_studio.protocol import events as ev

        match event:
            case ev.CaptionMade(image=image, caption=caption):
                self._write(image, caption)
            case ev.CaptionSkipped(image=image, reason=reason):
                self.note(f"skipped {_short(Path(image))}: {reason}")
            case ev.Progress(task=task, done=done, total=total, unit="images"):
                if done == 0:  # the captioner is loaded: the rate counts from here
                    self.started = time.monotonic()
                self._progress(task, done, total)
            case ev.Progress(task=task, done=done, total=total, unit=unit):
                if self.due(done == total, every=5):
                    self.line(amount_text(task, done, total, unit), final=done == total)
            case ev.PhaseChanged(phase=ev.Phase.LOADING, detail=detail) | ev.LogMessage(message=detail):
                self.note(detail)
            case ev.Failed(message=message, hint=hint, traceback=trace):
                self.failure(message, hint, trace)

    def _write(self, image: str, caption: str) -> None:
        from chroma_studio.dataset.captions import CaptionError, write_caption

        path = self.caption_paths.get(image)
        if path is None:  # not an image this command asked about
            return
        try:
            if path.exists():
                self._back_up(path)
            write_caption(path, caption)
        except (CaptionError, OSError) as exc:
            self.failed += 1
            self.note(f"error: {exc}")
            return
        self.written += 1

    def _back_up(self, path: Path) -> None:
        """Copy ``path`` into this pass's backup folder under the app's data folder, keeping its place
        relative to the dataset folder, before it is replaced."""
        from chroma_studio.base.paths import data_dir

        if self.backup is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.backup = data_dir() / "caption-backups" / f"{stamp}-{self.folder.resolve().name}"
        try:
            relative = path.resolve().relative_to(self.folder.resolve())
        except ValueError:
            relative = Path(path.name)
        target = self.backup / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)

    def report_backup(self) -> None:
        if self.backup is not None:
            print(
                f"The replaced captions are kept in {self.backup}; copy them back into {self.folder} to restore them.",
                file=self.stream,
            )

    def _progress(self, task: str, done: int, total: int) -> None:
        if not self.due(done == total, every=5):
            return
        rate = done / max(time.monotonic() - self.started, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        self.line(f"{task} {done}/{total} {bar(done, total)} {rate:.2f} images/s ETA {int(eta)} s", done == total)


def _usage(message: str) -> int:
    print(f"chroma-studio dataset caption: {message}", file=sys.stderr)
    return 2


def _short(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
