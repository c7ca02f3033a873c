"""The memory model at real size on the CPU: predicted vs measured anonymous memory, phase by phase.

    python tests/benchmarks/real_size_cpu.py [--workdir DIR] [--keep] [--through loading|training]
        [--blocks 19,38] [--resolution 256] [--steps 2] [--threads N] [--fast-backward] [--no-trim]
        [--out FILE]

Writes the full 8.9B-parameter Chroma transformer with random bf16 weights as a diffusers folder,
shard by shard with little RAM (about 18 GB on disk; deleted afterwards unless ``--keep``, which
also reuses a model already in ``--workdir``), beside a T5 of the real width (4096) with one small
layer and the demo tokenizer, VAE and scheduler. Then trains through the real engine
(``run_training``) in a child process: int8 quanto, LoRA rank 16 on ``all``, 256 px, 2 steps, one
denoising step per sample image. A thread in the child reads its RssAnon (``/proc/self/status``)
every 0.1 s and at every phase change. Pages of the memory-mapped checkpoint are file-backed and
not in that figure; once the transformer is loaded, the bytes of its weights still read in place
from the mapping (the unquantized layers, 0.5 GB) are added to it, as RAM the run needs.

The prediction is ``estimate_memory(config, "cpu")`` (device + host, which add up on the CPU) over
the rehearsal's own components: the transformer's counts are the real ones; the T5 and the VAE
are the small ones written here (their counts are taken from the folder), so the caching phase is
shown but not judged. ``--blocks D,S`` uses D double and S single blocks at real width instead, to
try a change in minutes. ``--through loading`` stops when training begins (no sample, no LoRA).
On CPUs without AVX-512, bf16 matrix products take torch's reference path, and with the weight
untransposed, as in quanto's backward, it is 15-30x slower again (a 3072 x 3072 product at 300
tokens: 83 s against 2.8 s transposed): ``--fast-backward`` transposes the weight there (speed
only), which brought a full-size step at 128 px to 3 minutes on 2 cores. ``--no-trim`` leaves the
C heap as quanto's temporaries left it (the engine before its fix).

Prints one JSON document; exits 1 when a judged phase's prediction is more than ``--tolerance``
(10%) off the measured peak, 3 when the machine lacks the free RAM (it waits ``--wait-minutes``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from support.calibration.checkpoint import (  # noqa: E402
    mapped_weight_bytes,
    status_bytes,
    write_rehearsal_pipeline,
)
from support.calibration.rehearsal import (  # noqa: E402
    AnonWatcher,
    available_bytes,
    engine_phase,
    use_transposed_weight_in_backward,
    wait_for_ram,
)

GiB = 2**30
REAL_BLOCKS = (19, 38)
# Engine phases set against the memory model's; "caching" covers text and images alike. Caching is
# shown, not judged: the T5 and the VAE here are small stand-ins, so only the runtime is left in it.
NOT_JUDGED = ("caching",)
COMPARED = {
    "caching": ("caching_text", "caching_images"),
    "loading": ("loading",),
    "training": ("training",),
    "sampling": ("sampling",),
}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def rehearsal_config(model: Path, data: Path, out: Path, cache: Path, steps: int, resolution: int) -> dict[str, Any]:
    return {
        "model_flavour": "base",
        "pretrained_model_name_or_path": str(model),
        "dataset_dirs": [str(data)],
        "output_dir": str(out),
        "cache_dir": str(cache),
        "resolution": resolution,
        "mixed_precision": "bf16",
        "base_model_precision": "int8-quanto",
        "gradient_checkpointing": True,
        "lora_rank": 16,
        "flux_lora_target": "all",
        "max_train_steps": steps,
        "checkpointing_steps": 0,
        "validation_steps": 0,
        "validation_num_inference_steps": 1,
        "seed": 0,
    }


# -- the child: the engine, watched ----------------------------------------------------------------
def run_child(spec_path: Path) -> None:
    """Train as the spec says and write what was measured next to it."""
    spec = json.loads(spec_path.read_text())
    from chroma_studio.config import config_from_dict
    from chroma_studio.protocol import events as ev
    from chroma_studio.protocol.control import TrainingControl
    from chroma_studio.training.trainer import run_training

    config = config_from_dict(spec["config"])
    if spec["threads"]:
        import torch

        torch.set_num_threads(spec["threads"])
    if not spec["trim"]:  # the engine as it was: quantized blocks leave the C heap fragmented
        from chroma_studio.training import quantize

        quantize.release_host_heap = lambda: None
    if spec["fast_backward"]:
        use_transposed_weight_in_backward()
    if spec["through"] == "loading":  # no step-0 sample: its first denoising step would run before the stop
        from chroma_studio.training import trainer

        trainer.TrainingLoop.sample = lambda self: None  # type: ignore[method-assign]
    from chroma_studio.training import prepare

    mapped: list[int] = []
    build = prepare.build_transformer

    def build_and_measure(*args: Any, **kwargs: Any) -> Any:
        built = build(*args, **kwargs)
        mapped.append(mapped_weight_bytes(built[0]))
        return built

    prepare.build_transformer = build_and_measure  # type: ignore[assignment]
    control = TrainingControl()
    steps: list[float] = []
    with AnonWatcher() as watcher:

        def sink(event: Any) -> None:
            if isinstance(event, ev.PhaseChanged):
                phase = engine_phase(event, watcher.phase)
                if spec["through"] == "loading" and phase not in ("startup", "caching", "loading"):
                    control.stop()  # the engine stops before its first step, writing no LoRA
                watcher.enter(phase)
            elif isinstance(event, ev.StepLogged):
                steps.append(event.seconds)

        result = run_training(config, sink, control)
    output = {
        "status": result.status,
        "failure": result.failure.message if result.failure else None,
        "peak_anon": watcher.peaks,
        "anon_at_phase_end": watcher.at_end,
        "mapped_weights": mapped[0] if mapped else 0,
        "phase_seconds": {k: round(v, 1) for k, v in watcher.seconds.items()},
        "step_seconds": [round(s, 1) for s in steps],
        "peak_rss": status_bytes("VmHWM"),
        "output_files": sorted(
            str(p.relative_to(config.run.output_dir)) for p in Path(config.run.output_dir).rglob("*.safetensors")
        ),
    }
    Path(spec["result"]).write_text(json.dumps(output))


# -- the parent: build, run, compare ---------------------------------------------------------------
def predicted_phases(config_dict: dict[str, Any], model: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Per-phase device + host bytes from the memory model over the rehearsal's own components."""
    from support.calibration.architecture import count_architecture

    from chroma_studio.config import config_from_dict
    from chroma_studio.hardware import memory
    from chroma_studio.hardware.architecture import _from_counts

    config = config_from_dict(config_dict)
    shipped = memory.estimate_memory(config, "cpu")
    real = memory.chroma_architecture
    # The estimator reads the architecture from this one name: point it at the rehearsal's counts.
    memory.chroma_architecture = lambda: _from_counts(count_architecture(model))  # type: ignore[assignment]
    try:
        estimate = memory.estimate_memory(config, "cpu")
    finally:
        memory.chroma_architecture = real
    totals = {p.name: p.device_bytes + p.host_bytes for p in estimate.phases}
    return totals, {
        "shipped_estimate_gb": {p.name: gb(p.device_bytes + p.host_bytes) for p in shipped.phases},
        "breakdown": estimate.to_dict()["breakdown"],
    }


