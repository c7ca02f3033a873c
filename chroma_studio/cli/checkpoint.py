"""``chroma-studio checkpoint convert PATH``: bring checkpoints of earlier versions to the current format.

Exit status: 0 when every checkpoint is converted (or was current already), 2 when one is refused
or damaged (the message names the file), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys

RISK = (
    "Checkpoints of earlier Chroma Studio versions keep their optimizer and random state in "
    "training_state.pt, a pickle file. Loading a pickle can run code hidden in it, so training no "
    "longer reads such files and refuses to resume from them. This command reads the file once with "
    "torch's restricted loader, which accepts only tensors and plain values and refuses anything else, "
    "writes the state as safetensors + JSON, and removes the .pt file. Only convert checkpoints you made "
    "yourself or got from someone you trust."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "checkpoint",
        help="work with a run's checkpoints",
        description="Work with the checkpoints of a run (checkpoints/step_N folders).",
    )
    actions = parser.add_subparsers(dest="checkpoint_action", metavar="ACTION")
    from chroma_studio.cli import print_usage

    parser.set_defaults(run=lambda args: print_usage(parser))

    convert = actions.add_parser(
        "convert",
        help="convert checkpoints of an earlier version (a pickle file, which can run code) to the safe format",
        description=RISK,
    )
    convert.add_argument(
        "path",
        metavar="PATH",
        help="a checkpoints/step_N folder, or a run's output folder to convert all of its checkpoints",
    )
    convert.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chroma_studio.training.checkpoint import CheckpointError
    from chroma_studio.training.legacy_checkpoint import checkpoints_to_convert, convert_checkpoint

    print(
        "note: training_state.pt is a pickle file, which can run code when it is loaded. It is read with "
        "torch's restricted loader, which refuses anything but tensors and plain values. Only convert "
        "checkpoints you made yourself or trust.",
        file=sys.stderr,
    )
    try:
        folders = checkpoints_to_convert(args.path)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    try:
        for folder in folders:
            try:
                result = convert_checkpoint(folder)
            except CheckpointError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed += 1
                continue
            if result.changed:
                print(f"converted {folder} (training_state.pt removed)")
            else:
                print(f"{folder} is already in the current format; nothing to do")
    except KeyboardInterrupt:
        print("\nInterrupted; each checkpoint is either converted or as it was.", file=sys.stderr)
        return 130
    return 2 if failed else 0
