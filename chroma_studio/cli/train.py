"""``chroma-studio train CONFIG``: the engine headless, with a progress line on the terminal."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import time
from pathlib import Path

from chroma_studio.cli.terminal import StatusLine, amount_text, bar


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a LoRA from a config file", description="Train a LoRA from a JSON config file."
    )
    parser.add_argument("config", help="path to the config JSON (SimpleTuner key names work)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    resume.add_argument("--resume-from", metavar="PATH", help="continue from this checkpoint folder")
    parser.add_argument("--dry-run", action="store_true", help="check the config and print the plan; load nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--max-train-steps", type=int, help="override max_train_steps")
    parser.add_argument(
        "--num-processes",
        type=int,
        metavar="N",
        help="override num_processes: train data-parallel in N processes, one per GPU (without GPUs: N CPU "
        "processes, slow)",
    )
    parser.set_defaults(run=run)


def _load(args: argparse.Namespace):
    from chroma_studio.config import ConfigError, load_config

    try:
        config, warnings = load_config(args.config)
        overrides: dict[str, object] = {}
        if args.output_dir is not None:  # an empty one is refused by the config, not taken for "here"
            overrides["output_dir"] = str(Path(args.output_dir).resolve()) if args.output_dir.strip() else ""
        if args.max_train_steps is not None:
            overrides["max_train_steps"] = args.max_train_steps
        if args.num_processes is not None:
            overrides["num_processes"] = args.num_processes
        if args.resume:
            overrides["resume_from_checkpoint"] = "latest"
        elif args.resume_from:
            overrides["resume_from_checkpoint"] = args.resume_from
        if overrides:
            config = config.replace(**overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, []
    return config, warnings


def run(args: argparse.Namespace) -> int:
    config, warnings = _load(args)
    if config is None:
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        return _dry_run(config, as_json=args.json)

    from chroma_studio.protocol.control import TrainingControl

    control = TrainingControl()
    printer = ProgressPrinter(sys.stderr)
    train = _in_this_process
    if config.run.num_processes > 1:  # the ranks start under torch's launcher; rank 0 reports here
        from chroma_studio.protocol.remote import RemoteControl

        control, train = RemoteControl(), _in_processes

    def on_interrupt(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        printer.note("Stopping after this step and saving a checkpoint (Ctrl-C again to abort)...")
        control.stop()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    trainer_log = logging.getLogger("chroma_studio.training.trainer")
    level = trainer_log.level
    if not args.verbose:  # a failure is printed once, by the printer, with its hint
        trainer_log.setLevel(logging.CRITICAL)
    try:
        result = train(config, printer, control)
    except KeyboardInterrupt:  # the second Ctrl-C: the run ends where it is
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        printer.note("Stopped without saving.")
        return 130
    finally:
        # After a stop was asked for, a late second Ctrl-C must not end the process with a traceback
        # while it reports how the run ended; otherwise the caller's own handler comes back.
        signal.signal(signal.SIGINT, signal.SIG_IGN if control.stop_requested else previous)
        trainer_log.setLevel(level)
    if result is None or result.status == "failed":  # None: the processes could not start
        return 1
    if result.status == "stopped":
        print(f"Stopped at step {result.step}. Continue with: {resume_command(args)}")
        return 130
    print(f"Done: {result.lora_path}")
    return 0


def _in_this_process(config, printer, control):
    from chroma_studio.training.trainer import run_training

    return run_training(config, printer, control)


def _in_processes(config, printer, control):
    from chroma_studio.protocol.jobs import TrainJob
    from chroma_studio.protocol.remote import run_in_process

    return run_in_process(TrainJob(config.to_dict()), printer, control)


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the same config and overrides, plus --resume."""
    parts = ["chroma-studio", "train", args.config]
    if args.output_dir:
        parts += ["--output-dir", args.output_dir]
    if args.max_train_steps is not None:
        parts += ["--max-train-steps", str(args.max_train_steps)]
    if args.num_processes is not None:
        parts += ["--num-processes", str(args.num_processes)]
    return shlex.join([*parts, "--resume"])


def _dry_run(config, as_json: bool) -> int:
    """Every check a real run makes before it loads a model, failing as it would; then the plan."""
    from chroma_studio.training.errors import describe_failure
    from chroma_studio.training.plan import check_run, describe_plan, plan_errors

    try:
        check_run(config)
        plan = describe_plan(config)
    except plan_errors() as exc:
        failure = describe_failure(exc, config.run.output_dir)
        print(f"error: {failure.message}", file=sys.stderr)
        if failure.hint:
            print(f"hint: {failure.hint}", file=sys.stderr)
        return 2
    print(json.dumps(plan, indent=2) if as_json else format_plan(plan))
    return 0


def _noise_levels(noise: dict) -> str:
    extras = [f"{key} {noise[key]:g}" for key in ("sigmoid_scale", "shift") if key in noise]
    return f"{noise['distribution']} ({noise['description']})" + (f"; {', '.join(extras)}" if extras else "")


