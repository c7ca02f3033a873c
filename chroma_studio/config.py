"""The training configuration: one set of nested dataclasses, read from and written to flat JSON.

Every setting is declared once, as a dataclass field whose metadata carries what the GUI form and
the CLI need (label, help text, choices, range, aliases). On disk the keys are flat and follow
SimpleTuner's names, so a SimpleTuner user's ``config.json`` (including the ``--key`` spelling)
loads as it is; settings SimpleTuner has and this trainer does not use are reported, not fatal.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chroma_studio.atomic import write_text_atomic

CONFIG_VERSION = 1

FLAVOUR_REPOS = {
    "base": "lodestones/Chroma1-Base",
    "hd": "lodestones/Chroma1-HD",
    "flash": "lodestones/Chroma1-Flash",
}
FLAVOURS = (*FLAVOUR_REPOS, "demo")
BASE_PRECISIONS = ("no_change", "int8-quanto", "int4-quanto", "nf4-bnb")
MIXED_PRECISIONS = ("bf16", "fp16", "no")
LORA_TARGETS = ("all", "all+ffs", "context", "context+ffs", "tiny")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "linear")
T5_PADDINGS = ("unmodified", "zero")
DEFAULT_MAX_TRAIN_STEPS = 1000

# SimpleTuner settings that a user's config may carry but that have no effect here. They are
# reported as warnings so a SimpleTuner config loads; anything else unknown is an error.
IGNORED_SIMPLETUNER_KEYS = frozenset(
    {
        "report_to",
        "tracker_project_name",
        "tracker_run_name",
        "push_to_hub",
        "hub_model_id",
        "data_backend_config",
        "optimizer",
        "lora_type",
        "model_precision",
        "base_model_default_dtype",
        "aspect_bucket_rounding",
        "minimum_image_size",
        "disable_benchmark",
        "disable_bucket_pruning",
        "flux_guidance_mode",
        "flux_guidance_value",
        "validation_torch_compile",
        "allow_tf32",
        "vae_batch_size",
        "webhook_config",
        "compress_disk_cache",
        "use_ema",
        "attention_mechanism",
        "max_workers",
        "read_batch_size",
        "write_batch_size",
        "metadata_update_interval",
        "resolution_type",
        "validation_num_video_frames",
        "override_dataset_config",
    }
)


def setting(
    default: Any,
    label: str,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    aliases: tuple[str, ...] = (),
    basic: bool = False,
) -> Any:
    """A config field with the metadata the GUI form and the validator read.

    ``basic`` marks the few settings shown outside the GUI's Advanced drawer.
    """
    metadata = {
        "label": label,
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "aliases": aliases,
        "basic": basic,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelConfig:
    model_type: str = setting(
        "lora", "Model type", "What is trained. Only LoRA adapters are supported.", choices=("lora",)
    )
    model_family: str = setting("chroma", "Model family", "The base model family.", choices=("chroma",))
    model_flavour: str = setting(
        "base",
        "Chroma flavour",
        "base: balanced quality (default). hd: higher fidelity, heavier. flash: fast but unstable, "
        "not for production. demo: a tiny random model that trains offline in a minute; its samples "
        "are noise, it exists to try the app.",
        choices=FLAVOURS,
        basic=True,
    )
    pretrained_model_name_or_path: str | None = setting(
        None,
        "Base model",
        "Leave empty to use the flavour's Hugging Face repository. Otherwise a hub id, a local "
        "diffusers folder, or a single transformer .safetensors file as ComfyUI keeps it.",
    )
    pretrained_t5_model_name_or_path: str | None = setting(
        None,
        "T5 text encoder",
        "Optional: a t5xxl .safetensors file or a folder. Empty: taken from the flavour's repository.",
    )
    pretrained_vae_model_name_or_path: str | None = setting(
        None,
        "VAE",
        "Optional: the Flux ae.safetensors file or a folder. Empty: taken from the flavour's repository.",
    )
    t5_tokenizer_name_or_path: str | None = setting(
        None,
        "T5 tokenizer",
        "Optional: a tokenizer folder (ComfyUI carries one in comfy/text_encoders/t5_tokenizer). "
        "Empty: taken from the flavour's repository.",
    )
    base_model_precision: str = setting(
        "no_change",
        "Base model quantization",
        "no_change keeps the transformer in the training dtype. int8-quanto and int4-quanto "
        "quantize its weights with optimum-quanto; nf4-bnb uses bitsandbytes and needs CUDA.",
        choices=BASE_PRECISIONS,
    )
    mixed_precision: str = setting(
        "bf16",
        "Mixed precision",
        "The dtype of the frozen base weights and activations. LoRA weights always train in fp32.",
        choices=MIXED_PRECISIONS,
    )
    gradient_checkpointing: bool = setting(
        True, "Gradient checkpointing", "Recompute activations in the backward pass: much less memory, ~30% slower."
    )
    offload_during_startup: bool = setting(
        False,
        "Offload during startup",
        "Keep models on the CPU while loading and caching, moving each to the GPU only while it "
        "is used. Helps when the GPU runs out of memory at startup.",
    )
    flux_fast_schedule: bool = setting(
        False, "Fast schedule", "A Flux-schnell option. Chroma has its own sampling: this must stay off."
    )


@dataclass
class LoraConfig:
    lora_rank: int = setting(
        16,
        "LoRA rank",
        "Capacity of the LoRA. 16 suits a character or style.",
        minimum=1,
        maximum=256,
        aliases=("network_rank",),
        basic=True,
    )
    lora_alpha: float | None = setting(
        None,
        "LoRA alpha",
        "Scales the LoRA update by alpha/rank. Empty means alpha = rank.",
        minimum=0.0,
        maximum=1024.0,
        aliases=("network_alpha",),
    )
    flux_lora_target: str = setting(
        "all",
        "LoRA targets",
        "Which layers get a LoRA. all: every attention projection. all+ffs: also the feed-forward "
        "layers. context: the text-side projections only. tiny: q, k, v, out and the first "
        "feed-forward layer.",
        choices=LORA_TARGETS,
    )


@dataclass
class TextConfig:
    t5_padding: str = setting(
        "unmodified",
        "T5 padding",
        "zero multiplies the text embeddings by the attention mask. With the mask applied it changes "
        "nothing; it guards against a lost mask.",
        choices=T5_PADDINGS,
        aliases=("flux_t5_padding",),
    )
    tokenizer_max_length: int = setting(
        512, "Max caption tokens", "Longer captions are cut at this many T5 tokens.", minimum=8, maximum=512
    )
    caption_dropout_probability: float = setting(
        0.0,
        "Caption dropout",
        "Fraction of steps that train on an empty caption, which keeps the LoRA working without its prompt.",
        minimum=0.0,
        maximum=1.0,
    )


@dataclass
class DataConfig:
    dataset_dirs: list[str] = setting(
        [], "Image folders", "Folders of images; each image's caption is a .txt file with the same name.", basic=True
    )
    trigger_word: str | None = setting(
        None,
        "Trigger word",
        "A word your captions use for the new concept; stored in the LoRA's metadata.",
        basic=True,
    )
    resolution: int = setting(
        512,
        "Resolution",
        "Training side length in pixels (images are bucketed by aspect ratio to about this many "
        "pixels). Higher is sharper and needs more memory.",
        minimum=128,
        maximum=2048,
        basic=True,
    )


@dataclass
class OptimConfig:
    learning_rate: float = setting(
        1e-4, "Learning rate", "AdamW learning rate.", minimum=1e-7, maximum=1e-2, basic=True
    )
    lr_scheduler: str = setting(
        "constant", "LR schedule", "How the learning rate changes after warmup.", choices=LR_SCHEDULERS
    )
    lr_warmup_steps: int = setting(0, "Warmup steps", "Steps over which the learning rate rises from 0.", minimum=0)
    adam_beta1: float = setting(0.9, "Adam beta1", "AdamW first-moment decay.", minimum=0.0, maximum=0.9999)
    adam_beta2: float = setting(0.999, "Adam beta2", "AdamW second-moment decay.", minimum=0.0, maximum=0.99999)
    adam_epsilon: float = setting(1e-8, "Adam epsilon", "AdamW numerical floor.", minimum=0.0, maximum=1e-3)
    adam_weight_decay: float = setting(1e-2, "Weight decay", "AdamW decoupled weight decay.", minimum=0.0, maximum=1.0)
    max_grad_norm: float = setting(
        1.0, "Gradient clip", "Clip the gradient norm to this; 0 turns clipping off.", minimum=0.0
    )
    train_batch_size: int = setting(1, "Batch size", "Images per step.", minimum=1, maximum=64)
    gradient_accumulation_steps: int = setting(
        1, "Gradient accumulation", "Micro-batches summed into one optimizer step.", minimum=1, maximum=128
    )
    max_train_steps: int | None = setting(
        None,
        "Training steps",
        f"Optimizer steps to train. Empty: use the epochs below; if both are empty, {DEFAULT_MAX_TRAIN_STEPS}.",
        minimum=1,
        basic=True,
    )
    num_train_epochs: int | None = setting(
        None, "Epochs", "Passes over the dataset; used only when training steps is empty.", minimum=1
    )
    seed: int = setting(
        42, "Seed", "Seeds noise, timesteps and data order: the same seed gives the same run.", minimum=0
    )
    flow_use_uniform_schedule: bool = setting(
        False, "Uniform timesteps", "Sample sigma uniformly instead of logit-normal."
    )
    flow_sigmoid_scale: float = setting(
        1.0, "Logit-normal scale", "Spread of the logit-normal sigma distribution.", minimum=0.01, maximum=10.0
    )
    flow_schedule_shift: float = setting(
        0.0,
        "Schedule shift",
        "Shifts sampled sigmas toward noise (Flux-style). Chroma needs none: its tail remap already "
        "visits the extremes. 0 turns it off.",
        minimum=0.0,
        maximum=20.0,
    )


@dataclass
class RunConfig:
    output_dir: str = setting(
        "output/chroma-lora", "Output folder", "Where the run writes its LoRA, samples and checkpoints."
    )
    checkpointing_steps: int = setting(
        250, "Checkpoint every", "Steps between resumable checkpoints; 0 saves only at the end.", minimum=0
    )
    checkpoints_total_limit: int | None = setting(
        3, "Checkpoints kept", "Older checkpoints beyond this many are deleted. Empty keeps all.", minimum=1
    )
    cache_dir: str | None = setting(
        None, "Cache folder", "Where text embeddings and latents are cached. Empty: the app's cache folder."
    )
    resume_from_checkpoint: str | None = setting(
        None, "Resume from", "latest, or a checkpoint folder, to continue a stopped run."
    )


@dataclass
class ValidationConfig:
    validation_steps: int = setting(
        100, "Sample every", "Steps between sample images; 0 renders only at the start and end.", minimum=0
    )
    validation_prompt: list[str] = setting(
        [], "Sample prompts", "Prompts rendered during training. Empty: the first caption of the dataset.", basic=True
    )
    validation_negative_prompt: str = setting("", "Negative prompt", "Used when guidance is above 1.")
    validation_guidance: float = setting(
        1.0,
        "Sample guidance",
        "1.0 renders in one pass; 2-3 uses classifier-free guidance with the negative prompt.",
        minimum=1.0,
        maximum=20.0,
        aliases=("validation_guidance_real",),
    )
    validation_num_inference_steps: int = setting(
        20, "Sample steps", "Denoising steps per sample: 20 for previews, 28-32 for quality.", minimum=1, maximum=150
    )
    validation_resolution: int | None = setting(
        None, "Sample resolution", "Side length of samples. Empty: the training resolution.", minimum=64, maximum=2048
    )
    validation_seed: int = setting(42, "Sample seed", "Fixed seed so samples from different steps compare.", minimum=0)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "lora": LoraConfig,
    "text": TextConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "validation": ValidationConfig,
}


@dataclass
class TrainingConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    text: TextConfig = field(default_factory=TextConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    # -- derived values ---------------------------------------------------------------------
    @property
    def model_source(self) -> str:
        """The hub id or path the transformer comes from."""
        if self.model.pretrained_model_name_or_path:
            return self.model.pretrained_model_name_or_path
        return FLAVOUR_REPOS.get(self.model.model_flavour, "demo")

    @property
    def effective_lora_alpha(self) -> float:
        return float(self.lora.lora_alpha if self.lora.lora_alpha is not None else self.lora.lora_rank)

    @property
    def sample_resolution(self) -> int:
        return self.validation.validation_resolution or self.data.resolution

    # -- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat, SimpleTuner-style keys, in section order."""
        out: dict[str, Any] = {"config_version": CONFIG_VERSION}
        for section in SECTIONS:
            out.update(dataclasses.asdict(getattr(self, section)))
        return out

    def replace(self, **values: Any) -> TrainingConfig:
        """A copy with flat keys changed (aliases allowed); raises ConfigError on bad keys."""
        data = self.to_dict()
        data.update({canonical_key(key): value for key, value in values.items()})
        return config_from_dict(data)

    def validate(self) -> list[Problem]:
        return validate(self)


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` lists every error found, one per key."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s){where}:\n{lines}")


@dataclass(frozen=True)
class FieldInfo:
    """Where a flat key lives and what it accepts."""

    section: str
    name: str
    type: Any
    default: Any
    label: str
    help: str
    choices: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None
    aliases: tuple[str, ...]
    basic: bool


def _collect_fields() -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            fields[f.name] = FieldInfo(section=section, name=f.name, type=hints[f.name], default=default, **f.metadata)
    return fields


FIELDS: dict[str, FieldInfo] = _collect_fields()
ALIASES: dict[str, str] = {alias: name for name, info in FIELDS.items() for alias in info.aliases}


def nearest(word: str, candidates: typing.Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (ignoring case), if any is close."""
    by_lower = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.5)
    return by_lower[matches[0]] if matches else None


def _did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    match = nearest(str(word), candidates)
    return f" Did you mean '{match}'?" if match else ""


def _optional_inner(tp: Any) -> tuple[Any, bool]:
    """(inner type, allows None) for ``X | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _coerce(info: FieldInfo, value: Any) -> Any:
    """Turn a JSON value into the field's type, or raise ValueError with a message for the user."""
    tp, nullable = _optional_inner(info.type)
    if value is None or (nullable and value == ""):
        if nullable:
            return None
        raise ValueError("must not be empty")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise ValueError(f"must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number, not {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise ValueError(f"must be a whole number, not {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"must be a number, not {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"must be text, not {value!r}")
    if typing.get_origin(tp) is list:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError("must be text or a list of texts")
    raise TypeError(f"unsupported config type {tp!r}")  # a bug in this module, not user input


def canonical_key(key: str) -> str:
    """Strip SimpleTuner's ``--`` spelling and resolve aliases."""
    key = key.strip()
    if key.startswith("--"):
        key = key[2:].replace("-", "_")
    return ALIASES.get(key, key)


def config_from_dict(data: dict[str, Any], source: str | None = None) -> TrainingConfig:
    """Build a config from flat keys. Raises ConfigError listing every unknown key and bad value."""
    config, problems = parse_config(data)
    if problems:
        raise ConfigError(problems, source)
    return config


def parse_config(data: dict[str, Any]) -> tuple[TrainingConfig, list[Problem]]:
    """A config from the keys that parse (defaults elsewhere), and a problem per key that does not."""
    if not isinstance(data, dict):
        return TrainingConfig(), [Problem("(file)", "must be a JSON object of settings")]
    problems: list[Problem] = []
    version = data.get("config_version", CONFIG_VERSION)
    if not isinstance(version, int) or version > CONFIG_VERSION:
        problems.append(
            Problem("config_version", f"{version!r} is newer than this Chroma Studio understands; update the app.")
        )
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    seen: dict[str, str] = {}
    for raw_key, value in data.items():
        if raw_key == "config_version":
            continue
        key = canonical_key(raw_key)
        if key in IGNORED_SIMPLETUNER_KEYS:
            continue  # reported by validate() through unused_keys()
        info = FIELDS.get(key)
        if info is None:
            hint = _did_you_mean(key, [*FIELDS, *ALIASES]) or " Remove it."
            problems.append(Problem(raw_key, f"unknown setting.{hint}"))
            continue
        if key in seen:
            problems.append(Problem(raw_key, f"given twice (also as '{seen[key]}'); keep one."))
            continue
        seen[key] = raw_key
        try:
            values[info.section][key] = _coerce(info, value)
        except ValueError as exc:
            problems.append(Problem(raw_key, str(exc)))
    return TrainingConfig(**{section: cls(**values[section]) for section, cls in SECTIONS.items()}), problems


def unused_keys(data: dict[str, Any]) -> list[Problem]:
    """Warnings for SimpleTuner settings present in ``data`` that this trainer does not use."""
    return [
        Problem(key, "a SimpleTuner setting Chroma Studio does not use; it is ignored.", "warning")
        for key in data
        if canonical_key(key) in IGNORED_SIMPLETUNER_KEYS
    ]


def validate(config: TrainingConfig) -> list[Problem]:
    """Every problem with the values: choices, ranges and combinations. Errors and warnings."""
    problems: list[Problem] = []
    for key, info in FIELDS.items():
        value = getattr(getattr(config, info.section), key)
        if value is None:
            continue
        if info.choices and value not in info.choices:
            problems.append(
                Problem(key, f"'{value}' is not one of {', '.join(info.choices)}.{_did_you_mean(value, info.choices)}")
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if info.minimum is not None and value < info.minimum:
                problems.append(Problem(key, f"{value} is below the minimum {info.minimum:g}."))
            if info.maximum is not None and value > info.maximum:
                problems.append(Problem(key, f"{value} is above the maximum {info.maximum:g}."))
    problems.extend(_cross_checks(config))
    return problems


def _cross_checks(config: TrainingConfig) -> list[Problem]:
    problems: list[Problem] = []
    if config.model.flux_fast_schedule:
        problems.append(
            Problem(
                "flux_fast_schedule", "must stay off for Chroma, which has its own timestep sampling; set it to false."
            )
        )
    if config.data.resolution % 64:
        suggestion = max(128, round(config.data.resolution / 64) * 64)
        problems.append(Problem("resolution", f"{config.data.resolution} is not a multiple of 64; use {suggestion}."))
    vres = config.validation.validation_resolution
    if vres is not None and vres % 16:
        problems.append(
            Problem("validation_resolution", f"{vres} is not a multiple of 16; use {round(vres / 16) * 16}.")
        )
    if not config.data.dataset_dirs:
        problems.append(
            Problem(
                "dataset_dirs", "no image folder given; add at least one folder of images before training.", "warning"
            )
        )
    if config.model.base_model_precision == "nf4-bnb" and config.model.mixed_precision == "no":
        problems.append(Problem("mixed_precision", "nf4-bnb needs bf16 or fp16 compute; choose bf16.", "warning"))
    if config.model.model_flavour == "demo" and config.model.pretrained_model_name_or_path:
        problems.append(
            Problem(
                "pretrained_model_name_or_path", "is ignored with the demo flavour; clear one of the two.", "warning"
            )
        )
    if config.optim.max_train_steps is not None and config.optim.num_train_epochs is not None:
        problems.append(Problem("num_train_epochs", "is ignored because max_train_steps is set.", "warning"))
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# -- files --------------------------------------------------------------------------------------
def _strip_json_comments(text: str) -> str:
    """Remove // and /* */ comments outside strings (the quickstart writes its example as JSONC)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))  # trailing commas, also common in JSONC


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem("(file)", "does not exist; check the path.")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("(file)", f"cannot be read: {exc}")], str(path)) from None
    try:
        return json.loads(_strip_json_comments(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [Problem("(file)", f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")], str(path)
        ) from None


def load_config(path: str | os.PathLike) -> tuple[TrainingConfig, list[Problem]]:
    """Read and check a config file. Raises ConfigError on any error; returns the warnings.

    Relative dataset and output paths are resolved against the file's folder.
    """
    data = read_config_file(path)
    config, problems = parse_config(data)
    problems += unused_keys(data) + validate(config)
    if errors(problems):
        raise ConfigError(errors(problems), str(path))
    return _resolve_paths(config, Path(path).resolve().parent), problems


def _resolve_paths(config: TrainingConfig, base: Path) -> TrainingConfig:
    def resolve(p: str) -> str:
        expanded = Path(os.path.expanduser(p))
        return str(expanded if expanded.is_absolute() else base / expanded)

    config.data.dataset_dirs = [resolve(d) for d in config.data.dataset_dirs]
    config.run.output_dir = resolve(config.run.output_dir)
    if config.run.cache_dir:
        config.run.cache_dir = resolve(config.run.cache_dir)
    for key in (
        "pretrained_model_name_or_path",
        "pretrained_t5_model_name_or_path",
        "pretrained_vae_model_name_or_path",
        "t5_tokenizer_name_or_path",
    ):
        value = getattr(config.model, key)
        if value and (value.startswith((".", "~", "/")) or (base / value).exists()):
            setattr(config.model, key, resolve(value))
    return config


def save_config(config: TrainingConfig, path: str | os.PathLike) -> None:
    write_text_atomic(path, json.dumps(config.to_dict(), indent=2) + "\n")