def gb(value: float) -> float:
    return round(value / GiB, 3)


def compare(anon: dict[str, int], mapped: int, predicted: dict[str, int], tolerance: float) -> dict[str, Any]:
    """Per phase: the prediction against the peak anonymous memory plus, once the transformer is
    loaded, its weights still read in place from the mapped checkpoint."""
    rows = {}
    for phase, model_phases in COMPARED.items():
        if phase not in anon:
            continue
        want = max(predicted[p] for p in model_phases)
        in_use = mapped if phase in ("loading", "training", "sampling") else 0
        measured = anon[phase] + in_use
        error = (want - measured) / measured
        rows[phase] = {
            "predicted_gb": gb(want),
            "measured_gb": gb(measured),
            "anonymous_gb": gb(anon[phase]),
            "mapped_weights_gb": gb(in_use),
            "error": round(error, 3),
            "ok": None if phase in NOT_JUDGED else abs(error) <= tolerance,
        }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where the checkpoint and the run go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (and reuse a model already there)")
    parser.add_argument("--blocks", default=",".join(map(str, REAL_BLOCKS)), help="double,single blocks (19,38)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--need-gb", type=float, help="free RAM to wait for (default: 17 at full size, else 4)")
    parser.add_argument("--wait-minutes", type=float, default=20)
    parser.add_argument(
        "--through",
        choices=("loading", "training"),
        default="training",
        help="stop after this phase: 'loading' measures loading and quantizing without training "
        "(where bf16 matrix products are slow, on CPUs without AVX-512)",
    )
    parser.add_argument(
        "--fast-backward",
        action="store_true",
        help="transpose the weight for quanto's input gradient (speed only; for CPUs without AVX-512)",
    )
    parser.add_argument("--no-trim", action="store_true", help="leave the C heap untrimmed after quantizing")
    parser.add_argument("--threads", type=int, help="torch threads in the engine (1 helps on a busy machine)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return 0

    double, single = (int(n) for n in args.blocks.split(","))
    full = (double, single) == REAL_BLOCKS
    need = (args.need_gb or (17 if full else 4)) * GiB
    if not wait_for_ram(int(need), args.wait_minutes):
        log(f"not enough free RAM: {available_bytes() / GiB:.1f} GB available, {need / GiB:.0f} GB needed")
        return 3
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chroma-real-size-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return rehearse(args, workdir, double, single)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def rehearse(args: argparse.Namespace, workdir: Path, double: int, single: int) -> int:
    from midsize import demo_images

    model = workdir / f"model-{double}-{single}"
    began = time.perf_counter()
    if not (model / "transformer" / "config.json").is_file():
        log(f"writing the random checkpoint ({double} double, {single} single blocks) to {model}")
        partial = model.with_name(model.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_rehearsal_pipeline(partial, num_layers=double, num_single_layers=single)
        partial.rename(model)
    written = time.perf_counter() - began
    run_dir = workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    data = demo_images(run_dir / "data")
    config = rehearsal_config(model, data, run_dir / "out", run_dir / "cache", args.steps, args.resolution)
    spec = run_dir / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "config": config,
                "result": str(run_dir / "result.json"),
                "through": args.through,
                "trim": not args.no_trim,
                "threads": args.threads,
                "fast_backward": args.fast_backward,
            }
        )
    )
    log("training in a child process")
    began = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    subprocess.run([sys.executable, __file__, "--child", str(spec)], check=True, env=env)
    trained = time.perf_counter() - began
    child = json.loads((run_dir / "result.json").read_text())
    predicted, detail = predicted_phases(config, model)
    measured = {
        k: v for k, v in child["peak_anon"].items() if args.through == "training" or k in ("caching", "loading")
    }
    rows = compare(measured, child["mapped_weights"], predicted, args.tolerance)
    done = "finished" if args.through == "training" else "stopped"
    ok = child["status"] == done and all(row["ok"] is not False for row in rows.values())
    report = {
        "transformer_blocks": {"double": double, "single": single},
        "settings": {k: config[k] for k in ("base_model_precision", "lora_rank", "flux_lora_target", "resolution")}
        | {
            "steps": args.steps,
            "through": args.through,
            "heap_trimmed_after_quantizing": not args.no_trim,
            "fast_backward": args.fast_backward,
        },
        "status": child["status"],
        "failure": child["failure"],
        "phases": rows,
        "measured_peak_anon_gb": {k: gb(v) for k, v in child["peak_anon"].items()},
        "measured_anon_at_phase_end_gb": {k: gb(v) for k, v in child["anon_at_phase_end"].items()},
        "peak_rss_gb": gb(child["peak_rss"]),
        "predicted_gb": {k: gb(v) for k, v in predicted.items()},
        **detail,
        "seconds": {
            "write_checkpoint": round(written, 1),
            "run": round(trained, 1),
            "phases": child["phase_seconds"],
            "steps": child["step_seconds"],
        },
        "output_files": child["output_files"],
        "within_tolerance": ok,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
