"""Everything a run needs before its first step, gathered once: ``prepare_run(...) -> PreparedRun``.

Order of work: check the settings, read the dataset, claim the output folder (refusing one it
cannot use, then its lock, the checkpoint to resume from, config.json), fetch the model, fill
the embedding cache (T5, then the VAE), load and quantize the transformer and add the LoRA.
What comes out is one frozen record that the training loop only reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chroma_studio.base.paths import cache_dir
from chroma_studio.base.run_folder import (
    CHECKPOINTS,
    KOHYA_FILE,
    LOCK,
    LOG,
    LORA_FILE,
    METRICS,
    SAMPLES,
    RunFolder,
)
from chroma_studio.base.run_lock import RunLock
from chroma_studio.config import ConfigError, TrainingConfig, errors
from chroma_studio.config.settings import (
    SIGMA_DISTRIBUTION_WORDS,
    SIGMA_DISTRIBUTIONS,
    UNRECORDED_SIGMA_DISTRIBUTION,
    SigmaDistribution,
    sigma_keys,
)
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import LogMessage, PhaseChanged, Sink, null_sink
from chroma_studio.training.checkpoint import Identity, resolve_checkpoint
from chroma_studio.training.data import DatasetError, Example, load_examples
from chroma_studio.training.distributed import World, barrier, main_first, my_part, once, share_from_main
from chroma_studio.training.embedding_cache import EmbeddingCache
from chroma_studio.training.encode import cache_latents, cache_text, release_memory
from chroma_studio.training.errors import TrainingError
from chroma_studio.training.grad_checkpointing import enable_masked_checkpointing
from chroma_studio.training.loading import Loader, pick_device, resolve_source, training_dtype
from chroma_studio.training.lora import add_lora
from chroma_studio.training.quantize import QUANTO, nf4_quantization_config, quantize_transformer
from chroma_studio.training.streaming import BlockStreamer, check_streaming, install_streaming, streamed_blocks

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PreparedRun:
    """What the loop trains with. Tensors and models are shared, not copied."""

    examples: tuple[Example, ...]  # the usable ones: an image that cannot be read is left out
    latent_keys: tuple[str, ...]  # the cache key of each example's VAE latent
    text_keys: Mapping[str, str]  # caption or prompt -> the cache key of its T5 embedding
    cache: EmbeddingCache
    transformer: torch.nn.Module  # the frozen (maybe quantized) model with the LoRA, in train mode
    lora_modules: tuple[str, ...]  # names of the modules the LoRA wraps
    vae: torch.nn.Module | None  # for sample images; None when there are no prompts to render
    scheduler: Any  # the sampling scheduler (FlowMatchEulerDiscrete)
    sample_prompts: tuple[str, ...]
    sample_embeds: tuple[torch.Tensor, ...]  # one T5 embedding per sample prompt
    negative_embeds: torch.Tensor | None  # the negative prompt's, with CFG on
    device: torch.device
    dtype: torch.dtype  # the mixed-precision compute type
    identity: Identity  # model, rank, alpha, targets: what a checkpoint must match to resume
    resume: Path | None  # the checkpoint to continue from
    sigma_distribution: SigmaDistribution  # the noise levels trained at (a resumed run keeps its own)
    streaming: BlockStreamer | None = None  # the blocks whose frozen weights stream from host RAM


def prepare_run(
    config: TrainingConfig,
    folder: RunFolder,
    lock: RunLock,
    sink: Sink,
    control: TrainingControl,
    world: World | None = None,
) -> PreparedRun:
    """Check, read, load and cache all a run needs; ``lock`` is acquired here (release it after).

    With several processes (``world``), rank 0 alone claims the folder and fetches the model
    first; the ranks share the caching (``distributed.py``)."""
    problems = errors(config.validate())
    if problems:
        raise ConfigError(problems)
    if world is None and config.run.num_processes > 1:
        raise TrainingError(
            f"num_processes is {config.run.num_processes}, but this run was started as one process.",
            "Start it with `chroma-studio train CONFIG --num-processes N` or from the app, which start the "
            "processes; or set num_processes to 1.",
        )
    _phase(sink, "loading", "Reading the dataset")
    examples, warnings = load_examples(config)
    for warning in warnings:
        sink(LogMessage("warning", warning))
    device, dtype = world.device if world else pick_device(), training_dtype(config.model.mixed_precision)
    if config.model.blocks_to_swap:
        check_streaming(device, config.model.base_model_precision)
    quantization = nf4_quantization_config(dtype) if config.model.base_model_precision == "nf4-bnb" else None
    resume, sigma_distribution = share_from_main(
        world,
        lambda: claim_folder(config, folder, lock, sink),
        lambda claimed: [str(claimed[0]) if claimed[0] else None, claimed[1]],
        lambda shared: (Path(shared[0]) if shared[0] else None, shared[1]),
    )

    source = resolve_source(config)
    _phase(sink, "loading", f"Getting the model: {source.label}")
    loader = Loader(source, sink, control)
    main_first(world, loader.prepare)
    cache = EmbeddingCache(
        Path(config.run.cache_dir) if config.run.cache_dir else cache_dir() / "embeddings",
        text_model=loader.fingerprint("text_encoder") + loader.fingerprint("tokenizer"),
        vae_model=loader.fingerprint("vae"),
        dtype=dtype,
        max_length=config.text.tokenizer_max_length,
    )
    prompts = tuple(config.validation.validation_prompt) or (examples[0].caption or "a photo",)
    negative = [config.validation.validation_negative_prompt] if config.validation.validation_guidance > 1 else []
    dropout = [""] if config.text.caption_dropout_probability > 0 else []
    _phase(sink, "caching", "Encoding captions and images")
    common = {"device": device, "dtype": dtype, "sink": once(sink) if world else sink, "control": control}
    texts = list(dict.fromkeys([e.caption for e in examples] + dropout + list(prompts) + negative))
    offload, own_vae = config.model.offload_during_startup, None
    if world is not None:  # each rank encodes its part; then every rank reads it all from the cache
        cache_text(loader, cache, my_part(texts, world), offload=offload, **common)
        own_vae = cache_latents(loader, cache, my_part(examples, world), **common)[1]
        barrier(world)
    text_keys = cache_text(loader, cache, texts, offload=offload, **common)
    latent_keys, vae = cache_latents(loader, cache, examples, **common)
    vae = vae if vae is not None else own_vae
    if world is not None and not world.main:
        vae = None  # rank 0 alone renders samples
    usable = [i for i, key in enumerate(latent_keys) if key is not None]
    if not usable:
        raise DatasetError("None of the images could be read. Run `chroma-studio dataset check` on the folders.")
    if prompts and vae is None and (world is None or world.main):
        vae = loader.vae(torch.float32 if dtype == torch.float16 else dtype)

    _phase(sink, "loading", "Loading the transformer")
    transformer, lora_modules, streaming = build_transformer(config, loader, device, dtype, quantization)
    if streaming is not None:
        sink(LogMessage("info", streaming.report().describe()))
        for warning in streaming.warnings:
            sink(LogMessage("warning", warning))
    lora = config.lora
    return PreparedRun(
        examples=tuple(examples[i] for i in usable),
        latent_keys=tuple(latent_keys[i] for i in usable),
        text_keys=text_keys,
        cache=cache,
        transformer=transformer,
        lora_modules=tuple(lora_modules),
        vae=vae,
        scheduler=loader.scheduler(),
        sample_prompts=prompts,
        sample_embeds=tuple(cache.get("text", text_keys[p]) for p in prompts),
        negative_embeds=cache.get("text", text_keys[negative[0]]) if negative else None,
        device=device,
        dtype=dtype,
        identity=Identity(source.label, lora.lora_rank, config.effective_lora_alpha, lora.flux_lora_target),
        resume=resume,
        sigma_distribution=sigma_distribution,
        streaming=streaming,
    )


def _phase(sink: Sink, name: str, detail: str) -> None:
    logger.info("%s: %s", name, detail)
    sink(PhaseChanged(name, detail))


# -- the output folder ----------------------------------------------------------------------------


# What a run writes beside its config.json; a config.json with none of them is not a run's.
RUN_FILES = (METRICS, LOG, LOCK, CHECKPOINTS, SAMPLES, LORA_FILE, KOHYA_FILE)


def check_folder(config: TrainingConfig, folder: RunFolder) -> None:
    """Every reason the output folder cannot take this run, found without changing anything (a dry
    run asks the same): it is a file, cannot be made or written, would lose a config.json no run
    wrote, is in use by another run, or lacks the checkpoint to resume from."""
    path = folder.path
    if path.exists() and not path.is_dir():
        raise TrainingError(f"The output folder {path} is a file, not a folder.", "Choose another output_dir.")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise TrainingError(
            f"Cannot write to the output folder {path}: {existing} is a file, not a folder.",
            "Choose an output folder you can write to (output_dir).",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrainingError(
            f"Cannot write to the output folder {path}: permission denied.",
            "Choose an output folder you can write to (output_dir).",
        )
    if folder.config_file.exists() and not any((path / name).exists() for name in RUN_FILES):
        raise TrainingError(
            f"{folder.config_file} is not from a run, and a run writes its own config.json there: "
            "training into this folder would replace that file.",
            "Choose another output folder (output_dir), such as a new folder beside the config file.",
        )
    if path.is_dir():
        probe = folder.lock()
        probe.acquire()  # raises RunFolderInUse while another run trains here
        probe.release()
    find_resume(config, folder, null_sink)


def claim_folder(
    config: TrainingConfig, folder: RunFolder, lock: RunLock, sink: Sink
) -> tuple[Path | None, SigmaDistribution]:
    """Check the output folder (``check_folder``), then create and lock it, find the checkpoint to
    resume from and write config.json (with the noise levels the run trains at); (that checkpoint,
    those noise levels)."""
    try:
        check_folder(config, folder)
        folder.create()
        lock.acquire()
        resume = find_resume(config, folder, sink)
        sigma_distribution = resumed_sigma_distribution(config, folder, resume, sink)
        folder.write_config(config.replace(**sigma_keys(sigma_distribution)).to_dict())
    except OSError as exc:
        raise TrainingError(
            f"Cannot write to the output folder {folder.path}: {exc.strerror or exc}.",
            "Choose an output folder you can write to (output_dir).",
        ) from exc
    return resume, sigma_distribution


def find_resume(config: TrainingConfig, folder: RunFolder, sink: Sink) -> Path | None:
    """The checkpoint ``resume_from_checkpoint`` names; a new run refuses a folder with checkpoints."""
    wanted = config.run.resume_from_checkpoint
    if not wanted:
        if folder.checkpoints():
            raise TrainingError(
                f"{folder.path} already holds checkpoints of an earlier run.",
                "Resume it (--resume), choose a new output folder, or delete its checkpoints folder.",
            )
        return None
    if wanted == "latest":
        latest = folder.latest_checkpoint()
        if latest is None:
            sink(LogMessage("info", f"No checkpoint in {folder.path} yet; starting from the beginning."))
        return latest
    return resolve_checkpoint(wanted)


def resumed_sigma_distribution(
    config: TrainingConfig, folder: RunFolder, resume: Path | None, sink: Sink
) -> SigmaDistribution:
    """A resumed run keeps the noise levels it began with; a checkpoint without the record is
    from a version that always trained with SimpleTuner's tail map."""
    wanted = config.sigma_distribution
    if resume is None:
        return wanted
    recorded = folder.read_checkpoint_state(resume).get("sigma_distribution", UNRECORDED_SIGMA_DISTRIBUTION)
    if recorded not in SIGMA_DISTRIBUTIONS or recorded == wanted:
        return wanted
    sink(
        LogMessage(
            "info",
            f"Resuming with the noise levels this run began with: {recorded} "
            f"({SIGMA_DISTRIBUTION_WORDS[recorded]}), not {wanted}.",
        )
    )
    return recorded


