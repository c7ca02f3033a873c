"""Machine & model: devices and memory, the recommendation, the model choice and its download."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from chroma_studio.base.units import GiB as GB
from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary, PresetOption, describe_settings


def test_header_shows_machine_and_recommendation_and_opens_the_page(qtbot, window):
    header = window.header.machine
    assert "CPU only" in header.machine_label.text()
    assert "demo model" in header.recommendation_label.text() and "128 px" in header.recommendation_label.text()
    qtbot.mouseClick(header, Qt.MouseButton.LeftButton)
    assert window.current_page() == "machine"
    page = window.machine_page
    texts = [w.text() for w in page.findChildren(QLabel)]
    assert any("16 GB" in t for t in texts)  # system memory
    assert "real model is not practical" in page.reasons_label.text()


def test_gpu_machine_names_the_card_on_the_train_button(qtbot, window):
    summary = MachineSummary(
        devices=(DeviceInfo("NVIDIA GeForce RTX 4070", "cuda", 12 * GB, 11 * GB, "driver 550"),),
        ram_total=32 * GB,
        recommended=PresetOption("recommended", "Recommended", "", {"base_model_precision": "int8-quanto"}),
        reasons=("int8: bf16 needs 27.5 GB, you have 11 GB free.",),
    )
    window.set_machine_summary(summary)
    page = window.train_page
    # the settings are still the ones recommended before: the big button says it would change them
    assert page.recommended_button.text() == "Reset to the recommended settings and train"
    assert "RTX 4070 12 GB" in page.recommended_button.toolTip()
    window.machine_page.apply_button.click()
    assert page.recommended_button.text() == "Train with the recommended settings for your RTX 4070 12 GB"
    assert "RTX 4070" in window.header.machine.machine_label.text()
    assert "int8" in window.machine_page.reasons_label.text()


def test_recommendation_applies_to_the_project(qtbot, window):
    window.session.update(lora_rank=64)
    window.machine_page.apply_button.click()
    assert window.session.config.lora.lora_rank == 4  # the (demo) recommendation's rank
    assert window.session.preset == "recommended"
    assert "LoRA rank: rank 4" in describe_settings(window.summary.recommended.settings)


def test_flavour_and_local_files_choose_the_model(qtbot, window, tmp_path):
    page = window.machine_page
    page.flavour_buttons["hd"].click()
    assert window.session.config.model.model_flavour == "hd"
    transformer = tmp_path / "Chroma1-HD.safetensors"
    transformer.write_bytes(b"")
    page.local_button.click()
    assert page.local_path.isEnabled()
    page.local_path.setText(str(transformer))
    page.local_path.editingFinished.emit()
    model = window.session.config.model
    assert model.pretrained_model_name_or_path == str(transformer) and model.model_flavour == "hd"
    page.flavour_buttons["demo"].click()
    assert window.session.config.model.model_flavour == "demo"
    assert window.session.config.model.pretrained_model_name_or_path is None


def test_download_shows_progress_and_finishes(qtbot, window):
    window.show_page("machine")
    page = window.machine_page
    page.flavour_buttons["demo"].click()
    with qtbot.waitSignal(page.download_finished, timeout=120_000):
        page.download_button.click()
        assert page.cancel_button.isVisible() and not page.download_button.isEnabled()
    assert page.download_label.text() == "The model is ready on this machine."
    assert page.download_button.isEnabled() and not page.cancel_button.isVisible()


def test_download_progress_is_shown_in_bytes(qtbot, window):
    from chroma_studio.protocol.events import Progress

    page = window.machine_page
    page.download_bar.show()
    page._on_download_event_emitted(Progress("Downloading lodestones/Chroma1-Base", 3 * 10**9, 12 * 10**9, "B"))
    assert page.download_bar.value() == page.download_bar.maximum() // 4
    assert page.download_label.text() == "Downloading lodestones/Chroma1-Base: 3.00 GB of 12.00 GB"


def test_the_demo_model_is_built_not_downloaded(qtbot, window):
    page = window.machine_page
    page.flavour_buttons["demo"].click()
    assert page.download_button.text() == "Build the demo model"
    assert "needs no download" in page.download_button.toolTip()
    page.flavour_buttons["base"].click()
    assert page.download_button.text() == "Download the model now"


def test_the_flavour_the_recommendation_chose_is_marked_recommended(qtbot, window):
    page = window.machine_page
    marked = [flavour for flavour, button in page.flavour_buttons.items() if "recommended" in button.text()]
    assert marked == ["demo"]  # this CPU machine is recommended the demo model
    gpu = MachineSummary(
        devices=(DeviceInfo("NVIDIA GeForce RTX 4090", "cuda", 24 * GB, 23 * GB),),
        ram_total=64 * GB,
        recommended=PresetOption("recommended", "Recommended", "", {"base_model_precision": "int8-quanto"}),
    )
    window.set_machine_summary(gpu)
    marked = [flavour for flavour, button in page.flavour_buttons.items() if "recommended" in button.text()]
    assert marked == ["base"]  # no flavour in the recommendation: the default one


@pytest.mark.slow
def test_cancel_ends_a_download_stuck_on_a_stalled_connection(qtbot, window, silent_endpoint, monkeypatch):
    endpoint, connected = silent_endpoint
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # nothing can come from this endpoint anyway
    window.settings.hf_endpoint = endpoint
    page = window.machine_page
    page.flavour_buttons["base"].click()
    page.download_button.click()
    assert connected.wait(60), "the download never reached the endpoint"
    with qtbot.waitSignal(page.download_finished, timeout=30_000):
        began = time.monotonic()
        page.cancel_button.click()
    assert time.monotonic() - began < 15  # the process is ended, not waited on forever
    assert page.download_label.text() == "Cancelled."
    assert page.download_button.isEnabled() and not page.cancel_button.isVisible()
