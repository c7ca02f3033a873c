"""The captioner catalogue: its facts, the recommendation per machine, and the downloaded ones in
a real Hugging Face cache layout (scanned and deleted by huggingface_hub itself)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from chroma_studio.dataset.captioners import (
    CAPTIONERS,
    GB,
    GIB,
    UnknownCaptioner,
    captioner,
    captioner_names,
    delete_captioner,
    describe_download,
    downloaded_captioners,
    recommend_captioner,
    total_size,
)


def test_every_real_captioner_is_a_native_transformers_class_with_a_hub_repo():
    import transformers

    for c in CAPTIONERS.values():
        assert hasattr(transformers, c.model_class), c.name  # loadable without remote code
        assert c.styles and set(c.styles) <= {"natural", "tags", "both"}
        assert c.memory and all(need > 0 for need in c.memory.values())
        assert c.license.name and c.license.url.startswith("https://")
        if not c.demo:
            assert "/" in c.repo_id and c.size_bytes > 1 * GB


def test_the_set_has_a_fast_cpu_captioner_and_detailed_gpu_ones():
    assert captioner("florence-2-large").repo_id.startswith("florence-community/")
    assert captioner("florence-2-large").runs_on_cpu
    assert captioner("joycaption-beta-one").model_class == "LlavaForConditionalGeneration"
    assert "Llama 3.1" in captioner("joycaption-beta-one").license.name
    assert captioner("qwen2.5-vl-7b").license.name == "Apache-2.0"
    assert not captioner("qwen2.5-vl-3b").license.commercial_use
    assert captioner_names(include_demo=False) == [n for n in CAPTIONERS if not CAPTIONERS[n].demo]
    assert "demo" in captioner_names()


def test_florence_says_why_it_writes_no_tags():
    florence = captioner("florence-2-large")
    assert florence.style_problem("natural") is None
    for style in ("tags", "both"):
        problem = florence.style_problem(style)
        assert problem is not None and "cannot write" in problem and "Qwen2.5-VL or JoyCaption" in problem
    assert captioner("demo").style_problem("both") is None
    assert "not a caption style" in str(captioner("demo").style_problem("haiku"))


def test_an_unknown_name_lists_the_names_there_are():
    with pytest.raises(UnknownCaptioner, match="florence-2-large"):
        captioner("blip")


@pytest.mark.parametrize(
    ("device", "memory", "name", "dtype"),
    [
        ("cpu", 64 * GIB, "florence-2-large", "fp32"),  # a CPU never gets a 3-8B model
        ("mps", 64 * GIB, "florence-2-large", "fp16"),
        ("cuda", 24 * GIB, "joycaption-beta-one", "bf16"),
        ("cuda", 12 * GIB, "joycaption-beta-one", "nf4"),  # the better model quantized beats a lesser one
        ("cuda", 8 * GIB, "qwen2.5-vl-7b", "nf4"),
        ("cuda", 4 * GIB, "florence-2-large", "fp16"),
        ("rocm", 12 * GIB, "qwen2.5-vl-3b", "bf16"),  # no bitsandbytes: the best that fits in bf16
        ("rocm", 8 * GIB, "florence-2-large", "fp16"),
        ("rocm", 24 * GIB, "joycaption-beta-one", "bf16"),
    ],
)
def test_the_recommendation_follows_the_memory(device, memory, name, dtype):
    choice = recommend_captioner(device, memory)
    assert (choice.name, choice.dtype) == (name, dtype)
    assert choice.reason
    if device in ("cuda", "rocm") and name != "florence-2-large":
        assert CAPTIONERS[name].memory[dtype] <= memory


def test_describe_download_gives_size_and_license():
    text = describe_download("joycaption-beta-one")
    assert "17.0 GB" in text and "Llama 3.1 Community License" in text
    assert "forbid commercial use" in describe_download("qwen2.5-vl-3b")
    assert "nothing to download" in describe_download("demo")


def _fake_hub_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """A repository as huggingface_hub lays it out in its cache: blobs, a snapshot of links, a ref."""
    root = cache / ("models--" + repo_id.replace("/", "--"))
    revision = hashlib.sha1(repo_id.encode()).hexdigest()  # a commit hash of its own
    for name, data in files.items():
        blob = root / "blobs" / f"{abs(hash((repo_id, name))):x}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / revision / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("..", "..", "blobs", blob.name))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)


def test_downloaded_captioners_are_listed_with_their_size_and_deleted(tmp_path):
    cache = tmp_path / "hub"
    _fake_hub_repo(
        cache, "florence-community/Florence-2-large", {"model.safetensors": b"x" * 3000, "config.json": b"{}"}
    )
    _fake_hub_repo(cache, "fancyfeast/llama-joycaption-beta-one-hf-llava", {"model.safetensors": b"y" * 5000})
    _fake_hub_repo(cache, "lodestones/Chroma1-Base", {"model.safetensors": b"z" * 7000})  # not a captioner

    found = downloaded_captioners(cache)
    assert [d.captioner.name for d in found] == ["florence-2-large", "joycaption-beta-one"]
    assert [d.size_bytes for d in found] == [3002, 5000]
    assert total_size(found) == 8002

    assert delete_captioner("florence-2-large", cache) == 3002
    assert [d.captioner.name for d in downloaded_captioners(cache)] == ["joycaption-beta-one"]
    assert (cache / "models--lodestones--Chroma1-Base").is_dir()  # other models are left alone
    assert delete_captioner("qwen2.5-vl-7b", cache) == 0  # not downloaded: nothing to do


def test_a_missing_cache_lists_nothing(tmp_path):
    assert downloaded_captioners(tmp_path / "nowhere") == []


def test_the_catalogue_is_torch_free():
    code = (
        "import sys, chroma_studio.dataset.captioners as c; c.recommend_captioner('cuda', 1); "
        "c.downloaded_captioners(); assert 'torch' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_missing_packages_are_named_before_a_download():
    import dataclasses

    needy = dataclasses.replace(captioner("qwen2.5-vl-7b"), requires=("json", "no_such_package_here"))
    assert needy.missing_packages() == ["no_such_package_here"]
    assert captioner("florence-2-large").missing_packages() == []
