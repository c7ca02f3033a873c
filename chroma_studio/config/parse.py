"""A whole config from flat keys (a file's, a project's or a run's): one problem per bad key."""

from __future__ import annotations

from typing import Any

from chroma_studio.config.fields import read_group_offload, read_values, shown
from chroma_studio.config.problems import ConfigError, Problem, errors
from chroma_studio.config.settings import CONFIG_VERSION, SECTIONS
from chroma_studio.config.training_config import TrainingConfig


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
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(
            Problem(
                "config_version",
                f"must be a whole number from 1, not {shown(version)}; remove it to use the current one.",
            )
        )
    elif version > CONFIG_VERSION:
        problems.append(
            Problem("config_version", f"{version} is newer than this Chroma Studio understands; update the app.")
        )
    values, bad_keys = read_values({key: value for key, value in data.items() if key != "config_version"})
    problems += bad_keys
    blocks_to_swap, offload_problems = read_group_offload(data)
    problems += errors(offload_problems)  # the warnings come with unused_keys
    if blocks_to_swap is not None:
        values["model"]["blocks_to_swap"] = blocks_to_swap
    optim = values["optim"]
    if optim.get("flow_use_uniform_schedule") and "flow_sigma_distribution" not in optim:
        optim["flow_sigma_distribution"] = "uniform"  # SimpleTuner's switch names the same choice
    return TrainingConfig(**{section: cls(**values[section]) for section, cls in SECTIONS.items()}), problems
