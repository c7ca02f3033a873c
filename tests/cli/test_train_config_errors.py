"""``chroma-studio train`` on configs no run can use: exit 2 with the problem named, never a traceback."""

from __future__ import annotations

import pytest

from chroma_studio.cli import main

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[]", "(file): must be a JSON object of settings"),
        ("42", "(file): must be a JSON object of settings"),
        ("null", "(file): must be a JSON object of settings"),
        ("false", "(file): must be a JSON object of settings"),
        pytest.param(DEEP, "(file): is nested too deeply", id="100000-nested-lists"),
        ('{"learning_rate": NaN}', "learning_rate: must be a finite number"),
        ('{"seed": 1e30}', "seed: 1e+30 is above the maximum 2,147,483,647. Seeds go from 0"),
        ('{"max_train_steps": 1e300}', "max_train_steps: 1e+300 is above the maximum 1,000,000."),
        ('{"output_dir": ""}', "output_dir: must not be empty; name a folder for the run"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "train"])
def test_an_unusable_config_exits_2_naming_the_problem(tmp_path, capsys, text, named, dry_run):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert main(["train", str(path), *(["--dry-run"] if dry_run else [])]) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "Traceback" not in err
    assert len(err.splitlines()) <= 3


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--output-dir", ""], "output_dir: must not be empty"),
        (["--max-train-steps", "0"], "max_train_steps: 0 is below the minimum 1."),
        (["--max-train-steps", str(10**9)], "max_train_steps: 1,000,000,000 is above the maximum"),
    ],
)
def test_unusable_overrides_are_refused_not_ignored(tmp_path, capsys, options, named):
    path = tmp_path / "config.json"
    path.write_text('{"model_flavour": "demo"}')
    assert main(["train", str(path), "--dry-run", *options]) == 2
    assert named in capsys.readouterr().err
