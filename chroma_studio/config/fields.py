"""The flat keys: where each setting lives, what it accepts, and reading a dict of them.

Each flat key names one field of one section (``settings.py``); an alias or SimpleTuner's
``--key`` spelling names the same field. ``read_values`` turns a dict of flat keys into typed
values per section, with one problem per key that is unknown, repeated or of the wrong kind.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from chroma_studio.config.problems import Problem
from chroma_studio.config.settings import GROUP_OFFLOAD_KEYS, IGNORED_SIMPLETUNER_KEYS, SECTIONS


@dataclass(frozen=True)
class FieldInfo:
    """Where a flat key lives and what it accepts."""

    section: str
    name: str
    type: Any
    default: Any
    label: str
    help: str
    choices: tuple[str, ...] | None  # the values of the field's Literal type, if it has one
    minimum: float | None
    maximum: float | None
    aliases: tuple[str, ...]
    basic: bool
    range_note: str  # why the range is what it is, told with a value outside it; may be empty
    empty_hint: str  # for text that must not be empty: what to write instead; empty: may be empty


def optional_inner(tp: Any) -> tuple[Any, bool]:
    """(inner type, allows None) for ``X | None``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def literal_choices(tp: Any) -> tuple[str, ...] | None:
    """The values of a ``Literal`` of strings (also inside ``X | None``), else None."""
    inner, _ = optional_inner(tp)
    return typing.get_args(inner) if typing.get_origin(inner) is Literal else None


def _collect_fields() -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = f.default
            fields[f.name] = FieldInfo(
                section=section,
                name=f.name,
                type=hints[f.name],
                default=default,
                choices=literal_choices(hints[f.name]),
                **f.metadata,
            )
    return fields


FIELDS: dict[str, FieldInfo] = _collect_fields()
ALIASES: dict[str, str] = {alias: name for name, info in FIELDS.items() for alias in info.aliases}


