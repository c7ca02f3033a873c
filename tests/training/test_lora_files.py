"""The LoRA files load at the trained strength: diffusers' own loaders, every module applied."""

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import ChromaPipeline, ChromaTransformer2DModel
from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file
from support import transformer_inputs

from chroma_studio.base.paths import resources_dir
from chroma_studio.training import lora
from chroma_studio.training.export import export_checkpoint, read_header, save_lora


def trained_transformer(model_dir, target: str, rank: int, alpha: float):
    """The demo transformer with a random LoRA: the model, its adapted modules and its output."""
    transformer = ChromaTransformer2DModel.from_pretrained(model_dir, subfolder="transformer")
    names = lora.add_lora(transformer, rank=rank, alpha=alpha, target=target)
    with torch.no_grad():
        for p in lora.lora_parameters(transformer):
            p.normal_(0, 0.1)
        expected = transformer(**transformer_inputs())[0]
    return transformer, names, expected


def write_run(run_dir, state, *, rank: int, alpha: float, target: str, step: int = 3, extra=None, config=None):
    """A run folder as earlier versions leave it: config.json and one checkpoint with the unfolded LoRA."""
    checkpoint = run_dir / "checkpoints" / f"step_{step}"
    checkpoint.mkdir(parents=True)
    save_file(state, str(checkpoint / "lora.safetensors"))
    identity = {"model": "demo", "rank": rank, "alpha": alpha, "targets": target}
    (checkpoint / "state.json").write_text(json.dumps({"step": step, "identity": identity, **(extra or {})}))
    (run_dir / "config.json").write_text(
        json.dumps({"model_flavour": "demo", "mixed_precision": "no", **(config or {})})
    )
    return run_dir


def load_through(loader: str, model_dir, path) -> torch.nn.Module:
    """A fresh demo transformer with the file loaded by diffusers' pipeline or model-level loader."""
    if loader == "pipeline":
        pipeline = ChromaPipeline.from_pretrained(model_dir)
        pipeline.load_lora_weights(str(path))
        return pipeline.transformer
    transformer = ChromaTransformer2DModel.from_pretrained(model_dir, subfolder="transformer")
    transformer.load_lora_adapter(str(path), prefix="transformer")
    return transformer


