"""The Train page's "Use all N GPUs": shown on a machine with several GPUs, and it sets num_processes."""

from __future__ import annotations

import sys

import pytest

from chroma_studio.config import errors
from chroma_studio.gui import hardware_adapter
from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary
from chroma_studio.gui.pages.train import TrainPage
from chroma_studio.gui.studio import Studio
from chroma_studio.hardware import detect

GIB = 1024**3
NEEDS_NCCL = pytest.mark.skipif(sys.platform == "win32", reason="no NCCL on Windows: the choice is never offered there")


def gpus(base: MachineSummary, *sizes: int, kind: str = "cuda") -> MachineSummary:
    """The demo machine ``base`` (a CPU) with GPUs of ``sizes`` GB added."""
    devices = tuple(DeviceInfo(f"GPU {i}", kind, size * GIB) for i, size in enumerate(sizes))
    return MachineSummary((*devices, DeviceInfo("CPU", "cpu")), base.ram_total, base.ram_available, base.recommended)


@pytest.fixture
def page(qtbot, settings):
    page = TrainPage(Studio(settings, detector=None))
    qtbot.addWidget(page)
    page.resize(1200, 760)
    page.show()
    return page


@NEEDS_NCCL
def test_two_gpus_offer_to_use_both_and_the_choice_sets_num_processes(page, summary):
    choice = page.gpu_choice
    page.studio.set_machine_summary(gpus(summary, 24, 24))
    assert choice.isVisible() and choice.text() == "Use all 2 GPUs" and not choice.isChecked()
    choice.click()
    assert page.studio.config.run.num_processes == 2
    choice.click()
    assert page.studio.config.run.num_processes == 1
    page.studio.edit_setting("num_processes", 2)  # set in the settings form: the box follows
    assert choice.isChecked()


@pytest.mark.parametrize("sizes, kind", [((), "cuda"), ((24,), "cuda"), ((64,), "mps")], ids=["cpu", "one-gpu", "mac"])
def test_a_machine_without_several_gpus_is_not_offered_the_choice(page, summary, sizes, kind):
    page.studio.set_machine_summary(gpus(summary, *sizes, kind=kind))
    assert not page.gpu_choice.isVisible()
    assert page.studio.config.run.num_processes == 1


def detected(monkeypatch, *sizes_gb: int) -> MachineSummary:
    """The summary of a machine whose detection finds NVIDIA GPUs of ``sizes_gb`` (the desktop holding
    0.5 GB of each), a CPU and 64 GB of RAM."""
    cards = tuple(
        detect.DeviceInfo("cuda", i, f"Test {size} GB", size * GIB, int((size - 0.5) * GIB), compute_capability=(8, 9))
        for i, size in enumerate(sizes_gb)
    )
    cpu = detect.DeviceInfo("cpu", 0, "x86_64", 64 * GIB, 48 * GIB)
    machine = detect.MachineInfo((*cards, cpu), 64 * GIB, 48 * GIB, 500 * GIB, 500 * GIB, "TestOS", "3.11")
    monkeypatch.setattr(detect, "detect_machine", lambda output_dir=None: machine)
    return hardware_adapter.summarize()


def settings_of(page) -> dict:
    flat = page.studio.config.to_dict()
    keys = ("base_model_precision", "lora_rank", "resolution", "blocks_to_swap", "num_processes", "model_flavour")
    return {key: flat[key] for key in keys}


@NEEDS_NCCL
def test_settings_that_stream_take_the_all_gpus_recommendation_and_say_why(page, qtbot, monkeypatch):
    summary = detected(monkeypatch, 8, 8)
    page.studio.set_machine_summary(summary)  # a fresh project takes the one-GPU recommendation
    page.studio.edit_setting("model_flavour", "hd")
    streaming = settings_of(page)
    assert streaming["blocks_to_swap"] > 0 and streaming["num_processes"] == 1
    on_all = summary.all_gpus.settings
    notes = []
    page.note_posted.connect(notes.append)
    page.gpu_choice.click()
    assert settings_of(page) == {
        **{key: on_all[key] for key in ("base_model_precision", "lora_rank", "resolution")},
        "blocks_to_swap": 0,
        "num_processes": 2,
        "model_flavour": "hd",  # the model stays the user's
    }
    assert notes == [summary.all_gpus.description]
    assert notes[0].startswith("Several GPUs need a setting that fits without streaming")
    assert page.gpu_choice.isChecked() and not errors(page.studio.problems())  # a run validates
    chosen = settings_of(page)
    page.gpu_choice.click()  # back to one GPU: only num_processes changes
    assert settings_of(page) == {**chosen, "num_processes": 1}
    assert not page.gpu_choice.isChecked() and notes == [summary.all_gpus.description]


@NEEDS_NCCL
def test_settings_that_do_not_stream_change_only_num_processes(page, qtbot, monkeypatch):
    page.studio.set_machine_summary(detected(monkeypatch, 8, 8))
    page.studio.update_settings(blocks_to_swap=0, resolution=512, base_model_precision="int4-quanto")
    before = settings_of(page)
    notes = []
    page.note_posted.connect(notes.append)
    page.gpu_choice.click()
    assert settings_of(page) == {**before, "num_processes": 2}
    assert notes == []


@NEEDS_NCCL
def test_gpus_that_fit_nothing_without_streaming_have_the_choice_off_and_say_why(page, qtbot, monkeypatch):
    summary = detected(monkeypatch, 6, 6)
    page.studio.set_machine_summary(summary)
    choice = page.gpu_choice
    assert summary.all_gpus is not None and not summary.all_gpus.fits
    assert choice.isVisible() and not choice.isEnabled()
    assert choice.toolTip() == summary.all_gpus.description
    assert choice.toolTip().startswith("No setting fits one of these GPUs without streaming blocks from RAM")
    choice.click()
    assert page.studio.config.run.num_processes == 1 and not choice.isChecked()
    page.studio.edit_setting("num_processes", 2)  # set by hand in the form: the box can still undo it
    assert choice.isChecked() and choice.isEnabled()
    choice.click()
    assert page.studio.config.run.num_processes == 1 and not choice.isEnabled()
