"""Jobs besides training in the engine process: the dataset check, and a job the engine does not know."""

from __future__ import annotations

import json
import shutil
import subprocess

from support import engine_processes

from chroma_studio.protocol import events as ev
from chroma_studio.protocol.jobs import DatasetCheckJob
from chroma_studio.protocol.remote import RemoteControl, child_command, run_in_process


def damage_and_duplicate(folder):
    """Cut coffee.jpg short (its header still reads) and copy astronaut.jpg under another name."""
    data = (folder / "coffee.jpg").read_bytes()
    (folder / "coffee.jpg").write_bytes(data[: len(data) // 3])
    shutil.copy(folder / "astronaut.jpg", folder / "astronaut copy.jpg")
    return folder


def test_the_dataset_check_runs_in_the_engine_process_with_progress_and_findings(small_dataset, events):
    folder = damage_and_duplicate(small_dataset)

    result = run_in_process(DatasetCheckJob((str(folder),), 512), events)

    assert isinstance(result, ev.DatasetChecked) and not result.cancelled
    assert result.images == 5
    codes = {(finding.path.name if finding.path else None, finding.code) for finding in result.findings}
    assert ("coffee.jpg", "corrupt") in codes
    duplicate = next(finding for finding in result.findings if finding.code == "exact-duplicate")
    assert {duplicate.path.name, *(path.name for path in duplicate.related)} == {"astronaut.jpg", "astronaut copy.jpg"}
    progress = events.of(ev.Progress)
    assert progress and progress[-1] == ev.Progress("Checking images", 5, 5, "images")
    assert not events.of(ev.Failed)
    assert not engine_processes()


def test_a_stopped_dataset_check_hands_back_what_it_found_until_then(small_dataset, events):
    control = RemoteControl()
    control.stop()  # given before the process is up: it stops as soon as it starts

    result = run_in_process(DatasetCheckJob((str(small_dataset),)), events, control)

    assert isinstance(result, ev.DatasetChecked) and result.cancelled
    assert len(events.of(ev.Progress)) < 4  # not every image was checked
    assert not events.of(ev.Failed)
    assert not engine_processes()


def test_a_job_the_engine_does_not_know_is_refused_with_a_clear_message():
    process = subprocess.run(
        child_command(), input=json.dumps({"job": "upscale", "folders": []}).encode() + b"\n", capture_output=True
    )
    lines = [json.loads(line) for line in process.stdout.splitlines()]
    failure, result = ev.from_message(lines[0]), lines[1]
    assert isinstance(failure, ev.Failed)
    expected = "cannot run: unknown job 'upscale': the engine runs caption, check-dataset, export, prepare, train"
    assert expected in failure.message
    assert result == {"type": "Result", "value": None}
    assert process.returncode == 2
