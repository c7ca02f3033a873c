"""``chroma-studio dataset caption``: the demo captioner through the engine process, writing real
caption files through the app's writer."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.cli import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for index, name in enumerate(["a.png", "b.jpg", "sub/c.png"]):
        Image.new("RGB", (80 + 8 * index, 64), (40 * index, 120, 200)).save(root / name)
    return root


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "app-data"
    monkeypatch.setenv("CHROMA_STUDIO_DATA_DIR", str(path))
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_captions_are_written_only_where_missing_and_the_folder_gets_nothing_but_txt(folder, capsys):
    existing = "\ufeffmy own words\r\n".encode()
    (folder / "b.txt").write_bytes(existing)
    before = _files(folder)

    assert main(["dataset", "caption", str(folder), "--model", "demo", "--trigger", "sks"]) == 0

    after = _files(folder)
    new = set(after) - set(before)
    assert new == {"a.txt", "sub/c.txt"}  # nothing but the captions: no temporary or backup file
    assert all(after[name] == data for name, data in before.items())  # b.txt untouched, byte for byte
    for name in new:
        text = after[name].decode("utf-8")
        assert text.startswith("sks, ") and len(text.split()) > 2
    assert "Wrote 2 captions" in capsys.readouterr().out


def test_overwrite_keeps_the_replaced_captions_outside_the_dataset_and_they_restore(folder, data_dir, capsys):
    old = {"a.txt": codecs.BOM_UTF8 + b"first\r\nsecond\r\n", "sub/c.txt": b"plain old caption"}
    for name, data in old.items():
        (folder / name).write_bytes(data)

    assert main(["dataset", "caption", str(folder), "--model", "demo", "--overwrite"]) == 0

    err = capsys.readouterr().err
    backups = list((data_dir / "caption-backups").iterdir())
    assert len(backups) == 1 and str(backups[0]) in err
    assert _files(backups[0]) == old  # every replaced caption, byte for byte, in its place
    assert set(_files(folder)) == {"a.png", "a.txt", "b.jpg", "b.txt", "sub/c.png", "sub/c.txt"}
    rewritten = (folder / "a.txt").read_bytes()
    assert rewritten != old["a.txt"] and rewritten.startswith(codecs.BOM_UTF8) and rewritten.endswith(b"\r\n")

    for name, data in _files(backups[0]).items():  # restoring is a copy back
        (folder / name).write_bytes(data)
    assert {n: d for n, d in _files(folder).items() if n in old} == old


def test_a_dry_run_writes_nothing_and_says_what_would_happen(folder, data_dir, capsys):
    (folder / "a.txt").write_text("kept")
    before = _files(folder)
    assert main(["dataset", "caption", str(folder), "--model", "demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would caption 2 of 3 images" in out and "1 image already has a caption" in out
    assert "Nothing was written." in out
    assert _files(folder) == before and not data_dir.exists()

    # without --model: the captioner recommended for this machine, its download size and license said first
    assert main(["dataset", "caption", str(folder), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert " GB from " in out and "license:" in out and _files(folder) == before


def test_bad_usage_exits_2_with_the_reason(folder, capsys):
    assert main(["dataset", "caption", str(folder), "--model", "demo-florence", "--style", "tags"]) == 2
    assert "cannot write the 'tags' style" in capsys.readouterr().err
    assert main(["dataset", "caption", str(folder / "missing"), "--model", "demo"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["dataset", "caption", str(folder), "--model", "demo", "--class", "dog"]) == 2
    with pytest.raises(SystemExit):
        main(["dataset", "caption", str(folder), "--model", "demo", "--overwrite", "--only-missing"])
    assert not list(folder.rglob("*.txt"))


def test_an_unreadable_image_is_skipped_and_the_exit_status_says_so(folder, capsys):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["dataset", "caption", str(folder), "--model", "demo"]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert not (folder / "broken.txt").exists() and (folder / "a.txt").is_file()


@pytest.mark.slow
def test_an_interrupt_keeps_the_captions_written_and_leaves_no_partial_file(tmp_path, data_dir):
    root = tmp_path / "many"
    root.mkdir()
    for index in range(40):
        Image.new("RGB", (64, 48), (index * 6, 90, 160)).save(root / f"{index:02d}.png")
    env = {**os.environ, "CHROMA_STUDIO_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "chroma_studio", "dataset", "caption", str(root), "--model", "demo"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not list(root.glob("*.txt")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err.decode()
    written = sorted(root.glob("*.txt"))
    assert 1 <= len(written) < 40
    assert {p.suffix for p in root.iterdir()} == {".png", ".txt"}  # no temporary file left behind
    assert all(p.read_text().strip() for p in written)  # every caption file whole
    assert f"Wrote {len(written)} captions" in out.decode()
