"""The headless commands: train (with --dry-run and --resume), export, and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import safe_open
from support import QUICKSTART_CONFIG

from chroma_studio.cli import main
from chroma_studio.config import save_config


def test_the_quickstart_config_passes_a_dry_run(capsys):
    path = QUICKSTART_CONFIG
    assert main(["train", str(path), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["model"] == "lodestones/Chroma1-Base"
    assert plan["components"]["transformer"] == "hub:lodestones/Chroma1-Base/transformer"
    assert plan["lora"] == {"rank": 16, "alpha": 16.0, "targets": "all", "layers": 266, "parameters": 26148864}
    assert plan["mixed_precision"] == "bf16" and plan["steps"] == 1000
    assert main(["train", str(path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Model:       lodestones/Chroma1-Base" in text and "rank 16, alpha 16, targets all, 266 layers" in text
    assert plan["noise_levels"]["distribution"] == "chroma"
    assert "Noise:       chroma (Chroma's own training distribution" in text


def test_the_dry_run_says_what_the_simpletuner_noise_levels_do(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"flow_sigma_distribution": "simpletuner", "flow_schedule_shift": 3}))
    assert main(["train", str(path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Noise:       simpletuner (" in text and "never trains noise levels between 0.25 and 0.75" in text
    assert "sigmoid_scale 1, shift 3" in text


def test_a_bad_config_names_every_problem(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_flavour": "bse", "lerning_rate": 1e-4, "resolution": 500}))
    assert main(["train", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lerning_rate: unknown setting. Did you mean 'learning_rate'?" in err
    assert "model_flavour: 'bse' is not one of base, hd, flash, demo. Did you mean 'base'?" in err
    assert "resolution" in err and "use 512" in err


def test_train_resume_and_export_from_the_command_line(make_config, tmp_path, capsys):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    path = tmp_path / "config.json"
    save_config(config, path)
    assert main(["train", str(path)]) == 0
    assert main(["train", str(path), "--resume", "--max-train-steps", "3"]) == 0
    out = capsys.readouterr()
    assert "Resumed from" in out.err and "step 3/3" in out.err

    run_dir = Path(config.run.output_dir)
    assert main(["export", str(run_dir), "--step", "2", "--format", "kohya"]) == 0
    exported = Path(capsys.readouterr().out.strip())
    assert exported.name == "chroma_lora_kohya_step_2.safetensors"
    with safe_open(str(exported), "pt") as f:
        names = f.keys()
        assert any(k.startswith("lora_unet_double_blocks_0_img_attn_qkv") for k in names)
        assert f.metadata()["chroma_studio.steps"] == "2"
    assert main(["export", str(run_dir), "--step", "9"]) == 2
    assert "no checkpoint at step 9" in capsys.readouterr().err


def _start(config_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "chroma_studio", "train", str(config_path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_step(proc: subprocess.Popen, metrics: Path, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= step:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"step {step} not reached")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_a_checkpoint(make_config, tmp_path):
    config = make_config(max_train_steps=100_000, validation_steps=0)
    path = tmp_path / "config.json"
    save_config(config, path)
    proc = _start(path)
    _wait_for_step(proc, Path(config.run.output_dir) / "metrics.jsonl", 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in out
    steps = [p.name for p in (Path(config.run.output_dir) / "checkpoints").iterdir()]
    assert len(steps) == 1 and steps[0].startswith("step_")
    assert (Path(config.run.output_dir) / "pytorch_lora_weights.safetensors").is_file()


@pytest.mark.slow
def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint(make_config, tmp_path):
    config = make_config(max_train_steps=100_000, checkpointing_steps=3, checkpoints_total_limit=2)
    path = tmp_path / "config.json"
    save_config(config, path)
    run_dir = Path(config.run.output_dir)
    proc = _start(path)
    _wait_for_step(proc, run_dir / "metrics.jsonl", 8)
    proc.kill()
    proc.communicate(timeout=60)
    done = len((run_dir / "metrics.jsonl").read_text().splitlines())
    saved = sorted(int(p.name.split("_")[1]) for p in (run_dir / "checkpoints").glob("step_*"))
    assert saved and done - saved[-1] < 3 + 1  # at most the steps since the last checkpoint (plus the one in flight)

    resumed = _start(path, "--resume", "--max-train-steps", str(saved[-1] + 2))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"Resumed from {run_dir / 'checkpoints' / f'step_{saved[-1]}'}" in err
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, saved[-1] + 3))


def test_the_resume_hint_repeats_the_overrides():
    from chroma_studio.cli import build_parser
    from chroma_studio.cli.train import resume_command

    args = build_parser().parse_args(["train", "my config.json", "--output-dir", "/r/x", "--max-train-steps", "9"])
    assert resume_command(args) == "chroma-studio train 'my config.json' --output-dir /r/x --max-train-steps 9 --resume"


def test_missing_paths_are_named_as_missing(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_output_folder_that_is_a_file_is_named(make_config, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    path = tmp_path / "config.json"
    save_config(make_config(output_dir=str(blocker)), path)
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"The output folder {blocker} is a file, not a folder." in err
    assert err.count("is a file, not a folder") == 1  # printed once, not also by the log
