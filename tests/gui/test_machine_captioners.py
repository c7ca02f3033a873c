"""The Machine & model page lists the downloaded captioners with their size, and deletes one after asking."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chroma_studio.gui.dataset.auto_caption_models import EMPTY_TEXT, CaptionersBox
from chroma_studio.gui.pages.machine import MachinePage
from chroma_studio.gui.studio import Studio


def cache_repo(hub: Path, repo_id: str, files: dict[str, int]) -> Path:
    """A model repository laid out as huggingface_hub caches it: blobs, a snapshot of links, refs/main."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()  # each repository its own, as on the Hub
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for index, (name, size) in enumerate(files.items()):
        blob = repo / "blobs" / f"{index:040x}"
        blob.write_bytes(b"\0" * size)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return repo


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf-home"
    hub = home / "hub"
    hub.mkdir(parents=True)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    return hub


@pytest.fixture
def page(qtbot, hub):
    page = MachinePage(Studio(detector=None))
    qtbot.addWidget(page)
    return page


def shown(page: MachinePage) -> None:
    page.resize(1024, 640)
    page.show()


def test_lists_downloaded_captioners_with_their_size_and_nothing_else(page, qtbot, hub):
    cache_repo(hub, "florence-community/Florence-2-large", {"model.safetensors": 300_000, "tokenizer.json": 20_000})
    cache_repo(hub, "Qwen/Qwen2.5-VL-3B-Instruct", {"model.safetensors": 1_000_000})
    cache_repo(hub, "lodestones/Chroma1-Base", {"model.safetensors": 50_000})  # not a captioner: not listed
    shown(page)
    box = page.captioners_box
    assert set(box.delete_buttons) == {"florence-2-large", "qwen2.5-vl-3b"}
    labels = [box.rows.itemAtPosition(row, 0).widget().text() for row in range(2)]
    assert "Florence-2 large" in labels[0] and "0.3 MB" in labels[0]
    assert "Qwen2.5-VL 3B" in labels[1] and "1.0 MB" in labels[1]
    assert "2 captioners downloaded, 1.3 MB on disk" in box.summary_label.text()


def test_delete_asks_first_and_removes_only_that_captioner(page, qtbot, hub, monkeypatch):
    florence = cache_repo(hub, "florence-community/Florence-2-large", {"model.safetensors": 300_000})
    qwen = cache_repo(hub, "Qwen/Qwen2.5-VL-3B-Instruct", {"model.safetensors": 1_000_000})
    shown(page)
    box = page.captioners_box
    answers = []
    monkeypatch.setattr(CaptionersBox, "confirm_delete", lambda self, found: answers.pop(0))

    answers.append(False)  # the user cancels
    qtbot.mouseClick(box.delete_buttons["qwen2.5-vl-3b"], Qt.MouseButton.LeftButton)
    assert (qwen / "blobs").exists() and set(box.delete_buttons) == {"florence-2-large", "qwen2.5-vl-3b"}

    answers.append(True)
    with qtbot.waitSignal(box.deleted) as deleted:
        qtbot.mouseClick(box.delete_buttons["qwen2.5-vl-3b"], Qt.MouseButton.LeftButton)
    assert deleted.args == ["qwen2.5-vl-3b", 1_000_000]
    assert not any((qwen / "blobs").glob("*")), "its files are gone"
    assert (florence / "blobs").exists() and any((florence / "blobs").iterdir()), "the other one is kept"
    assert set(box.delete_buttons) == {"florence-2-large"}
    assert box.summary_label.text().startswith("Deleted Qwen2.5-VL 3B: 1.0 MB freed.")


def test_an_empty_cache_says_where_captioners_come_from(page, hub):
    shown(page)
    assert page.captioners_box.summary_label.text() == EMPTY_TEXT
    assert not page.captioners_box.delete_buttons


def test_names_the_captioner_recommended_for_the_machine(page):
    from chroma_studio.base.units import GiB
    from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary

    assert "Florence-2 large" in page.captioners_box.recommendation_label.text(), "no machine known: a CPU"
    page.studio.set_machine_summary(
        MachineSummary(devices=(DeviceInfo("NVIDIA RTX 4090", "cuda", 24 * GiB, 23 * GiB),), ram_total=64 * GiB)
    )
    assert "JoyCaption" in page.captioners_box.recommendation_label.text()
