"""Helpers shared by the test folders (importable: pytest puts tests/ on the path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chroma_studio.base.paths import resources_dir

DEMO_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
# A run of a few seconds on a CPU: the demo model at 128 px, samples at 64 px in 2 steps.
TINY_DEMO = {
    "model_flavour": "demo",
    "resolution": 128,
    "mixed_precision": "no",
    "lora_rank": 4,
    "learning_rate": 1e-3,
    "max_train_steps": 4,
    "checkpointing_steps": 0,
    "validation_steps": 2,
    "validation_num_inference_steps": 2,
    "validation_resolution": 64,
    "seed": 7,
}
QUICKSTART_CONFIG = resources_dir() / "configs" / "quickstart.json"  # the quickstart's example, as written


def engine_processes() -> list:
    """The engine processes (``chroma_studio.training.child``) this test process has started and that still exist."""
    import psutil

    from chroma_studio.protocol.remote import CHILD_MODULE

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if CHILD_MODULE in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def copy_demo_images(folder: Path, names: tuple[str, ...] = DEMO_IMAGES) -> Path:
    """Real captioned demo images (``name.jpg`` + ``name.txt``) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".jpg", ".txt"):
            shutil.copy(resources_dir() / "demo" / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def transformer_inputs(text_tokens: int = 8, image_tokens: int = 16, text_width: int = 32) -> dict:
    """Fixed random inputs for a forward pass of the demo transformer."""
    import torch

    g = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(1, image_tokens, 64, generator=g),
        encoder_hidden_states=torch.randn(1, text_tokens, text_width, generator=g),
        timestep=torch.tensor([0.5]),
        img_ids=torch.zeros(image_tokens, 3),
        txt_ids=torch.zeros(text_tokens, 3),
        return_dict=False,
    )


@contextmanager
def queue_held_by_command_line(queue_path: Path) -> Iterator[subprocess.Popen]:
    """Another process (as ``chroma-studio queue run`` would be) holding the runner lock of the queue
    in ``queue_path`` while the block runs; it is killed at the end, so its lock is left behind stale."""
    from chroma_studio.base.queue_lock import COMMAND_LINE

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from chroma_studio.base.run_queue import RunQueue\n"
            f"RunQueue(sys.argv[1]).lock({COMMAND_LINE!r}).acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            str(queue_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
