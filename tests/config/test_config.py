import json
import typing

import pytest
from support import QUICKSTART_CONFIG

from chroma_studio.config import (
    FIELDS,
    FLAVOUR_REPOS,
    FLAVOURS,
    LORA_TARGETS,
    ConfigError,
    TrainingConfig,
    config_from_dict,
    load_config,
    save_config,
    validate,
)


def test_the_quickstart_example_loads_unchanged():
    assert "// The example from the Chroma quickstart" in QUICKSTART_CONFIG.read_text()  # JSONC, as written
    config, warnings = load_config(QUICKSTART_CONFIG)
    assert config.model_source == "lodestones/Chroma1-Base"
    assert config.lora.lora_rank == 16 and config.effective_lora_alpha == 16.0
    assert config.optim.learning_rate == 2e-4 and config.model.mixed_precision == "bf16"
    assert config.run.output_dir == "/workspace/chroma-output"
    assert [w.key for w in warnings] == ["dataset_dirs"]


def test_simpletuner_spelling_aliases_and_ignored_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "--model_family": "chroma",
                "--flux_t5_padding": "zero",
                "validation_guidance_real": 2.5,
                "validation_prompt": "a photo of sks",
                "report_to": "wandb",
                "dataset_dirs": ["images"],
            }
        )
    )
    config, warnings = load_config(path)
    assert config.text.t5_padding == "zero"
    assert config.validation.validation_guidance == 2.5
    assert config.validation.validation_prompt == ["a photo of sks"]
    assert config.data.dataset_dirs == [str(tmp_path / "images")]  # relative to the config file
    assert any(w.key == "report_to" and w.severity == "warning" for w in warnings)


def test_every_problem_is_reported_once_with_the_nearest_choice(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "lerning_rate": 1e-4,
                "lora_rank": "sixteen",
                "model_flavour": "HD",
                "flux_lora_target": "all+ff",
                "resolution": 1000,
                "flux_fast_schedule": True,
                "network_rank": 8,
                "lora_alpha": 4,
                "train_batch_size": 0,
            }
        )
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    messages = {p.key: p.message for p in info.value.problems}
    assert messages["lerning_rate"] == "unknown setting. Did you mean 'learning_rate'?"
    assert "whole number" in messages["lora_rank"]
    assert "Did you mean 'hd'?" in messages["model_flavour"]
    assert "Did you mean 'all+ffs'?" in messages["flux_lora_target"]
    assert "use 1024" in messages["resolution"]
    assert "must stay off" in messages["flux_fast_schedule"]
    assert "given twice" in messages["network_rank"]
    assert "below the minimum" in messages["train_batch_size"]
    assert len(info.value.problems) == 8


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"lora_rank": 16,, }')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid JSON" in str(info.value) and "line 1" in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")


def test_a_newer_config_version_is_refused():
    with pytest.raises(ConfigError, match="newer than this Chroma Studio"):
        config_from_dict({"config_version": 99})


def test_save_and_load_round_trip_is_atomic_and_exact(tmp_path):
    config = config_from_dict(
        {
            "model_flavour": "hd",
            "lora_rank": 32,
            "validation_prompt": ["a", "b"],
            "dataset_dirs": ["/d"],
            "output_dir": "/out",
        }
    )
    path = tmp_path / "saved.json"
    path.write_text("old content")
    save_config(config, path)
    again, _ = load_config(path)
    assert again == config
    assert [p.name for p in tmp_path.iterdir()] == ["saved.json"]  # no temporary file left behind


def test_every_field_has_ui_metadata_and_a_valid_default():
    for key, info in FIELDS.items():
        assert info.label and info.help, key
        if info.choices:
            assert info.default in info.choices, key
    problems = [p for p in validate(TrainingConfig()) if p.severity == "error"]
    assert problems == []


def test_replace_accepts_aliases_and_rejects_unknown_keys():
    config = TrainingConfig().replace(network_rank=8)
    assert config.lora.lora_rank == 8
    with pytest.raises(ConfigError):
        TrainingConfig().replace(not_a_setting=1)


