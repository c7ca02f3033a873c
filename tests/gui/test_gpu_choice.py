"""The Train page's "Use all N GPUs": shown on a machine with several GPUs, and it sets num_processes."""

from __future__ import annotations

import sys

import pytest

from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary
from chroma_studio.gui.pages.train import TrainPage
from chroma_studio.gui.studio import Studio

GIB = 1024**3


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


@pytest.mark.skipif(sys.platform == "win32", reason="no NCCL on Windows: the choice is never offered there")
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
