"""Checkpoints are data, never code: no pickle is read on resume, and every tensor is checked first.

A checkpoint folder may come from someone else. Resuming reads only JSON and safetensors; the
pickle of earlier versions (``training_state.pt``) is refused with advice, and only the explicit
``chroma-studio checkpoint convert`` reads it, through torch's restricted loader. Damaged or
doctored LoRA tensors are refused before they reach the model, by resume and export alike.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from support import TINY_DEMO, copy_demo_images

from chroma_studio.cli import main
from chroma_studio.config import config_from_dict, save_config
from chroma_studio.protocol import events as ev
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.training import checkpoint as ckpt
from chroma_studio.training import training_state
from chroma_studio.training.trainer import run_training

PACKAGE = Path(ckpt.__file__).resolve().parents[1]


class Planted:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for any code a pickle can run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    torch.save({"optimizer": Planted(marker), "rng_cpu": torch.get_rng_state()}, path)


def make_old_format(folder: Path, training: dict | None = None) -> None:
    """Rewrite a checkpoint into the layout of earlier versions: a pickled ``training_state.pt``."""
    if training is not None:
        torch.save(training, folder / ckpt.LEGACY_STATE)
    for name in (ckpt.TRAINING_TENSORS, ckpt.TRAINING_JSON):
        (folder / name).unlink()
    state = json.loads((folder / "state.json").read_text())
    state.pop("format")
    (folder / "state.json").write_text(json.dumps(state))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-step run with checkpoints at steps 1 and 2, and the settings that made it."""
    root = tmp_path_factory.mktemp("trained")
    values = {
        **TINY_DEMO,
        "dataset_dirs": [str(copy_demo_images(root / "data"))],
        "output_dir": str(root / "run"),
        "cache_dir": str(root / "cache"),
        "validation_steps": 0,
        "max_train_steps": 2,
        "checkpointing_steps": 1,
    }
    result = run_training(config_from_dict(values))
    assert result.status == "finished", result.failure
    return values


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run to damage; returns its config (output_dir points at the copy)."""
    target = tmp_path / "copy"
    shutil.copytree(trained["output_dir"], target)
    return config_from_dict({**trained, "output_dir": str(target)})


def latest(config) -> Path:
    return Path(config.run.output_dir) / "checkpoints" / "step_2"


def resume(config, **overrides):
    events = []
    config = config.replace(resume_from_checkpoint="latest", max_train_steps=4, **overrides)
    result = run_training(config, events.append)
    return result, events


# -- no pickle --------------------------------------------------------------------------------------


def test_nothing_in_the_package_unpickles_without_restriction():
    offenders = [
        f"{path.relative_to(PACKAGE)}: {match}"
        for path in PACKAGE.rglob("*.py")
        for match in re.findall(r"weights_only\s*=\s*False|pickle\.loads?\b|torch\.load\([^)]*\)", path.read_text())
        if "weights_only=True" not in match
    ]
    assert not offenders


def test_a_checkpoint_is_json_and_safetensors_only(run_copy):
    folder = latest(run_copy)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["state.json", "lora.safetensors", ckpt.TRAINING_TENSORS, ckpt.TRAINING_JSON]
    )
    assert json.loads((folder / "state.json").read_text())["format"] == ckpt.FORMAT
    rng = load_file(str(folder / ckpt.TRAINING_TENSORS))
    assert any(t.dtype == torch.uint8 for t in rng.values())  # the RNG state, as bytes


def test_a_planted_pickle_in_an_old_format_checkpoint_is_never_loaded_on_resume(run_copy, tmp_path):
    marker = tmp_path / "code-ran"
    folder = latest(run_copy)
    make_old_format(folder)
    plant_pickle(folder / ckpt.LEGACY_STATE, marker)

    result, events = resume(run_copy)

    assert not marker.exists()
    assert result.status == "failed"
    message = result.failure.message
    assert str(folder) in message and "chroma-studio checkpoint convert" in message
    assert "start a new run" in message.lower() and "trust" in message
    assert not result.failure.traceback
    assert not any(isinstance(e, ev.StepLogged) for e in events)


def test_a_pickle_beside_a_current_checkpoint_is_ignored(run_copy, tmp_path):
    marker = tmp_path / "code-ran"
    plant_pickle(latest(run_copy) / ckpt.LEGACY_STATE, marker)
    result, _ = resume(run_copy)
    assert result.status == "finished", result.failure
    assert not marker.exists()


def test_the_planted_pickle_is_armed(tmp_path):
    """The test above means something: an unrestricted load of such a file does run the code."""
    marker = tmp_path / "armed"
    plant_pickle(tmp_path / "x.pt", marker)
    torch.load(tmp_path / "x.pt", weights_only=False)  # the very thing the package never does
    assert marker.exists()


def test_convert_refuses_a_planted_pickle_without_running_it(run_copy, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    folder = latest(run_copy)
    make_old_format(folder)
    plant_pickle(folder / ckpt.LEGACY_STATE, marker)
    before = sorted(p.name for p in folder.iterdir())

    code = main(["checkpoint", "convert", str(folder)])

    out = capsys.readouterr()
    assert code == 2 and not marker.exists()
    assert "Traceback" not in out.out + out.err
    assert "refused" in out.err and str(folder / ckpt.LEGACY_STATE) in out.err
    assert sorted(p.name for p in folder.iterdir()) == before  # left as it was


def test_an_old_checkpoint_is_refused_then_converted_and_resumes_exactly(make_config, tmp_path, capsys):
    settings = {"max_train_steps": 6, "lr_warmup_steps": 2, "lr_scheduler": "cosine", "checkpointing_steps": 0}
    full = []
    run_training(make_config(output_dir=str(tmp_path / "full"), **settings), full.append)
    first, second = [], []
    cut = make_config(output_dir=str(tmp_path / "cut"), **settings)
    control = TrainingControl()

    def stop_after_three(event):
        first.append(event)
        if isinstance(event, ev.StepLogged) and event.step == 3:
            control.stop()

    assert run_training(cut, stop_after_three, control).status == "stopped"
    folder = tmp_path / "cut" / "checkpoints" / "step_3"
    make_old_format(folder, ckpt.read_training_state(folder))  # what earlier versions wrote
    config_path = tmp_path / "cut.json"
    save_config(cut, config_path)

    assert main(["train", str(config_path), "--resume"]) == 1
    refused = capsys.readouterr().err
    assert "chroma-studio checkpoint convert" in refused and "Traceback" not in refused

    assert main(["checkpoint", "convert", str(tmp_path / "cut")]) == 0
    out = capsys.readouterr()
    assert "can run code" in out.out + out.err and str(folder) in out.out
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["state.json", "lora.safetensors", ckpt.TRAINING_TENSORS, ckpt.TRAINING_JSON]
    )
    assert main(["checkpoint", "convert", str(folder)]) == 0  # nothing left to do is not an error
    assert "already" in capsys.readouterr().out

    resumed = run_training(cut.replace(resume_from_checkpoint="latest"), second.append)
    assert resumed.status == "finished" and resumed.step == 6

    def step_losses(log):
        return [(e.step, e.loss, e.lr) for e in log if isinstance(e, ev.StepLogged)]

    assert step_losses(first) + step_losses(second) == step_losses(full)


def test_convert_help_names_the_risk(capsys):
    with pytest.raises(SystemExit):
        main(["checkpoint", "convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "run code" in text and "trust" in text


def test_convert_of_a_folder_without_checkpoints_is_a_clean_error(tmp_path, capsys):
    assert main(["checkpoint", "convert", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err


# -- the training state's own format ------------------------------------------------------------------


def test_the_training_state_round_trips_exactly_through_json_and_safetensors(tmp_path):
    tree = {
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}, 1: {"flag": True}},
            "param_groups": [{"lr": 1e-4 / 3, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None}],
        },
        "scheduler": {"last_epoch": 3, "base_lrs": [1e-4], "lr_lambdas": [None], "odd": float("inf")},
        "scaler": {"scale": 65536.0, "_growth_tracker": 2},
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": [torch.get_rng_state()[:16].clone()],
        "tagged": {"__tensor__": "not a tensor"},  # a real key that looks like a tag
    }
    training_state.write_training_state(tmp_path, tree)
    document = json.loads((tmp_path / ckpt.TRAINING_JSON).read_text())
    assert document["optimizer"]["param_groups"][0]["params"] == [0, 1]  # readable JSON
    back = training_state.split_tensors(training_state.read_training_state(tmp_path))
    assert back[0] == training_state.split_tensors(tree)[0]
    assert all(torch.equal(back[1][k], v) for k, v in training_state.split_tensors(tree)[1].items())
    loaded = training_state.read_training_state(tmp_path)
    assert list(loaded["optimizer"]["state"]) == [0, 1]  # int keys, as the optimizer numbers its parameters
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert loaded["tagged"] == {"__tensor__": "not a tensor"}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"x": {"__tensor__": "nowhere"}}, "not stored"),
        ({"x": {"__tuple__": 5}}, "not a list"),
        ({"x": {"__items__": [[[1], 2]]}}, "pair"),
        ({"x": 1}, "not part of the state"),  # the stored tensor is never used
    ],
)
def test_a_training_state_document_that_does_not_fit_its_tensors_is_refused(document, words):
    with pytest.raises(training_state.StateFormatError, match=words):
        training_state.join_tensors(document, {"t": torch.zeros(1)} if words == "not part of the state" else {})


def test_a_value_only_pickle_could_store_is_refused_when_saving():
    with pytest.raises(TypeError, match="without pickle"):
        training_state.split_tensors({"x": object()})


# -- resume checks tensors against the live model -----------------------------------------------------


def _drop_half(folder: Path) -> None:
    state = load_file(str(folder / "lora.safetensors"))
    keys = sorted(state)
    save_file({k: state[k] for k in keys[: len(keys) // 2]}, str(folder / "lora.safetensors"))


def _to_int8(folder: Path) -> None:
    state = load_file(str(folder / "lora.safetensors"))
    save_file({k: v.to(torch.int8) for k, v in state.items()}, str(folder / "lora.safetensors"))


def _widen_one(folder: Path) -> None:
    """One module's A and B one input wider: a consistent LoRA, but not for this model."""
    state = load_file(str(folder / "lora.safetensors"))
    key = sorted(k for k in state if k.endswith("lora_A.weight"))[0]
    state[key] = torch.zeros(state[key].shape[0], state[key].shape[1] + 1)
    save_file(state, str(folder / "lora.safetensors"))


