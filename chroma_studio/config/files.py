"""Config files: JSON (comments and trailing commas tolerated) in, atomic JSON out."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from chroma_studio.base.atomic import write_text_atomic
from chroma_studio.config.fields import unused_keys
from chroma_studio.config.parse import parse_config
from chroma_studio.config.problems import ConfigError, Problem, errors
from chroma_studio.config.training_config import TrainingConfig, validate


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


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem("(file)", "does not exist; check the path.")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("(file)", f"cannot be read: {exc}")], str(path)) from None
    try:
        data = json.loads(_strip_json_comments(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [Problem("(file)", f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.")], str(path)
        ) from None
    except RecursionError:
        raise ConfigError(
            [Problem("(file)", "is nested too deeply to read; a config is one { } of settings, with lists inside.")],
            str(path),
        ) from None
    except ValueError:  # a whole number with more digits than Python converts (over 4,300)
        raise ConfigError([Problem("(file)", "holds a number too long to read; shorten it.")], str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem("(file)", "must be a JSON object of settings, in { }.")], str(path))
    return data


def load_config(path: str | os.PathLike[str]) -> tuple[TrainingConfig, list[Problem]]:
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
        return os.path.normpath(expanded if expanded.is_absolute() else base / expanded)

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


def save_config(config: TrainingConfig, path: str | os.PathLike[str]) -> None:
    write_text_atomic(path, json.dumps(config.to_dict(), indent=2) + "\n")
