"""A run checked and planned without loading any weights (``train --dry-run``): ``check_run`` makes
the checks a real run makes before it loads a model, by the same code; ``describe_plan`` resolves
the rest (model source, device, LoRA size, steps, processes and the blocks streamed from RAM, with
the memory model's pinned RAM and slowdown for the GPU the run is sized for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chroma_studio.config import TrainingConfig
from chroma_studio.config.settings import LOGIT_NORMAL_DISTRIBUTIONS, SIGMA_DISTRIBUTION_WORDS


def count_lora(target: str, rank: int, source_config: dict[str, Any] | None = None) -> tuple[int, int]:
    """(adapted layers, LoRA parameters) for the real transformer, built on the meta device."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import ChromaTransformer2DModel

    from chroma_studio.base.paths import resources_dir
    from chroma_studio.training.lora import target_module_names

    config = source_config or ChromaTransformer2DModel.load_config(str(resources_dir() / "models" / "transformer"))
    with init_empty_weights():
        model = ChromaTransformer2DModel.from_config(config)
    modules = dict(model.named_modules())
    names = target_module_names(model, target)
    params = 0
    for name in names:
        layer: torch.nn.Linear = modules[name]
        params += rank * (layer.in_features + layer.out_features)
    return len(names), params


def noise_levels(config: TrainingConfig) -> dict[str, Any]:
    """The noise-level distribution a run trains with, by name and in words."""
    name, optim = config.sigma_distribution, config.optim
    described: dict[str, Any] = {"distribution": name, "description": SIGMA_DISTRIBUTION_WORDS[name]}
    if name in LOGIT_NORMAL_DISTRIBUTIONS:
        described["sigmoid_scale"] = optim.flow_sigmoid_scale
    if optim.flow_schedule_shift and optim.flow_schedule_shift != 1.0:
        described["shift"] = optim.flow_schedule_shift
    return described


def plan_errors() -> tuple[type[Exception], ...]:
    """The errors a failed check raises, each with a message written for the user."""
    from chroma_studio.base.run_lock import RunFolderInUse
    from chroma_studio.config import ConfigError
    from chroma_studio.training.checkpoint import CheckpointError
    from chroma_studio.training.data import DatasetError
    from chroma_studio.training.errors import TrainingError
    from chroma_studio.training.loading import ModelSourceError

    return (ConfigError, DatasetError, TrainingError, RunFolderInUse, CheckpointError, ModelSourceError, OSError)


def check_run(config: TrainingConfig) -> list[str]:
    """The checks a run makes before it loads a model, by the same code and with the same errors:
    the settings, the dataset (at least one usable image) and the output folder (``check_folder``).
    Raises one of ``plan_errors()``; returns the dataset's warnings."""
    from chroma_studio.base.run_folder import RunFolder
    from chroma_studio.config import ConfigError, errors
    from chroma_studio.training.data import load_examples
    from chroma_studio.training.loading import pick_device
    from chroma_studio.training.prepare import check_folder
    from chroma_studio.training.streaming import check_streaming

    problems = errors(config.validate())
    if problems:
        raise ConfigError(problems)
    if config.model.blocks_to_swap:
        check_streaming(pick_device(), config.model.base_model_precision)
    _, warnings = load_examples(config)
    check_folder(config, RunFolder(config.run.output_dir))
    return warnings


def describe_plan(config: TrainingConfig) -> dict[str, Any]:
    """Everything a dry run reports: model source, device, precision, LoRA, data and steps."""
    from chroma_studio.training.data import load_examples, total_steps
    from chroma_studio.training.loading import pick_device, resolve_source

    source = resolve_source(config)
    plan: dict[str, Any] = {
        "model": source.label,
        "components": source.describe(),
        "flavour": config.model.model_flavour,
        "device": str(pick_device()),
        "mixed_precision": config.model.mixed_precision,
        "base_model_precision": config.model.base_model_precision,
        "gradient_checkpointing": config.model.gradient_checkpointing,
        "lora": {
            "rank": config.lora.lora_rank,
            "alpha": config.effective_lora_alpha,
            "targets": config.lora.flux_lora_target,
        },
        "resolution": config.data.resolution,
        "batch_size": config.optim.train_batch_size,
        "processes": config.run.num_processes,
        "global_batch_size": config.optim.train_batch_size * config.run.num_processes,
        "gradient_accumulation_steps": config.optim.gradient_accumulation_steps,
        "learning_rate": config.optim.learning_rate,
        "lr_scheduler": config.optim.lr_scheduler,
        "noise_levels": noise_levels(config),
        "output_dir": str(Path(config.run.output_dir)),
    }
    plan["streaming"] = streaming_plan(config, plan["device"], real=not source.is_demo)
    plan["warnings"] = []
    if not source.is_demo:
        layers, params = count_lora(config.lora.flux_lora_target, config.lora.lora_rank)
        plan["lora"].update({"layers": layers, "parameters": params})
        if plan["device"] == "cpu":
            plan["warnings"].append(
                "No GPU found: the real 8.9B model would take days per epoch on the CPU. Use a CUDA, ROCm or "
                "Apple-silicon machine, or model_flavour demo to try the app."
            )
    examples, warnings = load_examples(config)  # raises DatasetError, as check_run does first
    steps, per_epoch = total_steps(config, examples)
    plan["dataset"] = {"images": len(examples), "warnings": len(warnings), "buckets": len({e.bucket for e in examples})}
    plan["steps"] = steps
    plan["steps_per_epoch"] = per_epoch
    return plan


def streaming_plan(config: TrainingConfig, device: str, real: bool = True) -> dict[str, Any] | None:
    """The blocks ``blocks_to_swap`` streams from RAM, with the memory model's pinned RAM and slowdown
    for this machine's GPU (the smallest of several); None when no block streams.

    Where streaming does not apply (the CPU: no CUDA streams) the blocks still pass through the
    streamer but nothing is saved, and the plan says so instead of giving figures; the demo model is
    not the one the memory model describes, so it gets none either.
    """
    blocks = config.model.blocks_to_swap
    if not blocks:
        return None
    from chroma_studio.hardware import detect_machine, estimate_memory
    from chroma_studio.hardware.architecture import chroma_architecture
    from chroma_studio.hardware.budget import pinned_bytes
    from chroma_studio.hardware.fitting import cost_of
    from chroma_studio.hardware.streaming import describe_slowdown, refusal

    arch = chroma_architecture()
    planned: dict[str, Any] = {"blocks_streamed": blocks}
    if real:  # the demo model has blocks of its own
        planned["blocks"] = arch.double_blocks + arch.single_blocks
    gpu = detect_machine().sizing_device
    kind = gpu.kind if device.split(":")[0] == "cuda" and gpu.kind in ("cuda", "rocm") else device.split(":")[0]
    why_not = refusal(kind, config.model.base_model_precision)
    if why_not:
        planned["note"] = f"Nothing is saved by streaming here: {why_not}."
        return planned
    if not real:
        planned["note"] = "The demo model is tiny: the memory model's figures are for the real Chroma."
        return planned
    cost = cost_of(config, gpu) if gpu.kind == kind else None
    if cost is None:  # the run's device is not the one detected (CHROMA_STUDIO_DEVICE): no figures
        planned["note"] = f"No {kind} GPU was detected to model the copies on."
        return planned
    estimate = estimate_memory(config, gpu)
    planned.update(cost.to_dict())
    planned["pinned_ram_gb"] = round(pinned_bytes(estimate) / 2**30, 2)
    planned["peak_device_gb"] = round(estimate.peak_device_bytes / 2**30, 2)
    planned["peak_phase"] = estimate.phase(estimate.peak_device_phase).title.lower()
    planned["gpu"] = gpu.name
    planned["gpu_free_gb"] = round(gpu.free_bytes / 2**30, 2)
    planned["slowdown_words"] = describe_slowdown(planned)
    return planned
