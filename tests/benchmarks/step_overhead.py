"""Per-step cost of our trainer against a bare diffusers + peft loop, and what the cache saves.

On the mid-size Chroma (CPU, fp32, batch 1, 256 px, no gradient checkpointing):
- ``bare``: a loop written directly on diffusers + peft, the way other trainers do it, with the
  text padded to 512 tokens (one padding token unmasked, boolean mask);
- ``ours_512``: our trainer with its text padded to 512 as well (trimming turned off);
- ``ours``: our trainer as it ships, with the text trimmed to the longest caption.
Prints JSON: median step seconds of each, the ratios (targets: ours_512/bare <= 1.05, ours/bare
well under 1), and epoch-2 over epoch-1 time of our run (epoch 1 includes filling the cache).

Usage: python tests/benchmarks/step_overhead.py [--steps N]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from pathlib import Path

from midsize import build_midsize_pipeline, demo_images, log

RESOLUTION = 256
MAX_LENGTH = 512


def bare_loop(model_dir: Path, data: Path, steps: int) -> list[float]:
    """A plain training loop on diffusers + peft: precomputed 512-token text and latents."""
    import numpy
    import torch
    from diffusers import ChromaPipeline
    from peft import LoraConfig
    from PIL import Image

    pipe = ChromaPipeline.from_pretrained(model_dir)
    transformer, vae = pipe.transformer, pipe.vae
    torch.manual_seed(0)
    transformer.add_adapter(
        LoraConfig(
            r=16,
            lora_alpha=16,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"],
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    examples = []
    for image_path in sorted(data.glob("*.jpg")):
        caption = image_path.with_suffix(".txt").read_text().strip()
        tokens = pipe.tokenizer(
            [caption], padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt"
        )
        with torch.no_grad():
            embeds = pipe.text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask)[0]
            image = Image.open(image_path).convert("RGB").resize((RESOLUTION, RESOLUTION))
            pixels = torch.from_numpy(numpy.asarray(image, dtype=numpy.float32))
            pixels = pixels.permute(2, 0, 1)[None] / 127.5 - 1
            latent = vae.encode(pixels).latent_dist.mode()
        latent = (latent - vae.config.shift_factor) * vae.config.scaling_factor
        mask = torch.arange(MAX_LENGTH)[None] <= tokens.attention_mask.sum(1)[:, None]
        examples.append((embeds, mask, latent))

    h = w = RESOLUTION // 8
    img_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, "cpu", torch.float32)
    txt_ids = torch.zeros(MAX_LENGTH, 3)
    times = []
    generator = torch.Generator().manual_seed(0)
    for step in range(steps):
        embeds, mask, latent = examples[step % len(examples)]
        began = time.perf_counter()
        noise = torch.randn(latent.shape, generator=generator)
        sigma = torch.sigmoid(torch.randn(1, generator=generator))
        noisy = (1 - sigma.view(-1, 1, 1, 1)) * latent + sigma.view(-1, 1, 1, 1) * noise
        packed = pipe._pack_latents(noisy, 1, 16, h, w)
        full_mask = torch.cat([mask, torch.ones(1, packed.shape[1], dtype=torch.bool)], dim=1)
        prediction = transformer(
            hidden_states=packed,
            encoder_hidden_states=embeds,
            timestep=sigma,
            img_ids=img_ids,
            txt_ids=txt_ids,
            attention_mask=full_mask,
            return_dict=False,
        )[0]
        target = pipe._pack_latents(noise - latent, 1, 16, h, w)
        loss = torch.nn.functional.mse_loss(prediction, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - began)
    return times


def our_run(model_dir: Path, data: Path, out: Path, cache: Path, steps: int, pad_to: int | None):
    """Our trainer on the same model; returns (step seconds, phase timestamps)."""
    from chroma_studio.config import config_from_dict
    from chroma_studio.protocol import events as ev
    from chroma_studio.training import batches, text, trainer

    config = config_from_dict(
        {
            "model_flavour": "base",
            "pretrained_model_name_or_path": str(model_dir),
            "dataset_dirs": [str(data)],
            "output_dir": str(out),
            "cache_dir": str(cache),
            "resolution": RESOLUTION,
            "mixed_precision": "no",
            "gradient_checkpointing": False,
            "lora_rank": 16,
            "max_train_steps": steps,
            "checkpointing_steps": 0,
            "validation_steps": 0,
            "validation_prompt": [],
            "seed": 0,
        }
    )
    original = batches.collate_text
    if pad_to:
        batches.collate_text = functools.partial(text.collate_text, pad_to=pad_to)
    seen: list = []
    marks: dict[str, float] = {"start": time.perf_counter()}

    def sink(event):
        seen.append(event)
        if isinstance(event, ev.PhaseChanged) and event.phase == "training" and "training" not in marks:
            marks["training"] = time.perf_counter()
        if isinstance(event, ev.StepLogged):
            marks[f"step{event.step}"] = time.perf_counter()

    trainer.TrainingLoop.sample = lambda self: None  # no sample images in a speed measurement
    try:
        result = trainer.run_training(config, sink)
    finally:
        batches.collate_text = original
    assert result.status == "finished", result.failure
    return [e.seconds for e in seen if isinstance(e, ev.StepLogged)], marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_midsize_pipeline(root / "model")
        data = demo_images(root / "data")
        warm = 2
        log("bare loop...")
        bare = bare_loop(model_dir, data, args.steps + warm)[warm:]
        log("ours with 512-token text...")
        ours_512, _ = our_run(model_dir, data, root / "run512", root / "cache", args.steps + warm, MAX_LENGTH)
        log("ours as shipped (trimmed), two epochs with a fresh cache...")
        ours, marks = our_run(model_dir, data, root / "run", root / "cache2", 20, None)
        log("ours again, everything cached...")
        _, again = our_run(model_dir, data, root / "run-again", root / "cache2", 1, None)

    med = statistics.median
    epoch1 = marks["step10"] - marks["start"]
    epoch2 = marks["step20"] - marks["step10"]
    print(
        json.dumps(
            {
                "model": "mid-size Chroma: width 768, 4 double + 8 single blocks, 256 px, batch 1, fp32, CPU",
                "median_step_seconds": {
                    "bare_512": round(med(bare), 4),
                    "ours_512": round(med(ours_512[warm:]), 4),
                    "ours_trimmed": round(med(ours[warm:]), 4),
                },
                "ratio_ours_512_over_bare": round(med(ours_512[warm:]) / med(bare), 3),
                "ratio_ours_trimmed_over_bare": round(med(ours[warm:]) / med(bare), 3),
                "epoch_seconds": {"epoch1_including_caching": round(epoch1, 2), "epoch2": round(epoch2, 2)},
                "ratio_epoch2_over_epoch1": round(epoch2 / epoch1, 3),
                "startup_seconds_to_first_step": {
                    "fresh_cache": round(marks["training"] - marks["start"], 2),
                    "warm_cache": round(again["training"] - again["start"], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