def _extra_module(folder: Path) -> None:
    state = load_file(str(folder / "lora.safetensors"))
    state["transformer_blocks.0.attn.extra.lora_A.weight"] = torch.zeros(4, 8)
    state["transformer_blocks.0.attn.extra.lora_B.weight"] = torch.zeros(8, 4)
    save_file(state, str(folder / "lora.safetensors"))


def _optimizer_tensors_missing(folder: Path) -> None:
    (folder / ckpt.TRAINING_TENSORS).unlink()


def _optimizer_json_missing(folder: Path) -> None:
    (folder / ckpt.TRAINING_JSON).unlink()


def _optimizer_json_garbage(folder: Path) -> None:
    (folder / ckpt.TRAINING_JSON).write_text("{ not json")


def _optimizer_shape_wrong(folder: Path) -> None:
    tensors = load_file(str(folder / ckpt.TRAINING_TENSORS))
    key = next(k for k, v in tensors.items() if v.dim() == 2)
    tensors[key] = torch.zeros(3, 3)
    save_file(tensors, str(folder / ckpt.TRAINING_TENSORS))


def _optimizer_params_fewer(folder: Path) -> None:
    document = json.loads((folder / ckpt.TRAINING_JSON).read_text())
    groups = document["optimizer"]["param_groups"]
    groups[0]["params"] = groups[0]["params"][:-1]
    (folder / ckpt.TRAINING_JSON).write_text(json.dumps(document))


