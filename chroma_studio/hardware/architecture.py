"""Parameter counts of the real Chroma components, and which layers each LoRA target adapts.

The counts never change for a given architecture, so they are kept here as data and the
memory model reads them without importing torch. ``count_architecture()`` (in the tests' support
package, ``support/calibration/architecture.py``) recomputes them by
building the real configs from ``resources/models`` on the meta device (no weights, no
download); a unit test checks that the data below matches it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Top-level transformer modules that are never quantized and never get a LoRA.
UNQUANTIZED_MODULES = (
    "x_embedder",
    "context_embedder",
    "time_text_embed",
    "distilled_guidance_layer",
    "norm_out",
    "proj_out",
)

# Block-relative module names each ``flux_lora_target`` adapts, per block kind. The engine's
# full-name patterns (training/lora.py) select exactly these; a unit test keeps the two in step.
_ATTN = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0")
_CONTEXT = ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out")
_FF = ("ff.net.0.proj", "ff.net.2")
_FF_CONTEXT = ("ff_context.net.0.proj", "ff_context.net.2")
_SINGLE_ATTN = ("attn.to_q", "attn.to_k", "attn.to_v")
LORA_TARGET_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "all": {"double": _ATTN + _CONTEXT, "single": _SINGLE_ATTN},
    "all+ffs": {"double": _ATTN + _CONTEXT + _FF + _FF_CONTEXT, "single": (*_SINGLE_ATTN, "proj_mlp", "proj_out")},
    "context": {"double": _CONTEXT, "single": ()},
    "context+ffs": {"double": _CONTEXT + _FF_CONTEXT, "single": ()},
    "tiny": {"double": (*_ATTN, "ff.net.0.proj"), "single": _SINGLE_ATTN},
}

# Counted from the configs in resources/models with count_architecture() (tests' support package).
_SQUARE = 3072
_DOUBLE_LINEARS = (
    ("attn.to_q", _SQUARE, _SQUARE),
    ("attn.to_k", _SQUARE, _SQUARE),
    ("attn.to_v", _SQUARE, _SQUARE),
    ("attn.to_out.0", _SQUARE, _SQUARE),
    ("attn.add_q_proj", _SQUARE, _SQUARE),
    ("attn.add_k_proj", _SQUARE, _SQUARE),
    ("attn.add_v_proj", _SQUARE, _SQUARE),
    ("attn.to_add_out", _SQUARE, _SQUARE),
    ("ff.net.0.proj", _SQUARE, 12288),
    ("ff.net.2", 12288, _SQUARE),
    ("ff_context.net.0.proj", _SQUARE, 12288),
    ("ff_context.net.2", 12288, _SQUARE),
)
_SINGLE_LINEARS = (
    ("proj_mlp", _SQUARE, 12288),
    ("proj_out", 15360, _SQUARE),
    ("attn.to_q", _SQUARE, _SQUARE),
    ("attn.to_k", _SQUARE, _SQUARE),
    ("attn.to_v", _SQUARE, _SQUARE),
)
CACHED_COUNTS: dict[str, Any] = {
    "transformer": {
        "total": 8_899_983_424,
        "dim": 3072,
        "heads": 24,
        "head_dim": 128,
        "mlp_dim": 12288,
        "double_blocks": 19,
        "single_blocks": 38,
        "double_linears": [list(x) for x in _DOUBLE_LINEARS],
        "single_linears": [list(x) for x in _SINGLE_LINEARS],
        "double_other": 512,
        "single_other": 256,
        "top_level": {
            "distilled_guidance_layer": 278_285_312,
            "context_embedder": 12_585_984,
            "x_embedder": 199_680,
            "proj_out": 196_672,
        },
    },
    "text_encoder": {"total": 4_762_310_656, "largest_block": 192_948_224, "embedding": 131_596_288},
    "vae": {"total": 83_819_683, "encoder": 34_274_208, "decoder": 49_545_475},
}


@dataclass(frozen=True)
class LinearShape:
    """One Linear layer of a block: its block-relative name and shape (every Chroma Linear has a bias)."""

    name: str
    in_features: int
    out_features: int

    @property
    def weights(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class ChromaArchitecture:
    """What the memory model needs to know about the Chroma components."""

    transformer_params: int
    dim: int
    heads: int
    head_dim: int
    mlp_dim: int
    double_blocks: int
    single_blocks: int
    double_linears: tuple[LinearShape, ...]
    single_linears: tuple[LinearShape, ...]
    double_other_params: int  # per block: norms inside attention
    single_other_params: int
    top_level_params: dict[str, int]  # the unquantized modules outside the blocks
    t5_params: int
    t5_largest_block_params: int
    t5_embedding_params: int
    vae_params: int
    vae_encoder_params: int
    vae_decoder_params: int

    def linears(self, kind: str) -> tuple[LinearShape, ...]:
        return self.double_linears if kind == "double" else self.single_linears

    def blocks(self, kind: str) -> int:
        return self.double_blocks if kind == "double" else self.single_blocks

    @property
    def quantizable_weights(self) -> int:
        """Weights of every Linear inside the blocks: what int8/int4/NF4 store in low precision."""
        return sum(self.blocks(k) * sum(lin.weights for lin in self.linears(k)) for k in ("double", "single"))

    @property
    def block_bias_and_norm_params(self) -> int:
        """Biases and norm weights inside the blocks: they stay in the compute dtype when quantized."""
        return sum(
            self.blocks(k) * (sum(lin.out_features for lin in self.linears(k)) + self.other_params(k))
            for k in ("double", "single")
        )

    def other_params(self, kind: str) -> int:
        return self.double_other_params if kind == "double" else self.single_other_params

    @property
    def unquantized_params(self) -> int:
        return sum(self.top_level_params.values())

    def block_params(self, kind: str) -> int:
        linears = self.linears(kind)
        return sum(lin.weights + lin.out_features for lin in linears) + self.other_params(kind)

    def lora_modules(self, target: str, kind: str) -> tuple[LinearShape, ...]:
        """The Linear layers of one block of ``kind`` that ``target`` adapts."""
        names = LORA_TARGET_MODULES[target][kind]
        return tuple(lin for lin in self.linears(kind) if lin.name in names)

    def lora_params(self, target: str, rank: int) -> int:
        """Trainable LoRA parameters: rank * (in + out) per adapted Linear (A is r x in, B is out x r)."""
        return sum(
            self.blocks(kind)
            * sum(rank * (lin.in_features + lin.out_features) for lin in self.lora_modules(target, kind))
            for kind in ("double", "single")
        )


def _from_counts(counts: dict[str, Any]) -> ChromaArchitecture:
    tr, te, vae = counts["transformer"], counts["text_encoder"], counts["vae"]
    return ChromaArchitecture(
        transformer_params=tr["total"],
        dim=tr["dim"],
        heads=tr["heads"],
        head_dim=tr["head_dim"],
        mlp_dim=tr["mlp_dim"],
        double_blocks=tr["double_blocks"],
        single_blocks=tr["single_blocks"],
        double_linears=tuple(LinearShape(*x) for x in tr["double_linears"]),
        single_linears=tuple(LinearShape(*x) for x in tr["single_linears"]),
        double_other_params=tr["double_other"],
        single_other_params=tr["single_other"],
        top_level_params=dict(tr["top_level"]),
        t5_params=te["total"],
        t5_largest_block_params=te["largest_block"],
        t5_embedding_params=te["embedding"],
        vae_params=vae["total"],
        vae_encoder_params=vae["encoder"],
        vae_decoder_params=vae["decoder"],
    )


@lru_cache(maxsize=1)
def chroma_architecture() -> ChromaArchitecture:
    """The real Chroma 1 architecture, from the cached counts (no torch needed)."""
    return _from_counts(CACHED_COUNTS)


# -- recomputing the counts from the real configs ---------------------------------------------------
def models_dir() -> Path:
    from chroma_studio.base.paths import resources_dir

    return resources_dir() / "models"


def read_model_config(component: str, folder: Path | None = None) -> dict[str, Any]:
    """A shipped diffusers/transformers config (``transformer``, ``text_encoder`` or ``vae``)."""
    path = (folder or models_dir()) / component / "config.json"
    return json.loads(path.read_text(encoding="utf-8"))
