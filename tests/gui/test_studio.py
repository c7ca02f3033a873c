"""The Studio without widgets: starting refuses with the reasons, presets, the recommendation's
differences, and the dataset's folders, trigger word and resolution held in the project's config."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSize

from chroma_studio.gui.dataset.model import DatasetRole
from chroma_studio.gui.studio import Studio

WAIT_MS = 20_000


@pytest.fixture
def studio(qtbot, settings):
    studio = Studio(settings, detector=None)
    yield studio
    studio.shutdown()


@pytest.fixture
def started(studio, monkeypatch) -> list:
    """The configs the run controller is asked to start (no engine process is started)."""
    calls = []
    monkeypatch.setattr(studio.controller, "start", lambda config, environment=None: calls.append(config))
    return calls


def test_start_refuses_without_a_folder(studio, started):
    result = studio.start_run()
    assert not result.started and "Add a folder of images first" in result.missing_images
    assert started == [] and studio.session.runs == []


def test_start_refuses_while_the_folders_have_no_image_that_trains(studio, started, tmp_path):
    studio.set_dataset_folders([str(tmp_path / "photos")])
    studio.set_dataset_images(None, 0)  # still scanning: not known to be empty
    assert studio.missing_images() == ""
    studio.set_dataset_images(0, 3)
    result = studio.start_run()
    assert not result.started and "all 3 images in the dataset cannot be used" in result.missing_images
    assert started == []


def test_start_refuses_with_the_settings_problems(qtbot, studio, started, tmp_path):
    studio.set_dataset_folders([str(tmp_path / "photos")])
    studio.set_dataset_images(4, 4)
    with qtbot.assertNotEmitted(studio.config_changed):
        assert not studio.edit_setting("learning_rate", "fast")
    result = studio.start_run()
    assert not result.started and [p.key for p in result.problems] == ["learning_rate"]
    assert started == []

    assert studio.edit_setting("learning_rate", 2e-4)  # a good value replaces the refused one
    result = studio.start_run()
    assert result.started and Path(result.output_dir).parent == Path(studio.settings.output_folder)
    assert started[0].run.output_dir == result.output_dir and started[0].optim.learning_rate == 2e-4
    assert studio.session.runs == [result.output_dir]


def test_apply_preset_changes_the_config_and_says_so(qtbot, studio, summary):
    studio.set_trigger_word("sks")
    option = summary.presets[1]  # the demo at rank 8
    with qtbot.waitSignal(studio.config_changed), qtbot.waitSignal(studio.preset_changed) as changed:
        studio.apply_preset(option)
    assert changed.args == [option.key]
    assert studio.config.lora.lora_rank == 8 and studio.preset == option.key
    assert studio.trigger_word == "sks"  # a preset leaves the dataset alone
    with qtbot.waitSignal(studio.preset_changed) as changed:
        studio.edit_setting("lora_rank", 16)  # changed by hand: no preset describes the settings now
    assert changed.args == [None]


def test_a_fresh_project_takes_the_recommendation_and_what_differs_from_it_is_listed(qtbot, studio, summary):
    assert studio.recommended_changes() == {}  # nothing is recommended before the machine is known
    with qtbot.waitSignal(studio.machine_detected):
        studio.set_machine_summary(summary)
    assert studio.preset == "recommended" and not studio.session.dirty
    assert studio.recommended_changes() == {}
    studio.update_settings(lora_rank=8, train_batch_size=2)  # the recommendation leaves the batch size alone
    studio.set_resolution(256)
    assert studio.recommended_changes() == {"lora_rank": 4, "resolution": 128}
    assert studio.apply_recommendation()
    assert studio.recommended_changes() == {} and studio.config.optim.train_batch_size == 2


def test_dataset_folders_are_kept_absolute_once_and_removals_are_said(qtbot, studio, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with qtbot.waitSignal(studio.dataset_folders_changed) as changed:
        studio.set_dataset_folders(["a", "b", "a"])
    assert changed.args == [[str(tmp_path / "a"), str(tmp_path / "b")], []]
    assert studio.config.data.dataset_dirs == [str(tmp_path / "a"), str(tmp_path / "b")]
    with qtbot.waitSignal(studio.dataset_folders_changed) as changed:
        studio.remove_dataset_folder(str(tmp_path / "a"))
    assert changed.args == [[str(tmp_path / "b")], [str(tmp_path / "a")]]
    with qtbot.assertNotEmitted(studio.dataset_folders_changed):
        studio.add_dataset_folders(["b"])


def test_the_resolution_is_held_once_and_every_page_follows_it(qtbot, window, demo_folder):
    studio, dataset, form = window.studio, window.dataset_page, window.train_page.form
    with qtbot.waitSignal(dataset.images_checked, timeout=WAIT_MS):
        dataset.set_folders([str(demo_folder)])
    assert dataset.model.index(0).data(DatasetRole.BUCKET) == QSize(128, 128)  # the recommended 128 px
    with qtbot.waitSignal(studio.resolution_changed) as changed:
        studio.set_resolution(256)
    assert changed.args == [256]
    assert studio.config.data.resolution == dataset.resolution() == dataset.model.resolution() == 256
    assert dataset.model.index(0).data(DatasetRole.BUCKET) == QSize(256, 256)
    qtbot.waitUntil(lambda: dataset.stats_widget.stats().resolution == 256)
    assert "Training shapes at 256 px" in dataset.stats_widget.buckets_label.text()
    assert form.rows["resolution"].editor.value() == 256
    with qtbot.assertNotEmitted(studio.resolution_changed):
        studio.update_settings(lora_rank=8)

    form.rows["resolution"].editor.setValue(512)  # typed on the Train page: the Dataset page follows
    assert studio.resolution == dataset.model.resolution() == 512
