"""Validation images during training, rendered with diffusers' ChromaPipeline.

Prompts are encoded by our own code (text.encode_prompts) and handed to the pipeline as
embeddings with *boolean* masks: the pipeline's own encoder builds 0/1 float masks, which torch
adds to the attention scores instead of masking, so its padding would not be hidden. Sampling
leaves the training state as it found it: RNG, train/eval mode and LoRA scale.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from chroma_studio.base.run_folder import RunFolder
from chroma_studio.protocol.events import SampleReady
from chroma_studio.training.text import collate_text


@dataclass(frozen=True)
class SampleSettings:
    prompts: tuple[str, ...]
    negative_prompt: str
    guidance: float
    steps: int
    resolution: int
    seed: int


def render_samples(
    *,
    transformer: torch.nn.Module,
    vae: torch.nn.Module,
    scheduler,
    prompt_embeds: Sequence[torch.Tensor],
    negative_embeds: torch.Tensor | None,
    settings: SampleSettings,
    step: int,
    output_dir: str | Path,
    device: torch.device,
    dtype: torch.dtype,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[SampleReady]:
    """Render every prompt at the fixed seed; write PNGs and the index; return the events.

    ``should_stop`` is polled after every denoising step: a stop request abandons the pass (an
    unfinished image is not written), so stopping never waits for a whole sample pass.
    """
    from diffusers import ChromaPipeline

    folder = RunFolder(output_dir)
    was_training = transformer.training
    vae_device = next(vae.parameters()).device
    vae.to(device)
    pipe = ChromaPipeline(scheduler=scheduler, vae=vae, text_encoder=None, tokenizer=None, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    events = []
    try:
        transformer.eval()
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            for index, embeds in enumerate(prompt_embeds):
                image = _render_one(pipe, embeds, negative_embeds, settings, device, dtype, should_stop)
                if image is None:
                    break
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                path = folder.write_sample_image(step, index, buffer.getvalue())
                folder.append_sample_record(_index_record(step, index, path, settings))
                events.append(
                    SampleReady(
                        step=step,
                        prompt=settings.prompts[index],
                        path=str(path),
                        seed=settings.seed,
                        prompt_index=index,
                    )
                )
    finally:
        transformer.train(was_training)
        vae.to(vae_device)
    return events


def _render_one(pipe, embeds, negative_embeds, settings: SampleSettings, device, dtype, should_stop):
    cfg = settings.guidance > 1.0
    rows = [embeds, negative_embeds] if cfg else [embeds]
    batch, mask = collate_text([r.to(device) for r in rows])
    batch = batch.to(dtype)
    kwargs = {}
    if cfg:
        kwargs = {"negative_prompt_embeds": batch[1:2], "negative_prompt_attention_mask": mask[1:2]}

    def check_stop(pipeline, step, timestep, callback_kwargs):
        if should_stop():
            pipeline._interrupt = True  # the pipeline skips its remaining steps
        return callback_kwargs

    result = pipe(
        prompt_embeds=batch[:1],
        prompt_attention_mask=mask[:1],
        guidance_scale=settings.guidance,
        num_inference_steps=settings.steps,
        height=settings.resolution,
        width=settings.resolution,
        generator=torch.Generator("cpu").manual_seed(settings.seed),
        output_type="pil",
        callback_on_step_end=check_stop,
        **kwargs,
    )
    return None if pipe.interrupt else result.images[0]


def _index_record(step: int, index: int, path: Path, settings: SampleSettings) -> dict:
    return {
        "step": step,
        "prompt_index": index,
        "prompt": settings.prompts[index],
        "negative_prompt": settings.negative_prompt if settings.guidance > 1.0 else "",
        "seed": settings.seed,
        "guidance": settings.guidance,
        "steps": settings.steps,
        "resolution": settings.resolution,
        "file": path.name,
    }
