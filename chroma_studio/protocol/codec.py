"""How the protocol's dataclasses become JSON-ready values and come back, driven by their type hints.

``encode`` turns a dataclass into plain dicts, lists, strings and numbers: enums become their
values, paths strings, tuples lists. ``decode_fields`` builds a dataclass back from such a dict,
reading each field's annotation to restore what JSON cannot hold (enums, paths, tuples, nested
dataclasses). A new event or job needs no code of its own here.

``StrEnum`` is the base of the protocol's closed sets: members are strings, equal to their values,
so a message and a log line read the same as before they were enums.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from enum import Enum
from pathlib import PurePath
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """A string enum (``enum.StrEnum`` arrived in Python 3.11)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


__all__ = ["StrEnum", "coerce_enums", "decode", "decode_fields", "encode"]

T = TypeVar("T")


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of their fields, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {spec.name: encode(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    return value


def decode_fields(cls: type[T], data: dict[str, Any], *, strict: bool = False) -> T:
    """A ``cls`` dataclass from the dict ``encode`` made of one.

    Missing fields take their defaults; unknown keys are ignored unless ``strict``. Raises
    ValueError naming the field when a value does not fit (an unknown enum value, a missing field).
    """
    hints = _hints(cls)
    names = {spec.name for spec in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if strict and (unknown := sorted(set(data) - names)):
        raise ValueError(f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    kwargs = {}
    for name in names & set(data):
        try:
            kwargs[name] = decode(hints[name], data[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ValueError(str(exc).split("__init__() ", 1)[-1]) from None


def decode(hint: Any, value: Any) -> Any:
    """``value`` (from JSON) as the type ``hint`` names, as far as JSON lost it."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return decode(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in value)
        return tuple(decode(arg, item) for arg, item in zip(args, value, strict=True))
    if origin in (dict, list):
        if not isinstance(value, origin):
            raise TypeError(f"expected {'an object' if origin is dict else 'a list'}, got {value!r}")
        return value  # JSON has them already
    if not isinstance(hint, type):
        return value  # Any
    if issubclass(hint, Enum):
        return hint(value)
    if issubclass(hint, PurePath):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {value!r}")
        return decode_fields(hint, value)
    return value


def coerce_enums(instance: object) -> None:
    """Turn the strings a frozen dataclass was given for its enum fields into members (from
    ``__post_init__``): ``PhaseChanged("training")`` holds ``Phase.TRAINING``, and a value
    outside the set fails at once with a ValueError."""
    for name, hint in _hints(type(instance)).items():
        if isinstance(hint, type) and issubclass(hint, Enum):
            value = getattr(instance, name)
            if not isinstance(value, hint):
                object.__setattr__(instance, name, hint(value))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of ``cls`` (read once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints
