"""The training configuration: one set of nested dataclasses, read from and written to flat JSON.

Every setting is declared once (``settings.py``), as a dataclass field whose metadata carries what
the GUI form and the CLI need (label, help text, range, aliases); a closed set of values is a
``Literal`` type. On disk the keys are flat and follow SimpleTuner's names, so a SimpleTuner
user's ``config.json`` (including the ``--key`` spelling) loads as it is.

Inside, each module imports only those listed before it: ``problems`` and ``settings``;
``fields`` (each flat key: where it lives, what it accepts); ``training_config`` (the whole
config, copies with changes, ``validate``); ``parse`` (a whole config from flat keys); ``files``.
"""

from chroma_studio.config.fields import ALIASES, FIELDS, FieldInfo, canonical_key, nearest, unused_keys
from chroma_studio.config.files import load_config, read_config_file, save_config
from chroma_studio.config.parse import config_from_dict, parse_config
from chroma_studio.config.problems import ConfigError, Problem, Severity, errors
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
    MODEL_FAMILIES,
    MODEL_TYPES,
    SECTIONS,
    SIGMA_DISTRIBUTIONS,
    T5_PADDINGS,
    BasePrecision,
    DataConfig,
    Flavour,
    LoraConfig,
    LoraTarget,
    LrScheduler,
    MixedPrecision,
    ModelConfig,
    ModelFamily,
    ModelType,
    OptimConfig,
    RunConfig,
    SigmaDistribution,
    T5Padding,
    TextConfig,
    ValidationConfig,
    setting,
)
from chroma_studio.config.training_config import TrainingConfig, validate

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
    "MODEL_FAMILIES",
    "MODEL_TYPES",
    "SECTIONS",
    "SIGMA_DISTRIBUTIONS",
    "T5_PADDINGS",
    "BasePrecision",
    "ConfigError",
    "DataConfig",
    "FieldInfo",
    "Flavour",
    "LoraConfig",
    "LoraTarget",
    "LrScheduler",
    "MixedPrecision",
    "ModelConfig",
    "ModelFamily",
    "ModelType",
    "OptimConfig",
    "Problem",
    "RunConfig",
    "Severity",
    "SigmaDistribution",
    "T5Padding",
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
