"""Configs as a stranger might write them: every one is refused with a named problem, none crashes."""

from __future__ import annotations

import json
import math

import pytest

from chroma_studio.config import ConfigError, TrainingConfig, config_from_dict, load_config, validate
from chroma_studio.config.settings import MAX_SEED, MAX_STEPS

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "[1, 2]",
        "3",
        "null",
        "true",
        '"text"',
        pytest.param(DEEP, id="100000-nested-lists"),
        pytest.param('{"a": ' + DEEP + "}", id="nested-lists-in-a-value"),
    ],
)
def test_a_file_that_is_not_one_object_of_settings_is_named(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.key for p in info.value.problems] in (["(file)"], ["a"])


def test_deep_nesting_says_what_a_config_looks_like(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(DEEP)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_a_number_too_long_to_read_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"seed": ' + "9" * 5000 + "}")
    with pytest.raises(ConfigError, match="number too long"):
        load_config(path)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("learning_rate", math.nan, "must be a finite number"),
        ("learning_rate", "NaN", "must be a finite number"),
        ("lora_alpha", math.inf, "must be a finite number"),
        ("max_grad_norm", -math.inf, "must be a finite number"),
        ("seed", 1e30, f"above the maximum {MAX_SEED:,}. Seeds go from 0"),
        ("validation_seed", 2**31, "above the maximum"),
        pytest.param("seed", 10**5000, "above the maximum", id="seed-5000-digits"),
        ("max_train_steps", 1e300, f"above the maximum {MAX_STEPS:,}"),
        ("lr_warmup_steps", 10**12, "above the maximum"),
        ("num_train_epochs", 1e9, "above the maximum"),
        ("output_dir", "", "must not be empty; name a folder"),
        ("output_dir", "   ", "must not be empty"),
        ("seed", [[[[[[[[[[1]]]]]]]]]], "must be a whole number"),
        ("model_flavour", [[[[[[[[[[1]]]]]]]]]], "is not one of"),
        ("config_version", "one", "must be a whole number"),
    ],
)
def test_a_value_no_run_can_use_is_named_with_what_to_do(key, value, expected):
    with pytest.raises(ConfigError) as info:
        config_from_dict({key: value})
    [problem] = info.value.problems
    assert problem.key == key and expected in problem.message
    assert len(problem.message) < 300  # the value is shown cut short


def test_nan_in_a_file_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"learning_rate": NaN, "adam_beta1": Infinity}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert {p.key for p in info.value.problems} == {"learning_rate", "adam_beta1"}


def test_every_float_setting_refuses_nan():
    floats = [key for key, value in TrainingConfig().to_dict().items() if isinstance(value, float)]
    assert "learning_rate" in floats
    for key in floats:
        with pytest.raises(ConfigError, match=key):
            config_from_dict({key: float("nan")})


def test_validate_catches_what_code_sets_past_the_parser():
    config = TrainingConfig()
    config.optim.learning_rate = math.nan
    config.optim.seed = 2**64
    config.run.output_dir = ""
    keys = {p.key for p in validate(config)}
    assert {"learning_rate", "seed", "output_dir"} <= keys


def test_the_largest_seed_and_step_count_load():
    config = config_from_dict({"seed": MAX_SEED, "max_train_steps": MAX_STEPS, "output_dir": "x"})
    assert (config.optim.seed, config.optim.max_train_steps) == (MAX_SEED, MAX_STEPS)
    assert json.loads(json.dumps(config.to_dict()))["seed"] == MAX_SEED
