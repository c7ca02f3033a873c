"""A mid-size Chroma for benchmarks: the real block structure at reduced width and depth.

Width 768 (6 heads of 128, as the real model's head size), 4 double and 8 single blocks, the
approximator at 1280 x 5. The T5 encoder, tokenizer, VAE and scheduler are the demo model's, so
nothing is downloaded; the text the transformer sees still has the real 512-token layout.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

MIDSIZE = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 4,
    "num_single_layers": 8,
    "attention_head_dim": 128,
    "num_attention_heads": 6,
    "axes_dims_rope": (16, 56, 56),
    "approximator_num_channels": 64,
    "approximator_hidden_dim": 1280,
    "approximator_layers": 5,
}


def build_midsize_pipeline(folder: Path) -> Path:
    """Write a diffusers pipeline folder with the mid-size transformer; return it."""
    import torch
    from diffusers import ChromaTransformer2DModel

    from chroma_studio.training.demo import T5, ensure_demo_model

    if (folder / "model_index.json").is_file():
        return folder
    shutil.copytree(ensure_demo_model(), folder, dirs_exist_ok=True)
    torch.manual_seed(0)
    transformer = ChromaTransformer2DModel(**MIDSIZE, joint_attention_dim=T5["d_model"])
    shutil.rmtree(folder / "transformer")
    transformer.save_pretrained(folder / "transformer")
    return folder


def demo_images(folder: Path) -> Path:
    """The ten captioned demo images, copied into ``folder``."""
    from chroma_studio.base.paths import resources_dir

    folder.mkdir(parents=True, exist_ok=True)
    for image in sorted((resources_dir() / "demo").glob("*.jpg")):
        shutil.copy(image, folder / image.name)
        shutil.copy(image.with_suffix(".txt"), folder / f"{image.stem}.txt")
    return folder


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)
