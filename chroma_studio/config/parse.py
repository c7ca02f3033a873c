"""Flat keys to a TrainingConfig and back: coercion, aliases, and one clear problem per bad key."""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from chroma_studio.config.settings import (
    CONFIG_VERSION,
    IGNORED_SIMPLETUNER_KEYS,
    LOGIT_NORMAL_DISTRIBUTIONS,
    SECTIONS,
    TrainingConfig,
)


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
    optim = values["optim"]
    if optim.get("flow_use_uniform_schedule") and "flow_sigma_distribution" not in optim:
        optim["flow_sigma_distribution"] = "uniform"  # SimpleTuner's switch names the same choice
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
    problems.extend(_schedule_checks(config))
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


def _schedule_checks(config: TrainingConfig) -> list[Problem]:
    optim, problems = config.optim, []
    chosen = optim.flow_sigma_distribution
    if optim.flow_use_uniform_schedule and chosen != "uniform":
        problems.append(
            Problem(
                "flow_sigma_distribution",
                f"is '{chosen}' but flow_use_uniform_schedule is true, which means uniform; "
                "remove one of the two keys.",
            )
        )
    elif optim.flow_sigmoid_scale != 1.0 and config.sigma_distribution not in LOGIT_NORMAL_DISTRIBUTIONS:
        problems.append(
            Problem(
                "flow_sigmoid_scale",
                f"is ignored with the '{config.sigma_distribution}' noise levels; it applies to "
                "logit_normal and simpletuner only.",
                "warning",
            )
        )
    return problems


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
