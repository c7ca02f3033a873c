"""The Train page's Past runs list: each run says how far it went and when it started, read cheaply
from its folder; opening one still opens that folder."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chroma_studio.base import run_folder as runs
from chroma_studio.gui.pages.train import TrainPage
from chroma_studio.gui.run_controller import RunController
from chroma_studio.gui.studio import Studio

LORA_FILE = "pytorch_lora_weights.safetensors"  # the engine's final LoRA (training/export.py)
STARTED = datetime(datetime.now().year, 11, 29, 20, 16)


def make_run(
    root: Path, name: str, total: int | None, steps: int, lora: bool = False, started: datetime = STARTED
) -> Path:
    """A run folder as the engine leaves it: config.json, metrics.jsonl, checkpoints, the LoRA file."""
    run = root / name
    run.mkdir(parents=True)
    config = run / runs.CONFIG
    config.write_text(json.dumps({"config_version": 1, "max_train_steps": total, "lora_rank": 16}, indent=2))
    with open(run / runs.METRICS, "w", encoding="utf-8") as metrics:
        for step in range(1, steps + 1):
            record = {"step": step, "loss": 0.31, "lr": 1e-4, "sigma": [0.52], "seconds": 0.5, "epoch": 0}
            metrics.write(json.dumps(record) + "\n")
    if steps:
        checkpoint = run / runs.CHECKPOINTS / f"step_{steps}"
        checkpoint.mkdir(parents=True)
        (checkpoint / runs.CHECKPOINT_STATE).write_text("{}")
    if lora:  # written at the end of a run, also one that was stopped
        (run / LORA_FILE).write_bytes(b"\0" * 16)
    os.utime(config, (started.timestamp(), started.timestamp()))
    return run


@pytest.fixture
def page(qtbot, settings):
    page = TrainPage(Studio(settings, detector=None))
    qtbot.addWidget(page)
    page.resize(1200, 760)
    page.show()
    return page


def listed(page: TrainPage) -> list[str]:
    return [page.runs_list.item(row).text() for row in range(page.runs_list.count())]


def test_each_past_run_says_how_far_it_went_and_when(page, tmp_path):
    made = [
        make_run(tmp_path, "sks-20261129-201647", 400, 19, lora=True),
        make_run(tmp_path, "sks-20261129-203000", 1000, 1000, lora=True),
        make_run(tmp_path, "sks-20261129-204500", 400, 0),
        make_run(tmp_path, "by-epochs", None, 30),
        make_run(tmp_path, "last-year", 200, 200, lora=True, started=STARTED.replace(year=STARTED.year - 1)),
    ]
    for run in made:
        page.studio.session.add_run(str(run))
    assert listed(page) == [
        f"last-year\nfinished, 200 steps · 29 Nov {STARTED.year - 1} 20:16",
        "by-epochs\nstopped at step 30 · 29 Nov 20:16",
        "sks-20261129-204500\nnot started · 29 Nov 20:16",
        "sks-20261129-203000\nfinished, 1000 steps · 29 Nov 20:16",
        "sks-20261129-201647\nstopped at step 19 of 400 · 29 Nov 20:16",
    ]
    items = [page.runs_list.item(row) for row in range(page.runs_list.count())]
    assert [item.data(Qt.ItemDataRole.UserRole) for item in items] == [str(run) for run in reversed(made)]
    assert [item.toolTip() for item in items] == [str(run) for run in reversed(made)]


def test_a_long_metrics_file_is_read_from_its_end(page, tmp_path, monkeypatch):
    run = make_run(tmp_path, "sks-long", 200_000, 100_000)
    with open(run / runs.METRICS, "a", encoding="utf-8") as metrics:
        metrics.write('{"step": 100001, "loss": 0.3')  # cut short by a crash
    monkeypatch.setattr(runs, "read_metrics", lambda run_dir: pytest.fail("parsed the whole metrics file"))
    page.studio.session.add_run(str(run))
    assert listed(page) == ["sks-long\nstopped at step 100000 of 200000 · 29 Nov 20:16"]


def test_a_metrics_file_without_a_whole_record_near_its_end_is_read_whole(tmp_path):
    run = make_run(tmp_path, "sks-odd", 400, 7)
    with open(run / runs.METRICS, "a", encoding="utf-8") as metrics:
        metrics.write("x" * 20_000 + "\n")  # a damaged line longer than the part read from the end
    assert runs.last_metrics_step(run) == 7


def test_opening_a_run_from_the_list_opens_its_folder(qtbot, page, tmp_path):
    page.studio.session.add_run(str(make_run(tmp_path, "sks-20261129-201647", 400, 19, lora=True)))
    page.studio.session.add_run(str(make_run(tmp_path, "sks-20261129-203000", 1000, 1000, lora=True)))
    model = page.controller.model
    with qtbot.waitSignal(model.run_finished):
        page.runs_list.itemActivated.emit(page.runs_list.item(1))
    assert model.reopened and model.status == "stopped"
    assert (model.step, model.total_steps) == (19, 400)
    assert page.stack.currentWidget() is page.run_view


def test_a_resumed_run_is_listed_as_training_now(page, tmp_path, monkeypatch):
    run = make_run(tmp_path, "sks-20261129-201647", 400, 19, lora=True)
    page.studio.session.add_run(str(run))
    monkeypatch.setattr(RunController, "running", property(lambda controller: True))
    page.controller.model.output_dir = str(run)
    page.controller.run_started.emit(str(run))
    assert listed(page) == ["sks-20261129-201647\ntraining now · 29 Nov 20:16"]
