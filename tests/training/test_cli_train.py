"""The headless commands: train (with --dry-run and --resume), export, and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors import safe_open
from support import QUICKSTART_CONFIG

from chroma_studio.cli import main
from chroma_studio.config import save_config


def test_the_quickstart_config_passes_a_dry_run_once_it_has_images(small_dataset, tmp_path, capsys):
    assert main(["train", str(QUICKSTART_CONFIG), "--dry-run"]) == 2
    assert "No image folder is set. Add a folder of images (dataset_dirs)" in capsys.readouterr().err
    path = tmp_path / "quickstart.json"
    text = QUICKSTART_CONFIG.read_text()
    path.write_text(text.replace("{", "{" + f'"dataset_dirs": [{json.dumps(str(small_dataset))}],', 1))
    assert main(["train", str(path), "--dry-run", "--json", "--output-dir", str(tmp_path / "run")]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["model"] == "lodestones/Chroma1-Base"
    assert plan["components"]["transformer"] == "hub:lodestones/Chroma1-Base/transformer"
    assert plan["lora"] == {"rank": 16, "alpha": 16.0, "targets": "all", "layers": 266, "parameters": 26148864}
    assert plan["mixed_precision"] == "bf16" and plan["steps"] == 1000
    assert main(["train", str(path), "--dry-run", "--output-dir", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "Model:       lodestones/Chroma1-Base" in text and "rank 16, alpha 16, targets all, 266 layers" in text
    assert plan["noise_levels"]["distribution"] == "chroma"
    assert "Noise:       chroma (Chroma's own training distribution" in text


def test_the_dry_run_says_what_the_simpletuner_noise_levels_do(small_dataset, tmp_path, capsys):
    path = tmp_path / "config.json"
    settings = {"flow_sigma_distribution": "simpletuner", "flow_schedule_shift": 3, "output_dir": "run"}
    path.write_text(json.dumps({**settings, "dataset_dirs": [str(small_dataset)]}))
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


# -- a run never replaces a file it did not write ------------------------------------------------------

JSONC_CONFIG = """{
  // my settings, with comments that json.dumps would lose
  "model_flavour": "demo",
  "resolution": 128,
  "mixed_precision": "no",
  "dataset_dirs": ["data"],
  "output_dir": ".",  /* the config's own folder */
  "max_train_steps": 1,
}
"""


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "train"])
def test_a_config_in_the_output_folder_is_never_replaced(small_dataset, capsys, dry_run):
    folder = small_dataset.parent
    path = folder / "config.json"
    path.write_text(JSONC_CONFIG)
    before = path.read_bytes()
    code = main(["train", str(path), *(["--dry-run"] if dry_run else [])])
    assert code == (2 if dry_run else 1)
    err = capsys.readouterr().err
    assert f"error: {path} is not from a run" in err and "would replace that file" in err
    assert "hint: Choose another output folder (output_dir)" in err
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "data"]


def test_the_config_json_of_an_earlier_run_does_not_stop_the_next(make_config, tmp_path, capsys):
    config = make_config()
    out = Path(config.run.output_dir)
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "log.txt").write_text("a run that failed before its first step\n")
    path = tmp_path / "config.json"
    save_config(config, path)
    assert main(["train", str(path), "--dry-run"]) == 0


# -- a dry run checks what a run checks before it loads a model -----------------------------------------


def _dry_run_and_run(path: Path, capsys) -> tuple[str, str]:
    """The error lines of a dry run (which must exit 2) and of a real run (which fails) of ``path``."""
    assert main(["train", str(path), "--dry-run"]) == 2
    dry = capsys.readouterr()
    assert "Traceback" not in dry.err and not dry.out
    assert main(["train", str(path)]) == 1
    real = capsys.readouterr().err
    lines = [line for line in dry.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert lines, dry.err
    return "\n".join(lines), real


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing dataset", "Image folder not found"),
        ("empty dataset", "No usable images in"),
        ("output is a file", "is a file, not a folder."),
        ("output under a file", "a-file is a file, not a folder."),
        ("missing checkpoint", "does not exist. Give a checkpoints/step_N folder"),
    ],
)
def test_a_dry_run_fails_as_the_run_would(make_config, tmp_path, capsys, case, expected):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    (tmp_path / "empty").mkdir()
    overrides = {
        "missing dataset": {"dataset_dirs": [str(tmp_path / "nowhere")]},
        "empty dataset": {"dataset_dirs": [str(tmp_path / "empty")]},
        "output is a file": {"output_dir": str(blocker)},
        "output under a file": {"output_dir": str(blocker / "run")},
        "missing checkpoint": {"resume_from_checkpoint": str(tmp_path / "no-checkpoint")},
    }[case]
    path = tmp_path / "config.json"
    save_config(make_config(**overrides), path)
    dry, real = _dry_run_and_run(path, capsys)
    assert expected in dry
    assert dry in real  # the same message and hint
    assert blocker.read_text() == "x"


def test_a_dry_run_names_the_run_that_holds_the_folder(make_config, tmp_path, capsys):
    import psutil

    config = make_config()
    out = Path(config.run.output_dir)
    out.mkdir()
    path = tmp_path / "config.json"
    save_config(config, path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": other.pid, "started": psutil.Process(other.pid).create_time()}
        (out / ".chroma-studio.lock").write_text(json.dumps(lock))
        dry, real = _dry_run_and_run(path, capsys)
    finally:
        other.kill()
        other.wait()
    assert f"Another training is still using {out} (process {other.pid}" in dry
    assert dry in real
    assert json.loads((out / ".chroma-studio.lock").read_text()) == lock


def test_a_dry_run_leaves_no_trace(make_config, tmp_path, capsys):
    config = make_config()
    path = tmp_path / "config.json"
    save_config(config, path)
    assert main(["train", str(path), "--dry-run"]) == 0
    assert not Path(config.run.output_dir).exists()
    Path(config.run.output_dir).mkdir()
    assert main(["train", str(path), "--dry-run"]) == 0
    assert list(Path(config.run.output_dir).iterdir()) == []


# -- Ctrl-C twice -----------------------------------------------------------------------------------------


def test_a_second_ctrl_c_ends_the_run_where_it_is_with_one_line(make_config, tmp_path, capsys, monkeypatch):
    """The second Ctrl-C lands while the run is still busy after the first (here inside the engine)."""
    from chroma_studio.training import trainer

    seen = []

    def busy_run(config, sink, control):
        signal.raise_signal(signal.SIGINT)  # the first: asks for a stop after the step
        seen.append(control.stop_requested)
        signal.raise_signal(signal.SIGINT)  # the second: ends here
        raise AssertionError("the second Ctrl-C did not end the run")

    monkeypatch.setattr(trainer, "run_training", busy_run)
    path = tmp_path / "config.json"
    save_config(make_config(), path)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert main(["train", str(path)]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a third one cannot interrupt the exit
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err
    assert seen == [True] and "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "Stopped without saving."


@pytest.mark.slow
def test_two_ctrl_cs_in_a_real_run_end_it_cleanly(make_config, tmp_path):
    # A stop interrupts the samples before the first step, so the run may end before the second Ctrl-C
    # arrives: either way it exits 130 with no traceback and leaves nothing behind.
    config = make_config(
        max_train_steps=1000,
        validation_prompt=["a photo of a cat", "a photo of a dog"],
        validation_num_inference_steps=150,
        validation_resolution=128,
    )
    path = tmp_path / "config.json"
    save_config(config, path)
    run_dir = Path(config.run.output_dir)
    proc = _start(path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 240
        while not any(text in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, lines
            time.sleep(0.05)

    wait_for("Training 1000 steps")
    proc.send_signal(signal.SIGINT)
    wait_for("Ctrl-C again")
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "pytorch_lora_weights.safetensors").exists()
    assert not (run_dir / ".chroma-studio.lock").exists()


def test_an_unexpected_failure_prints_the_details_its_hint_promises(make_config, tmp_path, capsys, monkeypatch):
    from chroma_studio.training import trainer

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(trainer, "prepare_run", broken)  # the hardware-free way to fail unexpectedly
    path = tmp_path / "config.json"
    save_config(make_config(), path)
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: a bug in the engine" in err and "the details below help to report it" in err
    details = err.split("details:\n", 1)[1]
    assert details.startswith("Traceback") and "RuntimeError: a bug in the engine" in details
