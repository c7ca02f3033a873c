"""``chroma-studio --version``: the installed version, from the package metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from chroma_studio.cli import main


def test_version_prints_the_installed_version_and_exits(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    version = importlib.metadata.version("chroma-studio")
    assert capsys.readouterr().out.strip() == f"chroma-studio {version}"


def test_version_from_the_command_line_does_not_open_the_app():
    done = subprocess.run(
        [sys.executable, "-m", "chroma_studio", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["chroma-studio", importlib.metadata.version("chroma-studio")]
