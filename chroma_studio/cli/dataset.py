"""``chroma-studio dataset check DIR [DIR...]``: find what would spoil a training run, before it starts.

``chroma-studio dataset caption DIR`` (captioning a folder automatically) lives in ``dataset_caption.py``.

Exit status: 0 when nothing needs fixing (warnings allowed), 1 when errors were found, 2 for bad
usage, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chroma_studio.cli.terminal import plural

if TYPE_CHECKING:
    from chroma_studio.dataset.findings import CheckReport, Finding

DEFAULT_SHOWN_PER_KIND = 10
_HEADINGS = {"error": "Errors", "warning": "Warnings", "info": "Notes"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from chroma_studio.config import DataConfig

    parser = subparsers.add_parser(
        "dataset",
        help="check image folders and captions",
        description="Work with training datasets: image folders with a .txt caption beside each image.",
    )
    actions = parser.add_subparsers(dest="dataset_action", metavar="ACTION")
    from chroma_studio.cli import print_usage

    parser.set_defaults(run=lambda args: print_usage(parser))

    check = actions.add_parser(
        "check",
        help="report problems in image folders and captions; changes nothing",
        description="Report damaged, tiny, huge and duplicate images, missing captions, a missing trigger word and "
        "captions too short or too alike. Nothing is modified. Exit status 1 when errors are found.",
    )
    check.add_argument("folders", nargs="+", metavar="DIR", help="image folders (searched recursively)")
    check.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    check.add_argument(
        "--resolution",
        type=int,
        default=DataConfig().resolution,
        metavar="N",
        help="training resolution in pixels (default: %(default)s)",
    )
    check.add_argument("--trigger", metavar="WORD", help="trigger word every caption should contain")
    check.add_argument("--all", action="store_true", help="list every finding (default: a few of each kind)")
    check.add_argument(
        "--follow-links",
        action="store_true",
        help="follow symbolic links that point outside the folders (by default they are reported and skipped)",
    )
    check.set_defaults(run=run)

    from chroma_studio.cli.dataset_caption import add_caption_parser

    add_caption_parser(actions)


def run(args: argparse.Namespace) -> int:
    if not 128 <= args.resolution <= 4096:
        print(
            f"chroma-studio dataset check: --resolution {args.resolution} is out of range; use 128 to 4096 "
            "(a multiple of 64, such as 512 or 1024).",
            file=sys.stderr,
        )
        return 2
    from chroma_studio.dataset.checks import check_dataset

    progress = _Progress(sys.stderr) if not args.json and sys.stderr.isatty() else None
    try:
        report = check_dataset(
            args.folders,
            resolution=args.resolution,
            trigger_word=args.trigger,
            progress=progress,
            follow_links=args.follow_links,
        )
    except KeyboardInterrupt:
        print("\nInterrupted; nothing was changed.", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.done()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report, None if args.all else DEFAULT_SHOWN_PER_KIND))
    return 1 if report.errors else 0


def format_report(report: CheckReport, shown_per_kind: int | None = DEFAULT_SHOWN_PER_KIND) -> str:
    """The report as text: a headline, findings grouped by severity then kind, then the figures."""
    counts = {severity: len(report.by_severity(severity)) for severity in _HEADINGS}
    trigger = f", trigger word '{report.trigger_word}'" if report.trigger_word else ""
    lines = [
        f"Checked {plural(len(report.images), 'image')} in {plural(len(report.folders), 'folder')} "
        f"at {report.resolution} px{trigger}: {plural(counts['error'], 'error')}, "
        f"{plural(counts['warning'], 'warning')}, {plural(counts['info'], 'note')}."
    ]
    for severity, heading in _HEADINGS.items():
        findings = report.by_severity(severity)
        if findings:
            lines += ["", f"{heading} ({len(findings)})"]
            lines += _format_group(findings, shown_per_kind)
    lines += ["", *_figures(report), ""]
    if report.errors:
        lines.append(f"Fix the {plural(counts['error'], 'error')} above before training.")
    else:
        lines.append("No errors: the dataset is ready to train." if report.images else "No images found.")
    return "\n".join(lines)


def _format_group(findings: list[Finding], shown_per_kind: int | None) -> list[str]:
    by_code: dict[str, list[Finding]] = {}
    for finding in findings:
        by_code.setdefault(finding.code, []).append(finding)
    lines = []
    for code, group in by_code.items():
        shown = group if shown_per_kind is None else group[:shown_per_kind]
        lines += [f"  [{code}] {_display(f)}" for f in shown]
        if len(group) > len(shown):
            lines.append(f"  [{code}] ... and {len(group) - len(shown)} more like these (--all lists every one)")
    return lines


def _figures(report: CheckReport) -> list[str]:
    lines = [f"Images per epoch, with folder repeats: {report.weighted_images}"]
    if report.buckets:
        buckets = ", ".join(f"{w}x{h}: {n}" for (w, h), n in report.buckets.items())
        lines.append(f"Buckets at {report.resolution} px: {buckets}")
    stats = report.captions
    if stats.captions:
        lines.append(
            f"Captions: {stats.captions} of {len(report.images)} images; words min {stats.words_min}, median "
            f"{stats.words_median:g}, max {stats.words_max}; {stats.distinct_tokens} distinct words in "
            f"{stats.total_tokens} (ratio {stats.distinct_ratio:.2f})"
        )
    if report.cancelled:
        lines.append("The check was stopped early: the findings above are incomplete.")
    return lines


def _display(finding: Finding) -> str:
    if finding.path is None:
        return finding.message
    return f"{_short_path(finding.path)}: {finding.message}"


def _short_path(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


class _Progress:
    """A one-line counter on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.1 or done == total:
            self.last = now
            self.shown = True
            self.stream.write(f"\rChecking images: {done}/{total}")
            self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
