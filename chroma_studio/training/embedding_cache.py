"""On-disk cache of text embeddings and VAE latents.

Entries are keyed by a hash of their content (caption text or image bytes), the exact model
files that produced them, and the settings that matter (dtype, token limit, bucket size), so a
later epoch or a later run reuses them and any change makes a new entry instead of a wrong hit.
Every entry is one small safetensors file, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from chroma_studio.base.atomic import write_bytes_atomic

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".json", ".model", ".sft", ".pt"}


def fingerprint_files(location: str | Path, subfolder: str = "") -> str:
    """A hash of a model folder's (or file's) names, sizes and modification times."""
    root = Path(location) / subfolder if subfolder else Path(location)
    digest = hashlib.sha256(str(root.resolve()).encode())
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in _WEIGHT_SUFFIXES)
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True).encode()).hexdigest()


class EmbeddingCache:
    """Text embeddings (visible rows only) and latents, stored under ``root``."""

    def __init__(self, root: str | Path, text_model: str, vae_model: str, dtype: torch.dtype, max_length: int):
        self.root = Path(root)
        self.text_model = text_model
        self.vae_model = vae_model
        self.dtype = str(dtype).removeprefix("torch.")
        self.max_length = max_length

    # -- keys -----------------------------------------------------------------------------------
    def text_key(self, caption: str) -> str:
        return _key(kind="text", model=self.text_model, dtype=self.dtype, max_length=self.max_length, caption=caption)

    def latent_key(self, image_sha256: str, size: tuple[int, int]) -> str:
        return _key(kind="latent", model=self.vae_model, dtype=self.dtype, image=image_sha256, size=list(size))

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.safetensors"

    # -- entries --------------------------------------------------------------------------------
    def has(self, kind: str, key: str) -> bool:
        return self._path(kind, key).is_file()

    def get(self, kind: str, key: str) -> torch.Tensor:
        path = self._path(kind, key)
        try:
            return load_file(path)["value"]
        except Exception as exc:  # a damaged entry is re-made, never trusted
            path.unlink(missing_ok=True)
            raise KeyError(f"cache entry {path.name} is unreadable ({exc}); it was removed") from exc

    def put(self, kind: str, key: str, value: torch.Tensor) -> None:
        write_bytes_atomic(self._path(kind, key), save({"value": value.detach().to("cpu").contiguous()}))