def _processes_and_streaming(plan: dict) -> list[str]:
    """The plan's lines for several processes and for blocks streamed from RAM (none when neither)."""
    lines = []
    processes = plan.get("processes", 1)
    if processes > 1:
        lines.append(
            f"Processes:   {processes}, one per GPU: global batch {plan['batch_size']} x {processes} = "
            f"{plan['global_batch_size']} images per step"
        )
    streaming = plan.get("streaming")
    if streaming:
        of = f" of {streaming['blocks']}" if "blocks" in streaming else ""
        line = f"Streaming:   {streaming['blocks_streamed']}{of} blocks from RAM (blocks_to_swap)"
        if "pinned_ram_gb" in streaming:
            peak = f"{streaming['peak_device_gb']:.1f} GB ({streaming['peak_phase']})"
            line += (
                f", {streaming['pinned_ram_gb']:.1f} GB of pinned RAM; predicted peak {peak} of "
                f"{streaming['gpu_free_gb']:.1f} GB free on the {streaming['gpu']}; "
                f"modelled slowdown {streaming['slowdown_words']}"
            )
        lines.append(line + (f". {streaming['note']}" if "note" in streaming else ""))
    return lines


def format_plan(plan: dict) -> str:
    lora, data = plan["lora"], plan["dataset"]
    size = f", {lora['layers']} layers, {lora['parameters'] / 1e6:.1f}M parameters" if "layers" in lora else ""
    images = f"{data['images']} images in {data['buckets']} aspect buckets"
    lines = [
        f"Model:       {plan['model']}",
        *(f"  {name:<12} {where}" for name, where in plan["components"].items()),
        f"Device:      {plan['device']} ({plan['mixed_precision']}, base weights {plan['base_model_precision']}, "
        f"gradient checkpointing {'on' if plan['gradient_checkpointing'] else 'off'})",
        f"LoRA:        rank {lora['rank']}, alpha {lora['alpha']:g}, targets {lora['targets']}{size}",
        f"Data:        {images}",
        f"Training:    {plan['steps']} steps at {plan['resolution']} px, batch {plan['batch_size']} x "
        f"{plan['gradient_accumulation_steps']}, learning rate {plan['learning_rate']:g} ({plan['lr_scheduler']})",
        *_processes_and_streaming(plan),
        f"Noise:       {_noise_levels(plan['noise_levels'])}",
        f"Output:      {plan['output_dir']}",
        *(f"Warning:     {warning}" for warning in plan["warnings"]),
        "Nothing was loaded or downloaded (dry run).",
    ]
    return "\n".join(lines)


class ProgressPrinter(StatusLine):
    """A sink that draws one progress line on a terminal, or prints sparse lines into a log."""

    def __init__(self, stream):
        super().__init__(stream)
        self.smoothed: float | None = None
        self.started = time.monotonic()
        self.first_step: int | None = None

    def __call__(self, event) -> None:
        from chroma_studio.protocol import events as ev

        if isinstance(event, ev.StepLogged):
            self._step(event)
        elif isinstance(event, ev.Progress):
            final = event.done == event.total
            if self.due(final, every=5):
                self.line(amount_text(event.task, event.done, event.total, event.unit), final=final)
        elif isinstance(event, ev.PhaseChanged) and event.phase not in ("training", "saving", "sampling"):
            self.note(f"[{event.phase}] {event.detail}")
        elif isinstance(event, ev.RunPlanned):
            self.note(
                f"Training {event.total_steps} steps on {event.images} images "
                f"({event.lora_modules} LoRA layers, {_count(event.trainable_parameters)} parameters)"
            )
        elif isinstance(event, ev.CheckpointSaved):
            self.note(f"Checkpoint saved: {event.path}")
        elif isinstance(event, ev.SampleReady):
            self.note(f"Sample: {event.path}")
        elif isinstance(event, ev.LogMessage) and event.level != "debug":
            self.note(f"{event.level}: {event.message}")
        elif isinstance(event, ev.Failed):
            self.failure(event.message, event.hint, event.traceback)

    def _step(self, event) -> None:
        if self.first_step is None:
            self.first_step, self.started = event.step - 1, time.monotonic() - event.seconds
        self.smoothed = event.loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * event.loss
        done = event.step - self.first_step
        rate = done / max(time.monotonic() - self.started, 1e-9)
        eta = (event.total_steps - event.step) / rate if rate > 0 else 0
        text = (
            f"step {event.step}/{event.total_steps} {bar(event.step, event.total_steps)} loss {event.loss:.4f} "
            f"(avg {self.smoothed:.4f}) {rate:.2f} it/s ETA {_duration(eta)}"
        )
        final = event.step == event.total_steps
        if self.due(final, every=10):
            self.line(text, final=final)


def _count(value: int) -> str:
    return f"{value / 1e6:.1f}M" if value >= 1e6 else f"{value:,}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
