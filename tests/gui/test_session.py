"""Projects saved and reopened; recent projects and settings in QSettings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chroma_studio.config import ConfigError
from chroma_studio.gui.session import PROJECT_SUFFIX, ProjectError, ProjectSession


def test_a_project_round_trips_through_its_file(tmp_path, settings, demo_folder):
    session = ProjectSession(settings)
    session.set_dataset_dirs([str(demo_folder)])
    session.set_trigger_word("sks")
    session.update(lora_rank=8, resolution=768)
    session.add_run(str(tmp_path / "runs" / "sks-1"))
    assert session.dirty
    saved = session.save(tmp_path / "portrait")
    assert saved.name == "portrait" + PROJECT_SUFFIX and not session.dirty
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, then renamed

    reopened = ProjectSession(settings)
    reopened.open(saved)
    assert reopened.config.data.dataset_dirs == [str(demo_folder)]
    assert reopened.config.data.trigger_word == "sks"
    assert (reopened.config.lora.lora_rank, reopened.config.data.resolution) == (8, 768)
    assert reopened.runs == [str(tmp_path / "runs" / "sks-1")]
    assert settings.recent_projects[0] == str(saved)


def test_bad_values_are_refused_and_the_old_config_kept(settings):
    session = ProjectSession(settings)
    with pytest.raises(ConfigError) as error:
        session.update(learning_rate="fast")
    assert error.value.problems[0].key == "learning_rate"
    assert session.config.optim.learning_rate == 1e-4


def test_opening_a_broken_file_says_what_is_wrong(tmp_path, settings):
    broken = tmp_path / "x.chromastudio"
    broken.write_text("{not json")
    with pytest.raises(ProjectError, match="cannot be read"):
        ProjectSession(settings).open(broken)
    other = tmp_path / "y.chromastudio"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ProjectError, match="not a Chroma Studio project"):
        ProjectSession(settings).open(other)
    with pytest.raises(ProjectError, match="does not exist"):
        ProjectSession(settings).open(tmp_path / "missing.chromastudio")


def test_each_run_gets_a_new_folder_and_the_settings_folders(tmp_path, settings):
    session = ProjectSession(settings)
    session.set_trigger_word("my cat")
    first = session.new_run_dir()
    Path(first).mkdir(parents=True)
    second = session.new_run_dir()
    assert first != second
    assert Path(first).parent == Path(settings.output_folder)
    assert Path(first).name.startswith("my-cat-")
    config = session.training_config(first)
    assert config.run.output_dir == first
    assert config.run.cache_dir == settings.cache_folder
    assert session.training_config(first, resume=True).run.resume_from_checkpoint == "latest"


def test_settings_persist_and_recent_projects_are_capped(tmp_path, settings):
    settings.hf_endpoint = " https://hf-mirror.com "
    assert settings.hf_endpoint == "https://hf-mirror.com"
    assert settings.environment() == {"HF_ENDPOINT": "https://hf-mirror.com"}
    for i in range(12):
        settings.add_recent_project(str(tmp_path / f"p{i}.chromastudio"))
    assert len(settings.recent_projects) == 10
    assert settings.recent_projects[0].endswith("p11.chromastudio")