# -- the model ------------------------------------------------------------------------------------


def build_transformer(
    config: TrainingConfig, loader: Loader, device: torch.device, dtype: torch.dtype, quantization: Any
) -> tuple[torch.nn.Module, list[str], BlockStreamer | None]:
    """The transformer on ``device``, frozen and quantized as set, with a fresh LoRA (seeded); the
    names of the modules the LoRA wraps; and the streamer of the blocks that stay in host RAM
    (``blocks_to_swap``; None when none do)."""
    transformer = loader.transformer(dtype, quantization)
    host_blocks = streamed_blocks(transformer, config.model.blocks_to_swap)
    if config.model.base_model_precision in QUANTO:
        quantize_transformer(transformer, config.model.base_model_precision, device, host_blocks)
    elif quantization is None:
        quantize_transformer(transformer, "no_change", device, host_blocks)
    torch.manual_seed(config.optim.seed)  # the LoRA's initial weights
    lora_modules = add_lora(
        transformer, config.lora.lora_rank, config.effective_lora_alpha, config.lora.flux_lora_target
    )
    # Streaming wraps each block's own forward and checkpointing wraps that, so the recompute in
    # the backward pass loads the block again (tests/training/test_streaming.py fixes the order).
    streaming = install_streaming(transformer, config.model.blocks_to_swap, device)
    if config.model.gradient_checkpointing:
        enable_masked_checkpointing(transformer)
    release_memory(device)
    return transformer.train(), lora_modules, streaming