def test_noise_levels_default_to_chromas_own_and_simpletuner_configs_get_them_too():
    assert TrainingConfig().sigma_distribution == "chroma"
    config, _ = load_config(QUICKSTART_CONFIG)
    assert config.sigma_distribution == "chroma"


def test_simpletuners_uniform_switch_selects_plain_uniform():
    config = config_from_dict({"flow_use_uniform_schedule": True})
    assert config.sigma_distribution == "uniform" and config.optim.flow_sigma_distribution == "uniform"
    assert [p for p in validate(config) if p.severity == "error"] == []
    again = config_from_dict(config.to_dict())  # what a run writes reads back the same
    assert again.sigma_distribution == "uniform"


@pytest.mark.parametrize("chosen", ["chroma", "simpletuner", "logit_normal"])
def test_the_uniform_switch_beside_another_distribution_is_a_named_error(chosen):
    config = config_from_dict({"flow_use_uniform_schedule": True, "flow_sigma_distribution": chosen})
    problems = [p for p in validate(config) if p.severity == "error"]
    assert [p.key for p in problems] == ["flow_sigma_distribution"]
    assert chosen in problems[0].message and "flow_use_uniform_schedule" in problems[0].message


def test_the_logit_normal_scale_is_a_warning_where_it_does_nothing():
    def warnings(**values):
        return [p.key for p in validate(config_from_dict(values)) if p.severity == "warning"]

    assert "flow_sigmoid_scale" in warnings(flow_sigmoid_scale=2.0)
    assert "flow_sigmoid_scale" in warnings(flow_sigmoid_scale=2.0, flow_use_uniform_schedule=True)
    assert "flow_sigmoid_scale" not in warnings(flow_sigmoid_scale=2.0, flow_sigma_distribution="logit_normal")
    assert "flow_sigmoid_scale" not in warnings(flow_sigmoid_scale=2.0, flow_sigma_distribution="simpletuner")


def test_an_unknown_distribution_names_the_nearest_choice():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"flow_sigma_distribution": "simpletunr"})
    [problem] = info.value.problems
    assert problem.key == "flow_sigma_distribution" and "Did you mean 'simpletuner'?" in problem.message
    with pytest.raises(ConfigError, match="not one of"):
        TrainingConfig().replace(t5_padding="zeros")


def test_each_closed_set_is_a_literal_and_the_form_reads_its_choices():
    assert FIELDS["model_flavour"].choices == FLAVOURS == ("base", "hd", "flash", "demo")
    assert set(FLAVOUR_REPOS) == set(FLAVOURS) - {"demo"}
    assert FIELDS["flux_lora_target"].choices == LORA_TARGETS
    for key in ("model_type", "model_family", "base_model_precision", "mixed_precision", "lr_scheduler", "t5_padding"):
        assert FIELDS[key].choices == typing.get_args(FIELDS[key].type), key
    assert FIELDS["lora_rank"].choices is None


def test_a_choice_set_in_code_is_still_checked():
    config = TrainingConfig()
    config.model.mixed_precision = "fp8"  # type: ignore[assignment]
    [problem] = [p for p in validate(config) if p.severity == "error"]
    assert problem.key == "mixed_precision" and "not one of bf16, fp16, no" in problem.message


def test_replace_copies_and_leaves_the_original_alone():
    config = TrainingConfig().replace(dataset_dirs=["/a"])
    changed = config.replace(lora_rank="8", dataset_dirs=["/b"])
    assert changed.lora.lora_rank == 8 and changed.data.dataset_dirs == ["/b"]
    assert config.lora.lora_rank == 16 and config.data.dataset_dirs == ["/a"]
    with pytest.raises(ConfigError, match="given twice"):
        config.replace(lora_rank=8, network_rank=4)


def test_a_file_that_is_not_an_object_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(path)
