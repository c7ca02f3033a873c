"""File names that are not UTF-8 (any bytes are allowed on Linux) are reported readably, never crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chroma_studio.base.text import display_text

from .files import photo

CLI = "import sys; from chroma_studio.cli import main; sys.exit(main(sys.argv[1:]))"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="Windows file names are Unicode")


def odd_image(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    name = os.fsdecode(b"caf\xe9.png")
    try:
        photo((48, 48)).save(folder / name, format="PNG")  # too small at 512 px: an error that names it
    except (OSError, UnicodeEncodeError, ValueError):
        pytest.skip("this filesystem does not take file names that are not UTF-8")
    if name not in os.listdir(folder):
        pytest.skip("this filesystem changed the file name")
    return folder / name


def test_display_text_shows_undecodable_bytes_as_replacement_characters():
    assert display_text(os.fsdecode(b"caf\xe9.png")) == "caf\ufffd.png"
    assert display_text("café.png") == "café.png"
    assert display_text(Path("plain.png")) == "plain.png"
    assert display_text("\ud800 alone") == "\ufffd alone"  # a surrogate that did not come from a byte


def test_dataset_check_prints_such_a_name_under_a_strict_utf8_stdout(tmp_path):
    odd_image(tmp_path / "odd")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run(
        [sys.executable, "-c", CLI, "dataset", "check", str(tmp_path / "odd"), "--resolution", "512"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert "Traceback" not in err, err
    assert done.returncode == 1, err  # the check ran to its end and found the error
    assert "caf\ufffd.png" in out
