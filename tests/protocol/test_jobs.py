"""Jobs cross to the engine process as one JSON line and come back equal; anything else is refused."""

from __future__ import annotations

import json

import pytest

from chroma_studio.protocol.control import Command, Request, TrainingControl
from chroma_studio.protocol.jobs import (
    CaptionJob,
    CaptionLength,
    CaptionStyle,
    DatasetCheckJob,
    EngineJob,
    ExportFormat,
    ExportJob,
    JobError,
    PrepareJob,
    TrainJob,
    job_from_message,
    job_kinds,
)

EXAMPLES = [
    TrainJob({"model_flavour": "demo", "dataset_dirs": ["/data/a b"], "output_dir": "/runs/x", "lora_rank": 4}),
    PrepareJob({"model_flavour": "hd", "pretrained_model_name_or_path": "C:\\models\\chroma «hd»"}),
    ExportJob("/runs/x", 40, ExportFormat.KOHYA),
    ExportJob("/runs/x"),
    DatasetCheckJob(("/data/a", "/data/b"), 512),
    CaptionJob(
        ("/data/a b/café.jpg", "/data/b.png"),
        "florence-2-large",
        CaptionStyle.BOTH,
        CaptionLength.LONG,
        trigger="sks",
        class_word="man",
        prefix="photo, ",
        pause_after=4,
    ),
]


@pytest.mark.parametrize("job", EXAMPLES, ids=lambda job: job.kind)
def test_every_job_survives_a_json_line(job):
    line = json.dumps(job.to_message())
    assert "\n" not in line
    back = job_from_message(json.loads(line))
    assert back == job and type(back) is type(job)


def test_every_kind_of_job_has_an_example_and_a_name_of_its_own():
    assert {job.kind for job in EXAMPLES} == set(job_kinds())
    assert job_kinds() == ["caption", "check-dataset", "export", "prepare", "train"]
    with pytest.raises(TypeError, match="two jobs named 'train'"):

        class Again(EngineJob, kind="train"):
            pass


def test_a_job_message_says_its_kind_and_plain_values():
    assert ExportJob("/runs/x", None, ExportFormat.KOHYA).to_message() == {
        "job": "export",
        "run_dir": "/runs/x",
        "step": None,
        "format": "kohya",
    }
    assert DatasetCheckJob(["/data"]).to_message() == {"job": "check-dataset", "folders": ["/data"], "resolution": 1024}


def test_an_export_format_given_as_its_name_is_the_enum():
    job = ExportJob("/runs/x", 3, "kohya")
    assert job.format is ExportFormat.KOHYA and job.format == "kohya"
    with pytest.raises(ValueError, match="'zip' is not a valid ExportFormat"):
        ExportJob("/runs/x", 3, "zip")


def test_an_unknown_job_is_refused_with_the_kinds_the_engine_runs():
    with pytest.raises(
        JobError, match=r"unknown job 'upscale': the engine runs caption, check-dataset, export, prepare, train"
    ):
        job_from_message({"job": "upscale", "folders": ["/data"]})
    with pytest.raises(JobError, match="unknown job None"):
        job_from_message({"config": {}})
    with pytest.raises(JobError, match="a job is a JSON object"):
        job_from_message(["train"])


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"job": "export"}, "a malformed 'export' job: missing 1 required positional argument: 'run_dir'"),
        ({"job": "export", "run_dir": "/r", "format": "zip"}, "format: 'zip' is not a valid ExportFormat"),
        ({"job": "train", "config": "config.json"}, "config: expected an object, got 'config.json'"),
        ({"job": "train", "config": {}, "resume": True}, "a malformed 'train' job: unknown field: resume"),
        ({"job": "check-dataset", "folders": "/data"}, "folders: expected a list, got '/data'"),
    ],
)
def test_a_malformed_job_is_refused_naming_the_field(message, words):
    with pytest.raises(JobError) as refused:
        job_from_message(message)
    assert words in str(refused.value)


def test_every_command_reaches_the_control_it_is_sent_to():
    control = TrainingControl()
    for name in ("pause", "sample", "save"):
        control.obey(Command(name))
    assert control.paused and control.take_requests() == {Request.SAMPLE, Request.SAVE}
    control.obey(Command.RESUME)
    assert not control.paused
    control.obey(Command.STOP)
    assert control.stop_requested
    assert [command.value for command in Command] == ["stop", "pause", "resume", "sample", "save"]
    assert {request.value for request in Request} <= {command.value for command in Command}
