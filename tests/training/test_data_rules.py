"""Training judges each image by the dataset check's rules: same files left out, same words."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from PIL import Image
from support import copy_demo_images

from chroma_studio.dataset.checks import check_dataset
from chroma_studio.protocol import events as ev
from chroma_studio.training.data import load_examples

RESOLUTION = 512


def save_image(path: Path, size: tuple[int, int], caption: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(str(path.name))
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    image.save(path)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")
    return path


@pytest.fixture
def mixed(tmp_path) -> Path:
    folder = tmp_path / "mixed"
    save_image(folder / "good.png", (512, 512), "a red square with noise, seen from the front in daylight")
    save_image(folder / "dot.png", (1, 1), "a single pixel")
    save_image(folder / "small.png", (64, 64), "a small noisy square")
    save_image(folder / "empty_caption.png", (512, 512), "")
    save_image(folder / "uncaptioned.png", (512, 512))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    return folder


def test_training_and_the_check_agree_on_what_trains_and_say_it_in_the_same_words(make_config, mixed):
    report = check_dataset([mixed], resolution=RESOLUTION)
    image_findings = [f for f in report.findings if f.severity in ("error", "warning") and f.path is not None]
    image_findings = [f for f in image_findings if not f.code.startswith("captions-") and "duplicate" not in f.code]

    examples, warnings = load_examples(make_config(dataset_dirs=[str(mixed)], resolution=RESOLUTION))

    assert sorted(warnings) == sorted(str(f) for f in image_findings)
    left_out = {p for f in report.errors for p in (f.path, *f.related) if p is not None and p.suffix == ".png"}
    assert {p.name for p in left_out} == {"dot.png", "small.png", "broken.png"}
    trained = {e.image.name for e in examples}
    assert trained == {"good.png", "empty_caption.png", "uncaptioned.png"}
    [empty] = [w for w in warnings if "empty_caption" in w]
    assert "Add empty_caption.txt" not in empty and "is empty" in empty


def test_a_link_out_of_the_folder_trains_only_when_links_are_followed(make_config, tmp_path):
    folder = copy_demo_images(tmp_path / "linked")
    outside = save_image(tmp_path / "elsewhere" / "outside.png", (512, 512), "an image kept in another folder")
    try:
        (folder / "outside.png").symlink_to(outside)
    except OSError:
        pytest.skip("this system cannot make symbolic links")

    examples, warnings = load_examples(make_config(dataset_dirs=[str(folder)]))
    assert "outside.png" not in {e.image.name for e in examples}
    assert any("outside the dataset folder" in w for w in warnings)

    examples, _ = load_examples(make_config(dataset_dirs=[str(folder)], follow_links=True))
    assert "outside.png" in {e.image.name for e in examples}


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are Unicode")
def test_an_image_whose_name_is_not_utf8_trains_and_is_logged_readably(make_config, tmp_path, events):
    from chroma_studio.training.trainer import run_training

    folder = copy_demo_images(tmp_path / "odd")
    first = sorted(folder.glob("*.jpg"))[0]
    name = os.fsdecode(b"caf\xe9.jpg")
    try:
        (folder / name).write_bytes(first.read_bytes())  # uncaptioned: its warning names the file
    except (OSError, UnicodeEncodeError):
        pytest.skip("this filesystem does not take file names that are not UTF-8")
    if name not in os.listdir(folder):
        pytest.skip("this filesystem changed the file name")

    config = make_config(dataset_dirs=[str(folder)], max_train_steps=1, validation_steps=0)
    result = run_training(config, events)

    assert result.status == "finished", result.failure
    images = len([p for p in folder.iterdir() if p.suffix == ".jpg"])
    assert events.of(ev.RunPlanned)[-1].images == images
    out = Path(config.run.output_dir)
    log = (out / "log.txt").read_bytes().decode("utf-8")  # valid UTF-8
    assert "caf\ufffd.jpg" in log
    assert all("caf\ufffd.jpg" in e.message for e in events.of(ev.LogMessage) if "caf" in e.message)
    assert not (out / ".chroma-studio.lock").exists()
