"""The Qwen2.5-VL captioners' path, driven end to end on ``demo-qwen``: a tiny random
``Qwen2_5_VLForConditionalGeneration`` with its tokenizer, image processor and chat template built
in code, loaded and prompted by the code that loads the downloaded Qwen2.5-VL 3B and 7B."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.dataset.captioners import captioner, captioner_names
from chroma_studio.protocol.events import CaptioningFinished, CaptionMade, CaptionSkipped
from chroma_studio.protocol.jobs import CaptionJob
from chroma_studio.training.captioning import model as captioning_model
from chroma_studio.training.captioning import run_captioning
from chroma_studio.training.captioning.demo import VOCABULARY, ensure_demo_captioner
from chroma_studio.training.captioning.demo_qwen import MERGE
from chroma_studio.training.captioning.prompts import SYSTEM_PROMPT, conversation, requests_for
from chroma_studio.training.captioning.qwen_inputs import IMAGE_TOKEN, QwenInputs
from chroma_studio.training.errors import TrainingError

WORDS = set(VOCABULARY.split())


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    paths = []
    for index, (size, color) in enumerate([((97, 61), (200, 30, 30)), ((40, 120), (30, 200, 30)), ((64, 64), "blue")]):
        path = tmp_path / f"image{index}.png"
        Image.new("RGB", size, color).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def folder() -> Path:
    return ensure_demo_captioner("demo-qwen")


def test_demo_qwen_is_a_hidden_demo_of_the_qwen_class(folder):
    from transformers import AutoConfig

    entry = captioner("demo-qwen")
    assert entry.demo and entry.family == "qwen2_5_vl" and entry.model_class == captioner("qwen2.5-vl-3b").model_class
    assert "demo-qwen" in captioner_names() and "demo-qwen" not in captioner_names(include_demo=False)
    assert AutoConfig.from_pretrained(folder).model_type == "qwen2_5_vl"
    assert not list(folder.glob("*.bin")) and (folder / "model.safetensors").is_file()
    # named as in the Qwen repositories; transformers picks its Pillow or torchvision implementation
    assert json.loads((folder / "preprocessor_config.json").read_text())["image_processor_type"] == (
        "Qwen2VLImageProcessor"
    )
    # the real Qwen captioners no longer refuse to start without torchvision
    assert captioner("qwen2.5-vl-3b").requires == () and captioner("qwen2.5-vl-7b").requires == ()


@pytest.mark.parametrize("style", ["natural", "tags", "both"])
@pytest.mark.parametrize("length", ["short", "long"])
def test_each_prompt_goes_through_the_chat_template_with_the_image_in_place(folder, style, length):
    feeder = QwenInputs(folder)
    image = Image.new("RGB", (97, 61), "white")
    requests = requests_for("qwen2_5_vl", style, length)
    assert [r.kind for r in requests] == {"natural": ["sentences"], "tags": ["tags"], "both": ["sentences", "tags"]}[
        style
    ]
    for request in requests:
        prompt = feeder.prompt(conversation("qwen2_5_vl", request.prompt))
        assert prompt == (
            f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
            f"<|vision_start|>{IMAGE_TOKEN}<|vision_end|>{request.prompt}<|im_end|>\n<|im_start|>assistant\n"
        )
        inputs = feeder(prompt, image)
        grid = inputs["image_grid_thw"][0].tolist()
        patches = grid[0] * grid[1] * grid[2]
        image_tokens = int((inputs["input_ids"] == feeder.image_token_id).sum())
        assert image_tokens == patches // MERGE**2 > 1
        assert inputs["pixel_values"].shape[0] == patches
        assert inputs["mm_token_type_ids"].tolist() == (inputs["input_ids"] == feeder.image_token_id).long().tolist()
        assert inputs["attention_mask"].sum() == inputs["input_ids"].shape[1]


def test_the_image_tokens_get_the_models_3d_positions(folder):
    """Without the image-token marks the model silently falls back to 1-D positions."""
    import torch

    from chroma_studio.training.captioning.model import LoadedCaptioner, Placement

    loaded = LoadedCaptioner(captioner("demo-qwen"), folder, Placement("cpu", "fp32"))
    inputs = loaded.processor(loaded.processor.prompt(conversation("qwen2_5_vl", "x")), Image.new("RGB", (97, 61)))
    positions, deltas = loaded.model.model.get_rope_index(
        inputs["input_ids"],
        image_grid_thw=inputs["image_grid_thw"],
        attention_mask=inputs["attention_mask"],
        mm_token_type_ids=inputs["mm_token_type_ids"],
    )
    image = inputs["input_ids"][0] == loaded.processor.image_token_id
    grid = inputs["image_grid_thw"][0].tolist()
    # height and width positions span the merged grid; the text after the image continues from its end
    assert positions[1, 0, image].unique().numel() == grid[1] // MERGE
    assert positions[2, 0, image].unique().numel() == grid[2] // MERGE
    assert int(deltas[0]) < 0
    with torch.inference_mode():
        answer = loaded.ask(Image.new("RGB", (97, 61), "red"), requests_for("qwen2_5_vl", "natural", "short")[0])
    assert answer and set(answer.replace(",", " ").replace(".", " ").split()) <= WORDS


def test_the_qwen_path_captions_every_image_in_both_styles_and_skips_a_corrupt_one(images, tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    asked: list[str] = []
    original = captioning_model.LoadedCaptioner.ask

    def spy(self, image, request):
        asked.append(request.kind)
        return original(self, image, request)

    monkeypatch.setattr(captioning_model.LoadedCaptioner, "ask", spy)
    job = CaptionJob(
        images=(images[0], str(corrupt), *images[1:]), model="demo-qwen", style="both", trigger="sks", class_word="dog"
    )
    events: list = []
    result = run_captioning(job, events.append)

    made = [e for e in events if isinstance(e, CaptionMade)]
    skipped = [e for e in events if isinstance(e, CaptionSkipped)]
    assert [m.image for m in made] == images and [m.index for m in made] == [0, 2, 3]
    assert asked == ["sentences", "tags"] * 3  # "both": the description, then the tags, per readable image
    for caption in (m.caption for m in made):
        assert caption.startswith("sks")  # no "a dog" in gibberish: the trigger goes first
        assert set(caption.replace(",", " ").replace(".", " ").split()) <= WORDS | {"sks"}
        assert "," in caption  # the tags follow the sentences
    assert [s.image for s in skipped] == [str(corrupt)] and "cannot be decoded" in skipped[0].reason
    assert [e for e in events if isinstance(e, CaptioningFinished)] == [result]
    assert (result.made, result.skipped, result.cancelled) == (3, 1, False)


def test_a_folder_with_the_processors_chat_template_json_loads(folder, tmp_path):
    """The downloaded Qwen repositories keep the template in chat_template.json, not the tokenizer."""
    copy = tmp_path / "qwen"
    shutil.copytree(folder, copy)
    template = (copy / "chat_template.jinja").read_text(encoding="utf-8")
    (copy / "chat_template.jinja").unlink()
    config = json.loads((copy / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (copy / "chat_template.json").write_text(json.dumps({"chat_template": template}), encoding="utf-8")
    feeder = QwenInputs(copy)
    assert feeder.prompt(conversation("qwen2_5_vl", "hello")).endswith("hello<|im_end|>\n<|im_start|>assistant\n")


def test_a_torchvision_built_for_another_torch_is_named_not_a_traceback(tmp_path, monkeypatch, folder):
    broken = tmp_path / "site" / "torchvision"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(__import__("sys").modules, "torchvision", raising=False)
    with pytest.raises(TrainingError, match="torchvision does not work with torch") as caught:
        run_captioning(CaptionJob(images=("x.png",), model="demo-qwen"), lambda e: None)
    assert "torchvision::nms" in str(caught.value) and "uninstall" in caught.value.hint


def test_a_captioner_whose_packages_are_missing_says_what_to_install(monkeypatch):
    from chroma_studio.training.captioning import runner

    needy = dataclasses.replace(captioner("demo-qwen"), requires=("no_such_package_here",))
    monkeypatch.setattr(runner, "captioner", lambda name: needy)
    with pytest.raises(TrainingError, match="needs no_such_package_here") as caught:
        run_captioning(CaptionJob(images=("x.png",), model="demo-qwen"), lambda e: None)
    assert "pip install no_such_package_here" in caught.value.hint


def test_the_command_line_captions_a_folder_with_the_qwen_demo(tmp_path, monkeypatch, capsys):
    """Through the engine process and the app's writer, as ``--model qwen2.5-vl-7b`` runs."""
    from chroma_studio.cli import main

    monkeypatch.setenv("CHROMA_STUDIO_DATA_DIR", str(tmp_path / "app-data"))
    root = tmp_path / "photos"
    root.mkdir()
    for index, name in enumerate(["a.png", "b.jpg"]):
        Image.new("RGB", (80 + 24 * index, 64), (60 * index, 120, 200)).save(root / name)
    argv = ["dataset", "caption", str(root), "--model", "demo-qwen", "--style", "both", "--trigger", "sks"]
    assert main(argv) == 0
    assert sorted(p.name for p in root.iterdir()) == ["a.png", "a.txt", "b.jpg", "b.txt"]
    for caption in (root / "a.txt", root / "b.txt"):
        text = caption.read_text(encoding="utf-8")
        assert text.startswith("sks, ") and set(text.replace(",", " ").replace(".", " ").split()) <= WORDS | {"sks"}
    assert "Wrote 2 captions" in capsys.readouterr().out
