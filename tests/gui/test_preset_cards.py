"""Preset cards on the Train page: whole cards at the window's width, and a preset for other hardware
asks before it is applied."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from chroma_studio.gui.machine_info import PresetOption
from chroma_studio.hardware.presets import load_presets

GPU_12GB = PresetOption(
    "gpu-12gb",
    "12 GB card",
    "RTX 3060 12 GB / 4070 class. int4 (quanto) at 1024 px.",
    {"base_model_precision": "int4-quanto", "resolution": 1024, "lora_rank": 16},
    note="Needs a 12 GB NVIDIA or AMD card",
    fits=False,
    needs="a 12 GB NVIDIA or AMD card",
)


@pytest.fixture
def summary(summary):
    """The demo machine of conftest, offered a preset for a GPU it does not have too."""
    return dataclasses.replace(summary, presets=(*summary.presets, GPU_12GB))


def card_for(page, key: str):
    return next(card for card in page.cards.cards if card.option.key == key)


def card_label(card) -> QLabel:
    return card.findChild(QLabel, "presetCardText")


def button(dialog: QMessageBox, text: str):
    return next(b for b in dialog.buttons() if b.text().replace("&", "") == text)


def test_a_preset_for_other_hardware_asks_before_it_is_applied(qtbot, window):
    window.show_page("train")
    page = window.train_page
    card = card_for(page, "gpu-12gb")
    text = card_label(card).text()
    assert "Needs a 12 GB NVIDIA or AMD card" in text and "⚠" in text

    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    dialog = getattr(page, "fit_dialog", None)
    assert dialog is not None and dialog.isVisible()
    assert "needs a 12 GB NVIDIA or AMD card" in dialog.text()
    assert "This machine has no supported GPU (CPU only) and 16 GB of RAM" in dialog.text()
    assert window.session.config.data.resolution == 128 and window.session.preset == "recommended"
    assert not card.isChecked()  # nothing is applied while the question is open

    button(dialog, "Cancel").click()
    assert window.session.config.data.resolution == 128 and window.session.preset == "recommended"
    assert not card.isChecked()

    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    button(page.fit_dialog, "Use it anyway").click()
    assert window.session.config.data.resolution == 1024 and window.session.preset == "gpu-12gb"
    assert card.isChecked()


def test_a_preset_that_may_fit_is_applied_at_once(qtbot, window):
    page = window.train_page
    qtbot.mouseClick(card_for(page, "rank-8"), Qt.MouseButton.LeftButton)
    assert getattr(page, "fit_dialog", None) is None
    assert window.session.config.lora.lora_rank == 8 and window.session.preset == "rank-8"


def test_every_card_is_shown_whole_at_1280_px(qtbot, window):
    options = [
        PresetOption(p.key, p.name, p.description, dict(p.settings), f"Needs {p.name}", False, p.name)
        for p in load_presets()
    ]
    window.resize(1280, 820)
    window.show_page("train")
    page = window.train_page
    page.set_presets(options)
    qtbot.waitUntil(lambda: all(c.isVisible() for c in page.cards.cards))
    mac = card_for(page, "mac-16gb")
    assert "close other apps while training" in card_label(mac).text()
    for card in page.cards.cards:
        assert card.visibleRegion().boundingRect() == card.rect(), f"{card.option.title} is cut off"
        label = card_label(card)
        assert card.rect().contains(label.geometry()), f"{card.option.title}: text outside its card"
        assert label.height() >= label.heightForWidth(label.width()), f"{card.option.title}: text cut off"
