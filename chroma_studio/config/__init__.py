"""The training configuration: one set of nested dataclasses, read from and written to flat JSON.

Every setting is declared once (``settings.py``), as a dataclass field whose metadata carries what
the GUI form and the CLI need (label, help text, choices, range, aliases). On disk the keys are
flat and follow SimpleTuner's names, so a SimpleTuner user's ``config.json`` (including the
``--key`` spelling) loads as it is (``parse.py``, ``files.py``).
"""

from chroma_studio.config.files import load_config, read_config_file, save_config
from chroma_studio.config.parse import (
    ALIASES,
    FIELDS,
    ConfigError,
    FieldInfo,
    Problem,
    canonical_key,
    config_from_dict,
    errors,
    nearest,
    parse_config,
    unused_keys,
    validate,
)
from chroma_studio.config.settings import (
    BASE_PRECISIONS,
    CONFIG_VERSION,
    DEFAULT_MAX_TRAIN_STEPS,
    FLAVOUR_REPOS,
    FLAVOURS,
    IGNORED_SIMPLETUNER_KEYS,
    LORA_TARGETS,
    LR_SCHEDULERS,
    MIXED_PRECISIONS,
    SECTIONS,
    T5_PADDINGS,
    DataConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TextConfig,
    TrainingConfig,
    ValidationConfig,
    setting,
)

__all__ = [
    "ALIASES",
    "BASE_PRECISIONS",
    "CONFIG_VERSION",
    "DEFAULT_MAX_TRAIN_STEPS",
    "FIELDS",
    "FLAVOURS",
    "FLAVOUR_REPOS",
    "IGNORED_SIMPLETUNER_KEYS",
    "LORA_TARGETS",
    "LR_SCHEDULERS",
    "MIXED_PRECISIONS",
    "SECTIONS",
    "T5_PADDINGS",
    "ConfigError",
    "DataConfig",
    "FieldInfo",
    "LoraConfig",
    "ModelConfig",
    "OptimConfig",
    "Problem",
    "RunConfig",
    "TextConfig",
    "TrainingConfig",
    "ValidationConfig",
    "canonical_key",
    "config_from_dict",
    "errors",
    "load_config",
    "nearest",
    "parse_config",
    "read_config_file",
    "save_config",
    "setting",
    "unused_keys",
    "validate",
]
