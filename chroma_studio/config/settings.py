"""Every training setting, declared once: nested dataclasses whose field metadata carries what the
GUI form and the CLI need (label, help text, range, aliases, and whether it is basic). A setting
with a closed set of values is typed with a ``Literal``; its choices are read from that type.

Field names are the flat keys on disk and follow SimpleTuner's names. ``TrainingConfig``, which
holds one of each section, is in ``training_config.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

CONFIG_VERSION = 1

# The closed sets. Each tuple is read from its Literal, so the two cannot drift apart.
ModelType = Literal["lora"]
MODEL_TYPES: tuple[ModelType, ...] = get_args(ModelType)
ModelFamily = Literal["chroma"]
MODEL_FAMILIES: tuple[ModelFamily, ...] = get_args(ModelFamily)
# ``demo`` is a tiny random model built in code (training/demo.py); the others are on the hub.
Flavour = Literal["base", "hd", "flash", "demo"]
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)
FLAVOUR_REPOS: dict[Flavour, str] = {
    "base": "lodestones/Chroma1-Base",
    "hd": "lodestones/Chroma1-HD",
    "flash": "lodestones/Chroma1-Flash",
}
BasePrecision = Literal["no_change", "int8-quanto", "int4-quanto", "nf4-bnb"]
BASE_PRECISIONS: tuple[BasePrecision, ...] = get_args(BasePrecision)
MixedPrecision = Literal["bf16", "fp16", "no"]
MIXED_PRECISIONS: tuple[MixedPrecision, ...] = get_args(MixedPrecision)
LoraTarget = Literal["all", "all+ffs", "context", "context+ffs", "tiny"]
LORA_TARGETS: tuple[LoraTarget, ...] = get_args(LoraTarget)
LrScheduler = Literal["constant", "constant_with_warmup", "cosine", "linear"]
LR_SCHEDULERS: tuple[LrScheduler, ...] = get_args(LrScheduler)
T5Padding = Literal["unmodified", "zero"]
T5_PADDINGS: tuple[T5Padding, ...] = get_args(T5Padding)
# How training draws its noise levels (training/schedule.py). ``chroma`` is the model's own.
SigmaDistribution = Literal["chroma", "simpletuner", "logit_normal", "uniform"]
SIGMA_DISTRIBUTIONS: tuple[SigmaDistribution, ...] = get_args(SigmaDistribution)
LOGIT_NORMAL_DISTRIBUTIONS: tuple[SigmaDistribution, ...] = ("simpletuner", "logit_normal")
# Runs of versions that did not record their noise levels all trained with SimpleTuner's tail map.
UNRECORDED_SIGMA_DISTRIBUTION: SigmaDistribution = "simpletuner"
SIGMA_DISTRIBUTION_WORDS: dict[SigmaDistribution, str] = {
    "chroma": "Chroma's own training distribution: most steps at middle noise levels (about 68% between "
    "0.25 and 0.75), few at the extremes",
    "simpletuner": "SimpleTuner's tail map on logit-normal draws: it never trains noise levels between 0.25 and 0.75",
    "logit_normal": "logit-normal, as Flux trains: peaked at 0.5",
    "uniform": "uniform: every noise level equally often",
}
DEFAULT_MAX_TRAIN_STEPS = 1000
# Upper bounds that no real run comes near; they keep a typo (1e30) from reaching torch, and
# stay within the 32-bit range of the app's number fields.
MAX_STEPS = 1_000_000
MAX_EPOCHS = 100_000
MAX_SEED = 2**31 - 1
SEED_NOTE = (
    f"Seeds go from 0 to {MAX_SEED:,}: every random generator a run seeds (torch's, the data order's) "
    "and the app's seed field accept that range."
)
STEPS_NOTE = f"Step counts above {MAX_STEPS:,} are taken for a typo."

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
# SimpleTuner's group offloading: read as block streaming (blocks_to_swap), with a warning where a
# key means something else (config/fields.py ``read_group_offload``).
GROUP_OFFLOAD_KEYS = frozenset(
    {
        "enable_group_offload",
        "group_offload_type",
        "group_offload_blocks_per_group",
        "group_offload_use_stream",
        "group_offload_to_disk_path",
    }
)


def sigma_keys(distribution: SigmaDistribution) -> dict[str, Any]:
    """The config keys that select ``distribution`` without contradicting each other."""
    return {"flow_sigma_distribution": distribution, "flow_use_uniform_schedule": distribution == "uniform"}


def setting(
    default: Any,
    label: str,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    aliases: tuple[str, ...] = (),
    basic: bool = False,
    range_note: str = "",
    empty_hint: str = "",
) -> Any:
    """A config field with the metadata the GUI form and the validator read.

    ``basic`` marks the few settings shown outside the GUI's Advanced drawer. The choices of a
    closed set come from the field's ``Literal`` type, not from here. ``range_note`` says why
    the range is what it is; ``empty_hint``, for text that must not be empty, what to write.
    """
    metadata = {
        "label": label,
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "aliases": aliases,
        "basic": basic,
        "range_note": range_note,
        "empty_hint": empty_hint,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelConfig:
    model_type: ModelType = setting("lora", "Model type", "What is trained. Only LoRA adapters are supported.")
    model_family: ModelFamily = setting("chroma", "Model family", "The base model family.")
    model_flavour: Flavour = setting(
        "base",
        "Chroma flavour",
        "base: balanced quality (default). hd: higher fidelity, heavier. flash: fast but unstable, "
        "not for production. demo: a tiny random model that trains offline in a minute; its samples "
        "are noise, it exists to try the app.",
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
    base_model_precision: BasePrecision = setting(
        "no_change",
        "Base model quantization",
        "no_change keeps the transformer in the training dtype. int8-quanto and int4-quanto "
        "quantize its weights with optimum-quanto; nf4-bnb uses bitsandbytes and needs CUDA.",
    )
    mixed_precision: MixedPrecision = setting(
        "bf16",
        "Mixed precision",
        "The dtype of the frozen base weights and activations. LoRA weights always train in fp32.",
    )
    gradient_checkpointing: bool = setting(
        True, "Gradient checkpointing", "Recompute activations in the backward pass: much less memory, ~30% slower."
    )
    blocks_to_swap: int = setting(
        0,
        "Blocks streamed from RAM",
        "How many of the transformer's 57 blocks keep their frozen weights in system RAM and are "
        "copied to the GPU just before they run (the LoRA stays on the GPU). Lets a 6-8 GB card "
        "train at 1024 px at some cost in speed. Needs gradient checkpointing; CUDA and ROCm only. "
        "0 keeps every block on the GPU.",
        minimum=0,
        maximum=57,
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
    flux_lora_target: LoraTarget = setting(
        "all",
        "LoRA targets",
        "Which layers get a LoRA. all: every attention projection. all+ffs: also the feed-forward "
        "layers. context: the text-side projections only. tiny: q, k, v, out and the first "
        "feed-forward layer.",
    )


@dataclass
class TextConfig:
    t5_padding: T5Padding = setting(
        "unmodified",
        "T5 padding",
        "zero multiplies the text embeddings by the attention mask. With the mask applied it changes "
        "nothing; it guards against a lost mask.",
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
    follow_links: bool = setting(
        False,
        "Follow links",
        "Also train on images that links in the image folders point to outside them; off, such links are "
        "reported and skipped.",
    )


@dataclass
class OptimConfig:
    learning_rate: float = setting(
        1e-4, "Learning rate", "AdamW learning rate.", minimum=1e-7, maximum=1e-2, basic=True
    )
    lr_scheduler: LrScheduler = setting("constant", "LR schedule", "How the learning rate changes after warmup.")
    lr_warmup_steps: int = setting(
        0,
        "Warmup steps",
        "Steps over which the learning rate rises from 0.",
        minimum=0,
        maximum=MAX_STEPS,
        range_note=STEPS_NOTE,
    )
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
        maximum=MAX_STEPS,
        basic=True,
        range_note=STEPS_NOTE,
    )
    num_train_epochs: int | None = setting(
        None,
        "Epochs",
        "Passes over the dataset; used only when training steps is empty.",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    seed: int = setting(
        42,
        "Seed",
        "Seeds noise, timesteps and data order: the same seed gives the same run.",
        minimum=0,
        maximum=MAX_SEED,
        range_note=SEED_NOTE,
    )
    flow_sigma_distribution: SigmaDistribution = setting(
        "chroma",
        "Noise levels",
        "How each step picks its noise level (sigma). chroma: Chroma's own training "
        "distribution, peaked in the middle (about 68% of steps between 0.25 and 0.75). simpletuner: "
        "SimpleTuner's tail map on logit-normal draws, to reproduce a SimpleTuner run; it never "
        "trains noise levels between 0.25 and 0.75. logit_normal: Flux's. uniform: every level alike.",
    )
    flow_use_uniform_schedule: bool = setting(
        False,
        "Uniform timesteps",
        "SimpleTuner's switch for uniform noise levels: true is the same as Noise levels = uniform.",
    )
    flow_sigmoid_scale: float = setting(
        1.0,
        "Logit-normal scale",
        "Spread of the logit-normal draws; used by the logit_normal and simpletuner noise levels only.",
        minimum=0.01,
        maximum=10.0,
    )
    flow_schedule_shift: float = setting(
        0.0,
        "Schedule shift",
        "Shifts every drawn noise level toward noise (Flux-style), before SimpleTuner's tail map "
        "when that is chosen. Chroma needs none. 0 turns it off.",
        minimum=0.0,
        maximum=20.0,
    )


@dataclass
class RunConfig:
    output_dir: str = setting(
        "output/chroma-lora",
        "Output folder",
        "Where the run writes its LoRA, samples and checkpoints.",
        empty_hint="name a folder for the run, such as output/my-lora.",
    )
    checkpointing_steps: int = setting(
        250,
        "Checkpoint every",
        "Steps between resumable checkpoints; 0 saves only at the end.",
        minimum=0,
        maximum=MAX_STEPS,
        range_note=STEPS_NOTE,
    )
    checkpoints_total_limit: int | None = setting(
        3,
        "Checkpoints kept",
        "Older checkpoints beyond this many are deleted. Empty keeps all.",
        minimum=1,
        maximum=MAX_STEPS,
    )
    cache_dir: str | None = setting(
        None, "Cache folder", "Where text embeddings and latents are cached. Empty: the app's cache folder."
    )
    resume_from_checkpoint: str | None = setting(
        None, "Resume from", "latest, or a checkpoint folder, to continue a stopped run."
    )
    num_processes: int = setting(
        1,
        "Processes (GPUs)",
        "Data-parallel training: one process per GPU, each with its share of every batch, so a "
        "step trains train_batch_size x num_processes images. Without GPUs the processes share the "
        "CPU cores (slow; for testing).",
        minimum=1,
        maximum=64,
    )


@dataclass
class ValidationConfig:
    validation_steps: int = setting(
        100,
        "Sample every",
        "Steps between sample images; 0 renders only at the start and end.",
        minimum=0,
        maximum=MAX_STEPS,
        range_note=STEPS_NOTE,
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
    validation_seed: int = setting(
        42,
        "Sample seed",
        "Fixed seed so samples from different steps compare.",
        minimum=0,
        maximum=MAX_SEED,
        range_note=SEED_NOTE,
    )


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "lora": LoraConfig,
    "text": TextConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "validation": ValidationConfig,
}
