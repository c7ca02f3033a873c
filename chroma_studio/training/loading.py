"""Where the Chroma components come from, and loading them.

Sources: the flavour's Hub repository, any Hub id, a local diffusers folder (a whole pipeline
or a transformer alone), a single transformer ``.safetensors`` file as ComfyUI keeps it, and the
built-in demo model. Single files need no download for their configs: the real transformer,
VAE and T5 configs ship in ``resources/models``. Components a single file lacks (tokenizer,
T5, VAE, scheduler) come from paths the user gives, else from the flavour's repository.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chroma_studio.base.paths import resources_dir
from chroma_studio.config import FLAVOUR_REPOS, TrainingConfig
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import Sink, null_sink

logger = logging.getLogger(__name__)

COMPONENTS = ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelSourceError(ValueError):
    """A model path or id that cannot be used; the message says what to give instead."""


@dataclass(frozen=True)
class ComponentSource:
    """One component: a folder (with ``subfolder``), a Hub repo (with ``subfolder``) or a single file."""

    kind: str  # "folder" | "hub" | "file"
    location: str
    subfolder: str = ""

    def describe(self) -> str:
        where = f"{self.location}/{self.subfolder}" if self.subfolder else self.location
        return {"hub": f"hub:{where}", "file": f"file:{where}"}.get(self.kind, where)


@dataclass(frozen=True)
class ModelSource:
    """Where each component comes from. Resolving it reads no weights and downloads nothing."""

    label: str
    transformer: ComponentSource
    text_encoder: ComponentSource
    tokenizer: ComponentSource
    vae: ComponentSource
    scheduler: ComponentSource
    is_demo: bool = False

    def describe(self) -> dict[str, str]:
        return {name: getattr(self, name).describe() for name in COMPONENTS}


def _component_from_path(path: str, component: str) -> ComponentSource:
    p = Path(path).expanduser()
    if p.is_file():
        return ComponentSource("file", str(p))
    if p.is_dir():
        if (p / component / "config.json").is_file() or (p / component / "tokenizer_config.json").is_file():
            return ComponentSource("folder", str(p), component)
        return ComponentSource("folder", str(p))
    if _HUB_ID.match(path) and not os.path.exists(path):
        return ComponentSource("hub", path, component)
    raise ModelSourceError(
        f"{component}: '{path}' does not exist. Give a Hub id (owner/name), a folder, or a .safetensors file."
    )


def resolve_source(config: TrainingConfig) -> ModelSource:
    """Decide where every component comes from, without loading or downloading anything."""
    from chroma_studio.training.demo import demo_model_dir

    model = config.model
    if model.model_flavour == "demo":
        folder = str(demo_model_dir())
        parts = {name: ComponentSource("folder", folder, name) for name in COMPONENTS}
        return ModelSource(label="demo (tiny random Chroma; samples are noise)", is_demo=True, **parts)

    base_repo = FLAVOUR_REPOS[model.model_flavour]
    path = model.pretrained_model_name_or_path
    if not path:
        base = ComponentSource("hub", base_repo)
    else:
        expanded = Path(path).expanduser()
        if expanded.is_file():
            if expanded.suffix.lower() not in (".safetensors", ".sft"):
                raise ModelSourceError(
                    f"pretrained_model_name_or_path: '{path}' is not a .safetensors file. Give a Chroma transformer "
                    "in .safetensors format, a diffusers folder, or a Hub id."
                )
            base = ComponentSource("file", str(expanded))
        elif expanded.is_dir():
            base = ComponentSource("folder", str(expanded))
        elif _HUB_ID.match(path):
            base = ComponentSource("hub", path)
        else:
            raise ModelSourceError(
                f"pretrained_model_name_or_path: '{path}' does not exist. Give a Hub id such as {base_repo}, a "
                "local diffusers folder, or a Chroma transformer .safetensors file (as ComfyUI keeps it)."
            )

    def part(name: str) -> ComponentSource:
        if base.kind == "hub":
            return ComponentSource("hub", base.location, name)
        if base.kind == "folder":
            folder = Path(base.location)
            if (folder / name).is_dir():
                return ComponentSource("folder", base.location, name)
            if name == "transformer" and (folder / "config.json").is_file():
                return ComponentSource("folder", base.location)  # a transformer folder on its own
        if name == "transformer" and base.kind == "file":
            return base
        return ComponentSource("hub", base_repo, name)  # what a single file or a bare folder lacks

    overrides = {
        "text_encoder": model.pretrained_t5_model_name_or_path,
        "vae": model.pretrained_vae_model_name_or_path,
        "tokenizer": model.t5_tokenizer_name_or_path,
    }
    parts = {
        name: _component_from_path(overrides[name], name) if overrides.get(name) else part(name) for name in COMPONENTS
    }
    label = path or base_repo
    return ModelSource(label=label, **parts)


# -- loading ------------------------------------------------------------------------------------
class Loader:
    """Loads components of one ModelSource, downloading what it needs from the Hub once."""

    def __init__(self, source: ModelSource, sink: Sink = null_sink, control: TrainingControl | None = None):
        self.source = source
        self.sink = sink
        self.control = control
        self._snapshots: dict[str, str] = {}

    def _local(self, part: ComponentSource) -> tuple[str, str]:
        """(folder, subfolder) on disk for a folder or Hub component."""
        if part.kind == "folder":
            return part.location, part.subfolder
        if part.location not in self._snapshots:
            from chroma_studio.training.hub import download

            patterns = [f"{name}/*" for name in COMPONENTS if getattr(self.source, name).location == part.location]
            patterns.append("model_index.json")
            self._snapshots[part.location] = download(part.location, patterns, self.sink, self.control)
        return self._snapshots[part.location], part.subfolder

    def fingerprint(self, component: str) -> str:
        """A hash of the files a component is loaded from (names, sizes, modification times), for
        cache keys: a different model, or the same one updated, gives another fingerprint."""
        from chroma_studio.training.embedding_cache import fingerprint_files

        part = getattr(self.source, component)
        if part.kind == "file":
            return fingerprint_files(part.location)
        return fingerprint_files(*self._local(part))

    def prepare(self) -> None:
        """Build the demo model if needed and download every Hub component up front."""
        if self.source.is_demo:
            from chroma_studio.training.demo import ensure_demo_model

            ensure_demo_model()
        for name in COMPONENTS:
            part = getattr(self.source, name)
            if part.kind == "hub":
                self._local(part)

    def tokenizer(self):
        from transformers import AutoTokenizer

        part = self.source.tokenizer
        if part.kind == "file":
            raise ModelSourceError(
                f"t5_tokenizer_name_or_path: '{part.location}' is a file; give the tokenizer folder."
            )
        folder, sub = self._local(part)
        return AutoTokenizer.from_pretrained(folder, subfolder=sub or "")

    def text_encoder(self, dtype: torch.dtype) -> torch.nn.Module:
        from transformers import T5EncoderModel

        part = self.source.text_encoder
        if part.kind == "file":
            return load_t5_single_file(part.location, dtype)
        folder, sub = self._local(part)
        model = T5EncoderModel.from_pretrained(folder, subfolder=sub or "", dtype=dtype)
        return model.eval().requires_grad_(False)

    def vae(self, dtype: torch.dtype) -> torch.nn.Module:
        from diffusers import AutoencoderKL

        return self._diffusers_model(AutoencoderKL, "vae", dtype).eval().requires_grad_(False)

    def scheduler(self):
        from diffusers import FlowMatchEulerDiscreteScheduler

        part = self.source.scheduler
        folder, sub = self._local(part)
        return FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder=sub or None)

    def transformer(self, dtype: torch.dtype, quantization_config=None) -> torch.nn.Module:
        from diffusers import ChromaTransformer2DModel

        extra = {"quantization_config": quantization_config} if quantization_config is not None else {}
        return self._diffusers_model(ChromaTransformer2DModel, "transformer", dtype, **extra).requires_grad_(False)

    def _diffusers_model(self, model_class: Any, component: str, dtype: torch.dtype, **extra: Any) -> Any:
        """A diffusers model from one .safetensors file (with the shipped config) or from a folder."""
        part = getattr(self.source, component)
        if part.kind == "file":
            return model_class.from_single_file(
                part.location,
                config=str(resources_dir() / "models"),
                subfolder=component,
                local_files_only=True,
                torch_dtype=dtype,
                **extra,
            )
        folder, sub = self._local(part)
        return model_class.from_pretrained(folder, subfolder=sub or None, torch_dtype=dtype, **extra)


def load_t5_single_file(path: str, dtype: torch.dtype, config_dir: str | None = None) -> torch.nn.Module:
    """A T5-XXL encoder from one .safetensors file with transformers' key names (ComfyUI's t5xxl_fp16).

    ``encoder.embed_tokens.weight`` is tied to ``shared.weight``; files carry either. Scaled-fp8
    files (``t5xxl_fp8_e4m3fn_scaled``) are refused: their weights need per-layer scales this
    loader does not apply.
    """
    from accelerate import init_empty_weights
    from safetensors.torch import load_file
    from transformers import T5Config, T5EncoderModel

    state = load_file(path)
    if any("scale_weight" in key or key.endswith("scaled_fp8") for key in state):
        raise ModelSourceError(
            f"{path} is a scaled-fp8 T5; use t5xxl_fp16.safetensors (or leave the T5 setting empty to download it)."
        )
    state = {key.removeprefix("text_encoders.t5xxl.transformer."): value for key, value in state.items()}
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    state.setdefault("encoder.embed_tokens.weight", state.get("shared.weight"))
    config = T5Config.from_pretrained(config_dir or str(resources_dir() / "models" / "text_encoder"))
    with init_empty_weights():
        model = T5EncoderModel(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise ModelSourceError(
            f"{path} is not a T5 encoder with the expected layout: {len(missing)} weights missing, e.g. {missing[0]}."
        )
    model.load_state_dict({k: v.to(dtype) for k, v in state.items() if k in expected}, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def pick_device() -> torch.device:
    """CUDA/ROCm, then Apple MPS, then Intel XPU, then the CPU. ``CHROMA_STUDIO_DEVICE`` overrides."""
    forced = os.environ.get("CHROMA_STUDIO_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return torch.device("xpu")
    return torch.device("cpu")


def training_dtype(mixed_precision: str) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision, torch.float32)