def _rng_cut(folder: Path) -> None:
    tensors = load_file(str(folder / ckpt.TRAINING_TENSORS))
    key = next(k for k, v in tensors.items() if v.dtype == torch.uint8)
    tensors[key] = tensors[key][:100].clone()
    save_file(tensors, str(folder / ckpt.TRAINING_TENSORS))


@pytest.mark.parametrize(
    ("damage", "file", "words"),
    [
        (_drop_half, "lora.safetensors", "lacks"),
        (_to_int8, "lora.safetensors", "int8"),
        (_widen_one, "lora.safetensors", "shape"),
        (_extra_module, "lora.safetensors", "this model does not have"),
        (_optimizer_tensors_missing, ckpt.TRAINING_TENSORS, "missing"),
        (_optimizer_json_missing, ckpt.TRAINING_JSON, "missing"),
        (_optimizer_json_garbage, ckpt.TRAINING_JSON, "damaged"),
        (_optimizer_shape_wrong, ckpt.TRAINING_TENSORS, "shape"),
        (_optimizer_params_fewer, ckpt.TRAINING_JSON, "parameters"),
        (_rng_cut, ckpt.TRAINING_TENSORS, "random"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
def test_resume_refuses_a_checkpoint_that_does_not_fit(run_copy, damage, file, words):
    folder = latest(run_copy)
    damage(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    result, events = resume(run_copy)

    assert result.status == "failed"
    message = result.failure.message
    assert str(folder / file) in message and words in message
    assert "earlier checkpoint" in message
    assert not result.failure.traceback
    assert not any(isinstance(e, ev.StepLogged) for e in events)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing overwritten


def test_resume_of_a_lora_missing_half_its_tensors_fails_on_the_command_line(run_copy, tmp_path, capsys):
    _drop_half(latest(run_copy))
    config_path = tmp_path / "config.json"
    save_config(run_copy, config_path)
    assert main(["train", str(config_path), "--resume", "--max-train-steps", "4"]) != 0
    err = capsys.readouterr().err
    assert "lora.safetensors" in err and "Traceback" not in err


# -- export validates the LoRA on its own ----------------------------------------------------------------


def _edit_state(change):
    def damage(folder: Path) -> None:
        state = json.loads((folder / "state.json").read_text())
        change(state)
        (folder / "state.json").write_text(json.dumps(state))

    return damage


def _edit_lora(change):
    def damage(folder: Path) -> None:
        state = load_file(str(folder / "lora.safetensors"))
        changed = change(state)
        save_file(changed if isinstance(changed, dict) else state, str(folder / "lora.safetensors"))

    return damage


def _write(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


def _first(state, suffix):
    return sorted(k for k in state if k.endswith(suffix))[0]


def _truncate(folder: Path) -> None:
    path = folder / "lora.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _lora_folder(folder: Path) -> None:
    (folder / "lora.safetensors").unlink()
    (folder / "lora.safetensors").mkdir()


def _rank_two(state):
    return {k: (v[:2] if ".lora_A." in k else v[:, :2]).contiguous() for k, v in state.items()}


def _b_rank_three(state):
    key = _first(state, "lora_B.weight")
    state[key] = state[key][:, :3].contiguous()


def _nan(state):
    state[_first(state, "lora_B.weight")][0, 0] = float("nan")


EXPORT_DAMAGE = {
    "state-not-json": (_write("state.json", b"{ step: 2"), "state.json"),
    "state-not-utf8": (_write("state.json", b"\xff\xfe\x00"), "state.json"),
    "state-not-an-object": (_write("state.json", b"[1, 2]"), "state.json"),
    "no-identity": (_edit_state(lambda s: s.pop("identity")), "state.json"),
    "no-step": (_edit_state(lambda s: s.pop("step")), "state.json"),
    "identity-not-an-object": (_edit_state(lambda s: s.update(identity="demo")), "state.json"),
    "identity-without-rank": (_edit_state(lambda s: s["identity"].pop("rank")), "state.json"),
    "rank-a-string": (_edit_state(lambda s: s["identity"].update(rank="4")), "state.json"),
    "rank-zero": (_edit_state(lambda s: s["identity"].update(rank=0)), "state.json"),
    "alpha-a-list": (_edit_state(lambda s: s["identity"].update(alpha=[4])), "state.json"),
    "unknown-targets": (_edit_state(lambda s: s["identity"].update(targets="everything")), "state.json"),
    "lora-missing": (lambda folder: (folder / "lora.safetensors").unlink(), "lora.safetensors"),
    "lora-empty": (_write("lora.safetensors", b""), "lora.safetensors"),
    "lora-truncated": (_truncate, "lora.safetensors"),
    "lora-a-folder": (_lora_folder, "lora.safetensors"),
    "lora-no-tensors": (_edit_lora(lambda s: s.clear()), "lora.safetensors"),
    "lora-int8": (_edit_lora(lambda s: {k: v.to(torch.int8) for k, v in s.items()}), "lora.safetensors"),
    "lora-rank-not-identity": (_edit_lora(_rank_two), "lora.safetensors"),
    "lora-a-b-disagree": (_edit_lora(_b_rank_three), "lora.safetensors"),
    "lora-a-without-b": (_edit_lora(lambda s: s.pop(_first(s, "lora_B.weight"))), "lora.safetensors"),
    "lora-3d": (_edit_lora(lambda s: s.update({_first(s, "A.weight"): torch.zeros(4, 2, 2)})), "lora.safetensors"),
    "lora-unknown-key": (_edit_lora(lambda s: s.update({"proj_out.weight": torch.zeros(2, 2)})), "lora.safetensors"),
    "lora-not-finite": (_edit_lora(_nan), "lora.safetensors"),
}


@pytest.mark.parametrize("case", sorted(EXPORT_DAMAGE))
def test_export_of_a_damaged_checkpoint_is_a_clean_error(run_copy, case, capsys):
    damage, file = EXPORT_DAMAGE[case]
    folder = latest(run_copy)
    damage(folder)
    out_file = Path(run_copy.run.output_dir) / "exported.safetensors"

    code = main(["export", run_copy.run.output_dir, "--output", str(out_file)])

    out = capsys.readouterr()
    assert code != 0 and not out_file.exists()
    assert str(folder / file) in out.err
    assert "Traceback" not in out.out + out.err


def test_export_needs_no_training_state_and_reads_no_pickle(run_copy, tmp_path, capsys):
    """The LoRA of an old-format checkpoint can still be exported: export reads only the LoRA."""
    marker = tmp_path / "code-ran"
    folder = latest(run_copy)
    make_old_format(folder)
    plant_pickle(folder / ckpt.LEGACY_STATE, marker)
    assert main(["export", run_copy.run.output_dir, "--output", str(tmp_path / "x.safetensors")]) == 0
    assert (tmp_path / "x.safetensors").is_file() and not marker.exists()
    capsys.readouterr()
