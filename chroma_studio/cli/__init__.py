"""``chroma-studio``: no arguments opens the app; subcommands run the same engine headless.

Each subcommand lives in its own module here with ``add_parser(subparsers)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys

from chroma_studio.base.logs import setup_logging
from chroma_studio.base.text import make_stream_safe

SUBCOMMANDS = ("train", "queue", "export", "checkpoint", "doctor", "estimate", "dataset")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chroma-studio",
        description="Train LoRAs for Chroma 1. Run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {app_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def print_usage(parser: argparse.ArgumentParser) -> int:
    """A command group given no action: its help on stderr, and the exit status of bad usage."""
    parser.print_help(sys.stderr)
    return 2


def app_version() -> str:
    """The installed distribution's version (package metadata), e.g. "0.1.0"."""
    try:
        return importlib.metadata.version("chroma-studio")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: version unknown)"


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must print, not crash
        make_stream_safe(stream)
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.command is None:
        from chroma_studio.gui.app import main as gui_main

        return gui_main(sys.argv[:1])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