def nearest(word: str, candidates: typing.Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (ignoring case), if any is close."""
    by_lower = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.5)
    return by_lower[matches[0]] if matches else None


def shown(value: object) -> str:
    """``value`` as a message shows it: its repr, cut short (a config may hold anything)."""
    return reprlib.repr(value)


def did_you_mean(word: object, candidates: typing.Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the nearest candidate, or an empty string."""
    if not isinstance(word, str):
        return ""
    match = nearest(word, candidates)
    return f" Did you mean '{match}'?" if match else ""


def not_a_choice(value: object, choices: tuple[str, ...]) -> str:
    """The message for a value outside a closed set, naming the nearest choice."""
    text = f"'{value}'" if isinstance(value, str) and len(value) < 80 else shown(value)
    return f"{text} is not one of {', '.join(choices)}.{did_you_mean(value, choices)}"


def _number(value: float) -> str:
    """A number as a message shows it: 1,000,000 and 0.0001, but 1e+30 for a huge one."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return "a number that large"
    if abs(value) < 1e15 and float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):g}"


def out_of_range(info: FieldInfo, value: float) -> str | None:
    """The message for a number outside the field's range, or None when it is inside."""
    if info.minimum is not None and value < info.minimum:
        message = f"{_number(value)} is below the minimum {_number(info.minimum)}."
    elif info.maximum is not None and value > info.maximum:
        message = f"{_number(value)} is above the maximum {_number(info.maximum)}."
    else:
        return None
    return f"{message} {info.range_note}" if info.range_note else message


def canonical_key(key: str) -> str:
    """Strip SimpleTuner's ``--`` spelling and resolve aliases."""
    key = key.strip()
    if key.startswith("--"):
        key = key[2:].replace("-", "_")
    return ALIASES.get(key, key)


def coerce(info: FieldInfo, value: Any) -> Any:
    """Turn a JSON value into the field's type, or raise ValueError with a message for the user."""
    tp, nullable = optional_inner(info.type)
    if value is None or (nullable and value == ""):
        if nullable:
            return None
        raise ValueError("must not be empty")
    if info.choices is not None:
        if isinstance(value, str) and value in info.choices:
            return value
        raise ValueError(not_a_choice(value, info.choices))
    if tp is bool:
        return _to_bool(value)
    if tp in (int, float):
        number = _to_int(value) if tp is int else _to_float(value)
        if isinstance(number, float) and not math.isfinite(number):
            instead = (
                f"a number such as {info.default:g}" if info.default is not None else "a number, or leave it empty"
            )
            raise ValueError(f"must be a finite number, not {shown(value)}; write {instead}.")
        problem = out_of_range(info, number)
        if problem:
            raise ValueError(problem)
        return number
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            if info.empty_hint and not str(value).strip():
                raise ValueError(f"must not be empty; {info.empty_hint}")
            return str(value)
        raise ValueError(f"must be text, not {shown(value)}")
    if typing.get_origin(tp) is list:
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError("must be text or a list of texts")
    raise TypeError(f"unsupported config type {tp!r}")  # a bug in the settings, not user input


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ValueError(f"must be true or false, not {shown(value)}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, not {shown(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"must be a whole number, not {shown(value)}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {shown(value)}")
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a number, not {shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # a whole number too large for a float
        raise ValueError(f"must be a number of a usable size, not {shown(value)}") from None
    except ValueError:
        raise ValueError(f"must be a number, not {shown(value)}") from None
    return number


def read_values(data: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Typed values per section from flat keys, and a problem per key that is unknown or bad.

    SimpleTuner settings this trainer ignores are skipped here (``unused_keys`` reports them).
    """
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for raw_key, value in data.items():
        key = canonical_key(raw_key)
        if key in IGNORED_SIMPLETUNER_KEYS or key in GROUP_OFFLOAD_KEYS:
            continue
        info = FIELDS.get(key)
        if info is None:
            hint = did_you_mean(key, [*FIELDS, *ALIASES]) or " Remove it."
            problems.append(Problem(raw_key, f"unknown setting.{hint}"))
            continue
        if key in seen:
            problems.append(Problem(raw_key, f"given twice (also as '{seen[key]}'); keep one."))
            continue
        seen[key] = raw_key
        try:
            values[info.section][key] = coerce(info, value)
        except ValueError as exc:
            problems.append(Problem(raw_key, str(exc)))
    return values, problems


def unused_keys(data: dict[str, Any]) -> list[Problem]:
    """Warnings for SimpleTuner settings present in ``data`` that this trainer does not use, or
    reads as something else (group offloading)."""
    return [
        Problem(key, "a SimpleTuner setting Chroma Studio does not use; it is ignored.", "warning")
        for key in data
        if canonical_key(key) in IGNORED_SIMPLETUNER_KEYS
    ] + [p for p in read_group_offload(data)[1] if p.severity == "warning"]


def read_group_offload(data: dict[str, Any]) -> tuple[int | None, list[Problem]]:
    """SimpleTuner's group offloading as block streaming: (the ``blocks_to_swap`` it stands for, or
    None; a problem per key). Its offloading keeps every block in RAM, so it reads as all blocks
    streaming; the keys whose meaning differs here get a warning saying what happens instead."""
    given = {canonical_key(k): (k, v) for k, v in data.items() if canonical_key(k) in GROUP_OFFLOAD_KEYS}
    if not given:
        return None, []
    raw, value = given.pop("enable_group_offload", ("enable_group_offload", False))
    try:
        enabled = _to_bool(value)
    except ValueError as exc:
        return None, [Problem(raw, str(exc))]
    if not enabled:
        unused = "is not used while enable_group_offload is off."
        return None, [Problem(k, unused, "warning") for k, _ in given.values()]
    blocks = int(FIELDS["blocks_to_swap"].maximum or 0)
    explicit = any(canonical_key(k) == "blocks_to_swap" for k in data)
    problems = [
        Problem(
            raw,
            "blocks_to_swap is set and decides how many blocks stream from RAM."
            if explicit
            else f"read as blocks_to_swap {blocks}: every transformer block streams its frozen weights from RAM "
            "(the LoRA stays on the GPU). Lower blocks_to_swap to stream fewer blocks and train faster.",
            "warning",
        )
    ]
    meanings = {
        "group_offload_type": ("block_level", "blocks stream whole, one at a time; there is no leaf-level streaming."),
        "group_offload_blocks_per_group": (1, "blocks stream one at a time, the next copied while one runs."),
        "group_offload_use_stream": (True, "copies always run on a side CUDA stream, overlapping the compute."),
        "group_offload_to_disk_path": ("", "blocks stream from RAM, never from disk."),
    }
    for key, (raw_key, got) in given.items():
        same, instead = meanings[key]
        if got != same and got is not None:
            problems.append(Problem(raw_key, f"is not used: {instead}", "warning"))
    return None if explicit else blocks, problems
