"""The whole training configuration: one of each section, the values derived from them, copies
with changed keys, and every check of the values (``validate``)."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from chroma_studio.config.fields import FIELDS, not_a_choice, out_of_range, read_values
from chroma_studio.config.problems import ConfigError, Problem
from chroma_studio.config.settings import (
    CONFIG_VERSION,
    FLAVOUR_REPOS,
    LOGIT_NORMAL_DISTRIBUTIONS,
    SECTIONS,
    DataConfig,
    LoraConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SigmaDistribution,
    TextConfig,
    ValidationConfig,
)


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
    def sigma_distribution(self) -> SigmaDistribution:
        """The noise-level distribution this config trains with."""
        if self.optim.flow_use_uniform_schedule:
            return "uniform"  # a different flow_sigma_distribution beside it is a validate() error
        return self.optim.flow_sigma_distribution

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
        """A copy with flat keys changed (aliases allowed); raises ConfigError on bad keys or values."""
        changes, problems = read_values(values)
        if problems:
            raise ConfigError(problems)
        sections = {name: copy.deepcopy(getattr(self, name)) for name in SECTIONS}
        for name, section in sections.items():
            for key, value in changes[name].items():
                setattr(section, key, value)
        return TrainingConfig(**sections)

    def validate(self) -> list[Problem]:
        """The problems with this config's values (see ``validate``)."""
        return validate(self)


def validate(config: TrainingConfig) -> list[Problem]:
    """Every problem with the values: choices, ranges and combinations. Errors and warnings."""
    problems: list[Problem] = []
    for key, info in FIELDS.items():
        value = getattr(getattr(config, info.section), key)
        if value is None:
            continue
        if info.choices and value not in info.choices:  # set in code, past the parser's check
            problems.append(Problem(key, not_a_choice(value, info.choices)))
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(key, f"must be a finite number, not {value}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = out_of_range(info, value)
            if problem:
                problems.append(Problem(key, problem))
        if isinstance(value, str) and info.empty_hint and not value.strip():
            problems.append(Problem(key, f"must not be empty; {info.empty_hint}"))
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
    if config.model.blocks_to_swap and not config.model.gradient_checkpointing:
        problems.append(
            Problem(
                "blocks_to_swap",
                "needs gradient_checkpointing: without it, the backward pass keeps every streamed block's "
                "weights on the GPU and streaming saves nothing. Turn gradient checkpointing on, or set "
                "blocks_to_swap to 0.",
            )
        )
    if config.model.blocks_to_swap and config.run.num_processes > 1:
        problems.append(
            Problem(
                "num_processes",
                "cannot be combined with blocks_to_swap yet: each process would keep its own copy of the "
                "streamed blocks in system RAM, and the combination is untested. Set num_processes to 1, or "
                "blocks_to_swap to 0.",
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
