"""The captioning job on the demo captioners: tiny random LLaVA and Florence-2 models of the real
transformers classes, built in code, run through the real loading, prompting and generation path
(in this process, and in the engine process as the app runs it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.dataset.caption_shaping import tidy
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import CaptioningFinished, CaptionMade, CaptionSkipped, Phase, PhaseChanged
from chroma_studio.protocol.jobs import CaptionJob
from chroma_studio.training.captioning import run_captioning
from chroma_studio.training.captioning.demo import VOCABULARY, ensure_demo_captioner
from chroma_studio.training.captioning.prompts import FLORENCE_TASKS, requests_for
from chroma_studio.training.errors import TrainingError


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    paths = []
    for index, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]):
        path = tmp_path / f"image{index}.png"
        Image.new("RGB", (96 + 16 * index, 72), color).save(path)
        paths.append(str(path))
    return paths


def _record(events: list) -> tuple[list[CaptionMade], list[CaptionSkipped], list[CaptioningFinished]]:
    made = [e for e in events if isinstance(e, CaptionMade)]
    skipped = [e for e in events if isinstance(e, CaptionSkipped)]
    finished = [e for e in events if isinstance(e, CaptioningFinished)]
    return made, skipped, finished


def test_the_demo_captions_every_image_and_skips_a_corrupt_one(images, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    job = CaptionJob(
        images=(images[0], str(corrupt), *images[1:]), model="demo", style="both", trigger="sks", prefix="photo"
    )
    events: list = []
    result = run_captioning(job, events.append)

    made, skipped, finished = _record(events)
    assert [m.image for m in made] == images
    assert [m.index for m in made] == [0, 2, 3, 4] and {m.total for m in made} == {5}
    words = set(VOCABULARY.split()) | {"photo", "sks"}
    for caption in (m.caption for m in made):
        assert caption.startswith("photo, sks, ")  # the prefix, then the trigger first (no class word)
        assert caption == tidy(caption)
        assert set(caption.replace(",", " ").replace(".", " ").split()) <= words
    assert [s.image for s in skipped] == [str(corrupt)]
    assert "cannot be decoded" in skipped[0].reason and "remove it" in skipped[0].reason
    assert finished == [result] and (result.made, result.skipped, result.cancelled) == (4, 1, False)


def test_the_florence_demo_runs_the_florence_path(images):
    from transformers import AutoConfig

    folder = ensure_demo_captioner("demo-florence")
    assert AutoConfig.from_pretrained(folder).model_type == "florence2"
    events: list = []
    result = run_captioning(CaptionJob(images=tuple(images[:2]), model="demo-florence", length="long"), events.append)
    made, _, _ = _record(events)
    assert result.made == 2 and all(m.caption for m in made)


def test_florence_refuses_tags_with_the_reason():
    with pytest.raises(TrainingError, match="cannot write the 'tags' style"):
        run_captioning(CaptionJob(images=("x.png",), model="demo-florence", style="tags"), lambda e: None)


def test_an_unknown_captioner_is_named():
    with pytest.raises(TrainingError, match="no captioner called 'Blip'"):
        run_captioning(CaptionJob(images=("x.png",), model="Blip"), lambda e: None)


def test_the_prompts_follow_style_and_length():
    assert [r.prompt for r in (requests_for("florence2", "natural", n)[0] for n in ("short", "medium", "long"))] == [
        FLORENCE_TASKS["short"],
        "<DETAILED_CAPTION>",
        "<MORE_DETAILED_CAPTION>",
    ]
    both = requests_for("llava", "both", "long")
    assert [r.kind for r in both] == ["sentences", "tags"]
    assert both[0].max_new_tokens > requests_for("llava", "natural", "short")[0].max_new_tokens
    with pytest.raises(ValueError, match="cannot write tags"):
        requests_for("florence2", "both", "short")


def _run_in_thread(job: CaptionJob, control: TrainingControl) -> tuple[threading.Thread, list, threading.Event]:
    events: list = []
    paused = threading.Event()

    def sink(event: object) -> None:
        events.append(event)
        if isinstance(event, PhaseChanged) and event.phase == Phase.PAUSED:
            paused.set()

    thread = threading.Thread(target=run_captioning, args=(job, sink, control), name="captioning")
    thread.start()
    return thread, events, paused


def test_pause_after_waits_until_resumed(images):
    control = TrainingControl()
    thread, events, paused = _run_in_thread(CaptionJob(images=tuple(images), model="demo", pause_after=2), control)
    try:
        assert paused.wait(120)
        time.sleep(0.5)  # paused: nothing more is made meanwhile
        assert len(_record(events)[0]) == 2 and thread.is_alive()
        control.resume()
    finally:
        control.resume()
        thread.join(120)
    made, _, finished = _record(events)
    assert len(made) == 4 and finished[0].made == 4 and not finished[0].cancelled


def test_stop_while_paused_keeps_what_was_made(images):
    control = TrainingControl()
    thread, events, paused = _run_in_thread(CaptionJob(images=tuple(images), model="demo", pause_after=1), control)
    try:
        assert paused.wait(120)
    finally:
        control.stop()
        thread.join(120)
    made, _, finished = _record(events)
    assert [m.image for m in made] == images[:1]
    assert finished[0].made == 1 and finished[0].cancelled


def test_a_stop_between_images_ends_the_job(images):
    control = TrainingControl()
    events: list = []

    def sink(event: object) -> None:
        events.append(event)
        if isinstance(event, CaptionMade):
            control.stop()

    result = run_captioning(CaptionJob(images=tuple(images), model="demo"), sink, control)
    assert len(_record(events)[0]) == 1 and result.cancelled and result.made == 1


def test_the_engine_process_runs_the_job_with_pause_and_resume(images):
    from chroma_studio.protocol.remote import RemoteControl, run_in_process

    control = RemoteControl()
    events: list = []

    def sink(event: object) -> None:
        events.append(event)
        if isinstance(event, PhaseChanged) and event.phase == Phase.PAUSED:
            control.resume()  # as the app's Accept does

    job = CaptionJob(images=tuple(images[:3]), model="demo", style="tags", trigger="sks", pause_after=1)
    result = run_in_process(job, sink, control)
    made, _, _ = _record(events)
    assert isinstance(result, CaptioningFinished) and result.made == 3 and not result.cancelled
    assert [m.image for m in made] == images[:3] and all(m.caption.startswith("sks, ") for m in made)
    assert any(isinstance(e, PhaseChanged) and e.phase == Phase.PAUSED for e in events)


def test_offline_without_the_model_fails_with_a_hint_and_makes_nothing(images):
    from huggingface_hub import constants

    from chroma_studio.training.errors import describe_failure

    if not constants.HF_HUB_OFFLINE:
        pytest.skip("the tests run offline (conftest sets HF_HUB_OFFLINE)")
    if (Path(constants.HF_HUB_CACHE) / "models--florence-community--Florence-2-large").exists():
        pytest.skip("Florence-2 is in this machine's model cache")
    events: list = []
    with pytest.raises(Exception) as caught:
        run_captioning(CaptionJob(images=tuple(images), model="florence-2-large"), events.append)
    failure = describe_failure(caught.value)
    assert "not downloaded" in failure.hint and "HF_ENDPOINT" in failure.hint
    assert not _record(events)[0]
    assert any("3.3 GB" in getattr(e, "message", "") and "MIT" in e.message for e in events)  # said before
