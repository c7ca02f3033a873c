"""Filling the embedding cache before training: T5 for captions, the VAE for images.

Only what is missing is encoded, so the encoders are not even loaded when everything is cached.
T5 leaves the device (and memory) as soon as the captions are done; the VAE goes back to the CPU
and is kept for decoding samples.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable

import torch
from PIL import Image

from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import LogMessage, Progress, Sink
from chroma_studio.training.data import Example
from chroma_studio.training.embedding_cache import EmbeddingCache, file_sha256
from chroma_studio.training.loading import Loader
from chroma_studio.training.text import encode_prompts

logger = logging.getLogger(__name__)
TEXT_BATCH = 8


class Stopped(Exception):
    """The user asked to stop before training began."""


def release_memory(device: torch.device, collect: bool = False) -> None:
    """Hand cached device memory back; ``collect`` also runs the garbage collector, which takes
    a few hundred milliseconds with the interpreter lock held, so only after freeing a big model."""
    if collect:
        gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def encoder_dtype(dtype: torch.dtype) -> torch.dtype:
    """T5 overflows in fp16, so it runs in bf16 whenever training is in reduced precision."""
    return torch.float32 if dtype == torch.float32 else torch.bfloat16


def _place(model: torch.nn.Module, device: torch.device, offload: bool) -> torch.nn.Module:
    """Move a model to the device, or stream its weights there layer by layer when offloading."""
    if offload and device.type != "cpu":
        from accelerate import cpu_offload

        cpu_offload(model, execution_device=device)
        return model
    return model.to(device)


def cache_text(
    loader: Loader,
    cache: EmbeddingCache,
    prompts: Iterable[str],
    *,
    device: torch.device,
    dtype: torch.dtype,
    offload: bool,
    sink: Sink,
    control: TrainingControl,
) -> dict[str, str]:
    """Make sure every prompt's embedding is cached; return prompt -> cache key."""
    keys = {prompt: cache.text_key(prompt) for prompt in dict.fromkeys(prompts)}
    missing = [p for p, k in keys.items() if not cache.has("text", k)]
    if not missing:
        return keys
    tokenizer = loader.tokenizer()
    encoder = _place(loader.text_encoder(encoder_dtype(dtype)), device, offload)
    task = "Encoding captions"
    try:
        for start in range(0, len(missing), TEXT_BATCH):
            if control.stop_requested:
                raise Stopped
            chunk = missing[start : start + TEXT_BATCH]
            for prompt, embeds in zip(
                chunk, encode_prompts(encoder, tokenizer, chunk, cache.max_length, device), strict=True
            ):
                cache.put("text", keys[prompt], embeds.float())
            sink(Progress(task=task, done=min(start + TEXT_BATCH, len(missing)), total=len(missing)))
    finally:
        del encoder
        release_memory(device, collect=True)
    logger.info("encoded %d captions", len(missing))
    return keys


def cache_latents(
    loader: Loader,
    cache: EmbeddingCache,
    examples: list[Example],
    *,
    device: torch.device,
    dtype: torch.dtype,
    sink: Sink,
    control: TrainingControl,
) -> tuple[list[str | None], torch.nn.Module | None]:
    """Make sure every example's latent is cached; return the keys (one per example; None for an
    image that cannot be decoded, which is reported and left out) and the VAE if it had to be
    loaded (on the CPU)."""
    from chroma_studio.dataset.images import load_training_image

    keys = [_latent_key(cache, e, sink) for e in examples]
    missing = [i for i, key in enumerate(keys) if key is not None and not cache.has("latent", key)]
    if not missing:
        return keys, None
    vae_dtype = torch.float32 if dtype == torch.float16 else dtype
    vae = loader.vae(vae_dtype).to(device)
    shift, scale = vae.config.shift_factor or 0.0, vae.config.scaling_factor
    task = "Encoding images"
    try:
        for done, index in enumerate(missing, start=1):
            if control.stop_requested:
                raise Stopped
            example, key = examples[index], keys[index]
            assert key is not None  # only readable images are missing
            try:
                image = load_training_image(example.image, example.bucket)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                _left_out(sink, example, exc)
                keys[index] = None
                continue
            pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
            pixels = pixels.view(image.height, image.width, 3).permute(2, 0, 1).float() / 127.5 - 1.0
            with torch.no_grad():
                latent = vae.encode(pixels[None].to(device, vae_dtype)).latent_dist.mode()
            # The transformer works on shifted, scaled latents: (z - shift) * scale.
            cache.put("latent", key, ((latent[0].float() - shift) * scale))
            sink(Progress(task=task, done=done, total=len(missing)))
    finally:
        vae.to("cpu")
        release_memory(device)
    logger.info("encoded %d images", len(missing))
    return keys, vae


def _latent_key(cache: EmbeddingCache, example: Example, sink: Sink) -> str | None:
    """The cache key of an example's latent; None (reported) when its file cannot be read, for
    instance because it was deleted after the dataset was scanned."""
    try:
        return cache.latent_key(file_sha256(example.image), example.bucket)
    except OSError as exc:
        _left_out(sink, example, exc)
        return None


def _left_out(sink: Sink, example: Example, exc: BaseException) -> None:
    sink(LogMessage("warning", f"{example.image}: cannot be read ({exc}); training goes on without it."))
