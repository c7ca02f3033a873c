"""Writing real-size Chroma checkpoints with random weights, and reading a process's memory.

A real-size rehearsal needs the 8.9B-parameter transformer as a diffusers folder on disk, the
way a user has it (bf16 safetensors shards and their index), without ever holding it in RAM:
``write_random_transformer`` builds the model on the meta device for its names and shapes, then
makes one tensor at a time and writes a shard whenever ``shard_bytes`` have gathered. The T5 is
the real width (4096, so the transformer's context embedder fits) with one small layer; the
tokenizer, VAE and scheduler are the demo model's. torch, diffusers, transformers and
safetensors are imported inside functions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from chroma_studio.training.demo import T5 as DEMO_T5

GiB = 2**30
WEIGHTS_NAME = "diffusion_pytorch_model"


def _init_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def transformer_config(**changes: Any) -> dict[str, Any]:
    """The real transformer config (as shipped), with ``changes`` (e.g. fewer blocks)."""
    from chroma_studio.hardware.architecture import read_model_config

    config = read_model_config("transformer")
    config.update(changes)
    return config


def random_tensor(shape: tuple[int, ...], name: str, dtype: Any, generator: Any) -> Any:
    """Norm scales 1, biases 0, everything else N(0, 0.02): a model that runs without overflow."""
    import torch

    if len(shape) == 1 and "norm" in name:
        return torch.ones(shape, dtype=dtype)
    if len(shape) == 1:
        return torch.zeros(shape, dtype=dtype)
    return torch.empty(shape, dtype=dtype).normal_(0.0, 0.02, generator=generator)


def write_random_transformer(folder: Path, *, shard_bytes: int = GiB, seed: int = 0, **changes: Any) -> int:
    """Write ``folder`` as a diffusers transformer folder (config, shards, index); return its bytes.

    Peak RAM is about one shard: each tensor is made, gathered, written and dropped.
    """
    import torch
    from diffusers import ChromaTransformer2DModel
    from safetensors.torch import save_file

    config = transformer_config(**changes)
    with torch.device("meta"):
        model = ChromaTransformer2DModel(**_init_kwargs(config))
    shapes = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    del model
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in shapes:
        nbytes = 2 * int(torch.Size(shape).numel())
        if groups[-1] and size + nbytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, shape))
        size += nbytes
    weight_map: dict[str, str] = {}
    total = 0
    for index, group in enumerate(groups, start=1):
        shard = f"{WEIGHTS_NAME}-{index:05d}-of-{len(groups):05d}.safetensors"
        tensors = {name: random_tensor(shape, name, torch.bfloat16, generator) for name, shape in group}
        save_file(tensors, str(folder / shard), metadata={"format": "pt"})
        total += sum(t.numel() * 2 for t in tensors.values())
        weight_map.update(dict.fromkeys(tensors, shard))
        del tensors
    index_file = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / f"{WEIGHTS_NAME}.safetensors.index.json").write_text(json.dumps(index_file, indent=1))
    config = {"_class_name": "ChromaTransformer2DModel", **_init_kwargs(config)}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return total


# The real T5-XXL width (its output feeds the transformer's context embedder) with one small layer.
SMALL_T5 = {
    **DEMO_T5,
    "d_model": 4096,
    "d_ff": 1024,
    "d_kv": 64,
    "num_heads": 8,
    "num_layers": 1,
    "num_decoder_layers": 1,
}


def write_rehearsal_pipeline(folder: Path, *, shard_bytes: int = GiB, **changes: Any) -> Path:
    """A diffusers pipeline folder: the random real-size transformer, the small wide T5, and the
    demo tokenizer, VAE and scheduler. ``changes`` alter the transformer config (tests use fewer
    blocks)."""
    import torch
    from transformers import T5Config, T5EncoderModel

    from chroma_studio.training.demo import ensure_demo_model

    demo = ensure_demo_model()
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer", "vae", "scheduler", "model_index.json"):
        source = demo / name
        if source.is_dir():
            shutil.copytree(source, folder / name, dirs_exist_ok=True)
        else:
            shutil.copy(source, folder / name)
    vocab = json.loads((demo / "text_encoder" / "config.json").read_text())["vocab_size"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        t5 = T5EncoderModel(T5Config(vocab_size=vocab, **SMALL_T5)).to(torch.bfloat16)
    t5.save_pretrained(folder / "text_encoder", safe_serialization=True)
    del t5
    write_random_transformer(folder / "transformer", shard_bytes=shard_bytes, **changes)
    return folder


# -- a process's memory ----------------------------------------------------------------------------
def status_bytes(field: str = "RssAnon", pid: int | str = "self") -> int:
    """One memory field of /proc/<pid>/status in bytes (Linux): RssAnon, RssFile, VmRSS, VmHWM."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def mapped_weight_bytes(module: Any, suffix: str = ".safetensors") -> int:
    """Bytes of ``module``'s tensors read in place from memory-mapped ``suffix`` files (Linux).

    A bf16 checkpoint loaded in bf16 is not copied: its unquantized layers keep pointing into
    the file's mapping, so they are page cache rather than anonymous memory, yet RAM all the same.
    """
    import torch

    mappings = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5].endswith(suffix):
                low, high = (int(x, 16) for x in fields[0].split("-"))
                mappings.append((low, high))
    seen: dict[int, int] = {}
    for tensor in [*module.parameters(), *module.buffers()]:
        if type(tensor.data) not in (torch.Tensor, torch.nn.Parameter):  # quantized: made in RAM
            continue
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if any(low <= pointer < high for low, high in mappings):
            seen[pointer] = storage.nbytes()
    return sum(seen.values())