@pytest.mark.parametrize("loader", ["model", "pipeline"])
@pytest.mark.parametrize(("target", "rank", "alpha"), [("all+ffs", 4, 8.0), ("all", 4, 1.0), ("tiny", 3, 5.0)])
def test_exported_file_reloads_at_the_trained_strength(demo_model_dir, tmp_path, loader, target, rank, alpha):
    trained, names, expected = trained_transformer(demo_model_dir, target, rank, alpha)
    run = write_run(tmp_path / "run", lora.get_lora_state(trained), rank=rank, alpha=alpha, target=target)
    path = export_checkpoint(run)

    fresh = load_through(loader, demo_model_dir, path)
    applied = sorted(n for n, m in fresh.named_modules() if isinstance(m, LoraLayer))
    assert applied == sorted(names)  # a loader that skips keys silently would show here
    with torch.no_grad():
        got = fresh(**transformer_inputs())[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    base = ChromaTransformer2DModel.from_pretrained(demo_model_dir, subfolder="transformer")
    with torch.no_grad():
        assert not torch.allclose(got, base(**transformer_inputs())[0])


def test_main_file_states_alpha_equal_to_rank_and_folds_the_scale(demo_model_dir, tmp_path):
    rank, alpha = 4, 8.0
    state = random_lora_state(demo_model_dir / "transformer", "all+ffs", rank)
    path = save_lora(
        tmp_path / "lora.safetensors", state, rank=rank, alpha=alpha, target_pattern="x", info={"steps": 3}
    )
    tensors = load_file(str(path))
    for module in lora.lora_module_names(state):
        assert tensors[f"transformer.{module}.alpha"].item() == rank
        torch.testing.assert_close(tensors[f"transformer.{module}.lora_A.weight"], state[f"{module}.lora_A.weight"])
        torch.testing.assert_close(
            tensors[f"transformer.{module}.lora_B.weight"], (alpha / rank) * state[f"{module}.lora_B.weight"]
        )
    header = read_header(path)
    assert header["chroma_studio.steps"] == "3"
    assert json.loads(header["chroma_studio"])["adapter"]["lora_alpha"] == rank


@pytest.mark.parametrize(
    ("extra", "config", "expected"),
    [
        ({"sigma_distribution": "logit_normal"}, {"flow_sigma_distribution": "uniform"}, "logit_normal"),
        ({}, {"flow_sigma_distribution": "uniform"}, "uniform"),
        ({}, {}, "simpletuner"),  # a run of an earlier version: SimpleTuner's tail map
    ],
)
@pytest.mark.parametrize("fmt", ["diffusers", "kohya"])
def test_header_keeps_the_trained_alpha_the_folded_flag_and_the_sigma_distribution(
    demo_model_dir, tmp_path, fmt, extra, config, expected
):
    rank, alpha = 4, 8.0
    state = random_lora_state(demo_model_dir / "transformer", "all", rank)
    run = write_run(tmp_path / "run", state, rank=rank, alpha=alpha, target="all", extra=extra, config=config)
    header = read_header(export_checkpoint(run, fmt=fmt))

    info = json.loads(header["chroma_studio"])
    assert info["trained_lora_rank"] == rank and info["trained_lora_alpha"] == alpha
    assert info["lora_scale_folded"] is True
    assert info["adapter"]["r"] == rank and info["adapter"]["lora_alpha"] == rank
    assert info["sigma_distribution"] == expected
    assert header["chroma_studio.trained_lora_alpha"] == "8.0"
    assert header["chroma_studio.lora_scale_folded"] == "true"
    assert header["chroma_studio.sigma_distribution"] == expected
    assert "lora_adapter_metadata" not in header  # diffusers refuses it beside .alpha tensors
    if fmt == "kohya":
        assert header["ss_network_dim"] == header["ss_network_alpha"] == str(rank)


def random_lora_state(config_dir, target: str, rank: int) -> dict[str, torch.Tensor]:
    """Random LoRA weights with the module names and shapes of the transformer in ``config_dir``."""
    config = ChromaTransformer2DModel.load_config(str(config_dir))
    with init_empty_weights():
        model = ChromaTransformer2DModel.from_config(config)
    modules = dict(model.named_modules())
    g = torch.Generator().manual_seed(1)
    state = {}
    for name in lora.target_module_names(model, target):
        layer = modules[name]
        state[f"{name}.lora_A.weight"] = torch.randn(rank, layer.in_features, generator=g)
        state[f"{name}.lora_B.weight"] = torch.randn(layer.out_features, rank, generator=g)
    return state


def real_lora_state(target: str, rank: int) -> dict[str, torch.Tensor]:
    """Random LoRA weights with the real model's module names and shapes (no model weights)."""
    return random_lora_state(resources_dir() / "models" / "transformer", target, rank)


@pytest.mark.parametrize("target", ["all+ffs", "all", "context"])
def test_kohya_file_converts_back_to_the_same_weight_deltas(tmp_path, target):
    rank, alpha = 2, 3.0
    state = real_lora_state(target, rank)
    path = save_lora(
        tmp_path / "kohya.safetensors", state, rank=rank, alpha=alpha, target_pattern="x", info={}, fmt="kohya"
    )
    kohya = load_file(str(path))
    for key, value in kohya.items():  # every module states alpha = its rank: the scale is in the weights
        if key.endswith(".alpha"):
            assert value.item() == kohya[key.replace(".alpha", ".lora_down.weight")].shape[0]
    if target == "all+ffs":  # q, k, v fused at rank 3r; linear1 (q, k, v, MLP input) at 4r
        assert kohya["lora_unet_double_blocks_0_img_attn_qkv.alpha"].item() == 3 * rank
        assert kohya["lora_unet_single_blocks_0_linear1.alpha"].item() == 4 * rank
    if target == "all":  # the MLP input untrained: linear1 at 3r with zero rows for it
        assert kohya["lora_unet_single_blocks_0_linear1.alpha"].item() == 3 * rank

    converted = _convert_kohya_flux_lora_to_diffusers(dict(kohya))  # diffusers' own converter

    def delta_times(down, up, probe):  # (up @ down) @ probe, without forming the full delta
        return up.double() @ (down.double() @ probe)

    g = torch.Generator().manual_seed(2)
    for module in lora.lora_module_names(state):
        down, up = state[f"{module}.lora_A.weight"], state[f"{module}.lora_B.weight"]
        probe = torch.randn(down.shape[1], 3, generator=g, dtype=torch.float64)
        ours = (alpha / rank) * delta_times(down, up, probe)
        theirs = delta_times(
            converted[f"transformer.{module}.lora_A.weight"], converted[f"transformer.{module}.lora_B.weight"], probe
        )
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-5)  # float32 rounding of the scaled weights
    extra = {k.rsplit(".lora_", 1)[0] for k in converted} - {f"transformer.{m}" for m in lora.lora_module_names(state)}
    for module in extra:  # only the untrained MLP piece of linear1 may appear, with a zero update
        assert module.endswith("proj_mlp")
        assert converted[f"{module}.lora_B.weight"].abs().max() == 0
