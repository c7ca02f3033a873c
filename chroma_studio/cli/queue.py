"""``chroma-studio queue add|list|run|remove``: the queue of runs the app shows, from a terminal.

``queue run`` trains the waiting entries one after another, each in an engine process of its own
(as the app does); a failed run does not stop the queue. Ctrl-C stops the running entry with a
checkpoint and leaves it "waiting (resume)", first in line for the next ``queue run``. Exit
status: 0 when every entry it ran finished, 1 when one failed, 130 after Ctrl-C, 3 when another
runner (the app, or a second ``queue run``) holds the queue.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chroma_studio.base.run_queue import RunQueue

EXIT_BUSY = 3


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "queue",
        help="line up training runs and run them one after another",
        description="The queue of runs, shared with the app: add configs, list them, run them in turn.",
    )
    actions = parser.add_subparsers(dest="queue_action", metavar="ACTION")
    add = actions.add_parser("add", help="add a config to the end of the queue (a snapshot of it)")
    add.add_argument("config", help="path to the config JSON")
    add.add_argument("--name", default="", help="a name for the entry (default: its output folder's name)")
    add.add_argument("--output-dir", help="override output_dir")
    add.add_argument("--max-train-steps", type=int, help="override max_train_steps")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="show the queue")
    listing.set_defaults(run=run_list)
    running = actions.add_parser("run", help="train the waiting entries one after another until none is left")
    running.set_defaults(run=run_queue)
    remove = actions.add_parser("remove", help="take an entry off the queue (its run folder stays)")
    remove.add_argument("id", type=int, help="the entry's id, as `queue list` shows it")
    remove.set_defaults(run=run_remove)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    from chroma_studio.cli import print_usage

    return print_usage(parser)


def _error(exc: Exception) -> int:
    """Say what went wrong (the queue file, an entry, a config) and give exit status 2."""
    print(f"error: {exc}", file=sys.stderr)
    return 2


def _on_queue(action: Callable[[argparse.Namespace, RunQueue], int]) -> Callable[[argparse.Namespace], int]:
    """``action(args, queue)`` on the queue file, or exit status 2 with the reason it cannot be read."""

    @functools.wraps(action)
    def run(args: argparse.Namespace) -> int:
        from chroma_studio.base.run_queue import QueueFileError, RunQueue

        try:
            queue = RunQueue()
        except QueueFileError as exc:
            return _error(exc)
        return action(args, queue)

    return run


@_on_queue
def run_add(args: argparse.Namespace, queue: RunQueue) -> int:
    from chroma_studio.base.run_queue import QueueError
    from chroma_studio.config import ConfigError, load_config

    try:
        config, warnings = load_config(args.config)
        overrides: dict[str, object] = {"resume_from_checkpoint": None}  # the queue decides what resumes
        if args.output_dir is not None:
            overrides["output_dir"] = str(Path(args.output_dir).resolve()) if args.output_dir.strip() else ""
        if args.max_train_steps is not None:
            overrides["max_train_steps"] = args.max_train_steps
        config = config.replace(**overrides)
        entry = queue.add(config.to_dict(), args.name)
    except (ConfigError, QueueError) as exc:
        return _error(exc)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Added entry {entry.id} ({entry.name}), number {len(queue.waiting())} in line: {entry.output_dir}")
    return 0


@_on_queue
def run_list(args: argparse.Namespace, queue: RunQueue) -> int:
    busy = queue.lock("").held_by_other()
    if busy is not None:
        from chroma_studio.base.queue_lock import describe_owner

        print(describe_owner(busy))
    if not queue.entries:
        print("The queue is empty. Add a run with: chroma-studio queue add CONFIG")
        return 0
    print(f"{'id':>4}  {'status':<17} {'steps':>11}  name")
    for entry in queue.entries:
        total = entry.config.get("max_train_steps") or "?"
        print(f"{entry.id:>4}  {entry.label:<17} {f'{entry.step}/{total}':>11}  {entry.name}")
        print(f"{'':>24}  {entry.output_dir}")
        if entry.result:
            print(f"{'':>24}  {entry.result}")
    return 0


@_on_queue
def run_remove(args: argparse.Namespace, queue: RunQueue) -> int:
    from chroma_studio.base.run_queue import QueueError

    try:
        entry = queue.remove(args.id)
    except QueueError as exc:
        return _error(exc)
    print(f"Removed entry {entry.id} ({entry.name}); its run folder is kept.")
    return 0


@_on_queue
def run_queue(args: argparse.Namespace, queue: RunQueue) -> int:
    from chroma_studio.base.queue_lock import COMMAND_LINE, QueueBusy

    lock = queue.lock(COMMAND_LINE)
    try:
        lock.acquire()
    except QueueBusy as exc:
        print(f"{exc} Not starting a second run; wait for it, or stop it there.", file=sys.stderr)
        return EXIT_BUSY
    try:
        queue.recover()
        return _run_entries(queue)
    finally:
        lock.release()


def _run_entries(queue) -> int:
    """Train each waiting entry in turn; the exit status of the whole queue."""
    from chroma_studio.cli.train import ProgressPrinter
    from chroma_studio.protocol.events import RunStatus
    from chroma_studio.protocol.jobs import TrainJob
    from chroma_studio.protocol.remote import RemoteControl, run_in_process

    failed = ran = 0
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        while not interrupt.asked and (entry := queue.next_entry()) is not None:
            queue.mark_started(entry.id)
            ran += 1
            resumed = " (resuming)" if entry.resume else ""
            print(f"Entry {entry.id} ({entry.name}){resumed}: training into {entry.output_dir}", flush=True)
            interrupt.control, interrupt.printer = RemoteControl(), ProgressPrinter(sys.stderr)
            result = run_in_process(TrainJob(entry.run_config()), interrupt.printer, interrupt.control)
            interrupt.control = None
            if not _record(queue, entry, result, interrupt.asked):
                return 130
            failed += result.status is RunStatus.FAILED
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupt.asked:
        print("Stopped between runs; `chroma-studio queue run` goes on with the next one.", flush=True)
        return 130
    if not ran:
        print("Nothing is waiting in the queue.")
    else:
        print(f"The queue is done: {ran - failed} of {ran} runs finished.", flush=True)
    return 1 if failed else 0


def _record(queue, entry, result, interrupted: bool) -> bool:
    """Write how an entry's run ended; False when Ctrl-C stopped it (it resumes first next time)."""
    from chroma_studio.base.run_queue import EntryStatus
    from chroma_studio.protocol.events import RunStatus

    if result.status is RunStatus.FINISHED:
        queue.mark_ended(entry.id, EntryStatus.FINISHED, result.step, result.lora_path or "")
        print(f"Entry {entry.id} finished: {result.lora_path}", flush=True)
    elif result.status is RunStatus.FAILED:
        why = result.failure.message if result.failure is not None else "the run failed"
        queue.mark_ended(entry.id, EntryStatus.FAILED, result.step, why)
        print(f"Entry {entry.id} failed: {why}", flush=True)
    elif interrupted:  # our Ctrl-C: resumes first next time
        queue.mark_interrupted(entry.id, result.step)
        print(
            f"Stopped entry {entry.id} at step {result.step}; `chroma-studio queue run` continues it first.",
            flush=True,
        )
        return False
    else:
        queue.mark_ended(entry.id, EntryStatus.STOPPED, result.step)
    return True


class _Interrupt:
    """Ctrl-C: the first stops the running entry with a checkpoint (or the queue between runs), a
    second ends the entry's process at once."""

    def __init__(self) -> None:
        self.asked = False
        self.control = None
        self.printer = None

    def __call__(self, signum, frame) -> None:
        control, printer = self.control, self.printer
        if control is None or printer is None:
            self.asked = True
            return
        if control.stop_requested:
            printer.note("Ending the run now; checkpoints already saved are kept.")
            control.kill()
            return
        self.asked = True
        printer.note("Stopping after this step and saving a checkpoint (Ctrl-C again to end at once)...")
        control.stop()
