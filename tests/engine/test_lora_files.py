"""The LoRA files load at the trained strength: diffusers' own loaders, every module applied."""

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import ChromaPipeline, ChromaTransformer2DModel
from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
from peft.tuners.lora import LoraLayer
from support import transformer_inputs

from chroma_studio.paths import resources_dir
from chroma_studio.training import lora
from chroma_studio.training.export import read_header, save_lora
from chroma_studio.training.kohya import to_kohya


@pytest.mark.parametrize(("target", "rank", "alpha"), [("all+ffs", 4, 8.0), ("all", 4, 1.0), ("tiny", 2, 2.0)])
def test_main_file_reloads_through_chroma_pipeline_at_the_trained_strength(
    demo_model_dir, tmp_path, target, rank, alpha
):
    trained = ChromaPipeline.from_pretrained(demo_model_dir).transformer
    names = lora.add_lora(trained, rank=rank, alpha=alpha, target=target)
    with torch.no_grad():
        for p in lora.lora_parameters(trained):
            p.normal_(0, 0.1)
        expected = trained(**transformer_inputs())[0]
    path = save_lora(
        tmp_path / "lora.safetensors",
        lora.get_lora_state(trained),
        rank=rank,
        alpha=alpha,
        target_pattern=lora.TARGET_PATTERNS[target],
        info={"steps": 3},
    )

    fresh = ChromaPipeline.from_pretrained(demo_model_dir)
    fresh.load_lora_weights(str(path))
    applied = sorted(n for n, m in fresh.transformer.named_modules() if isinstance(m, LoraLayer))
    assert applied == sorted(names)  # a loader that skips keys silently would show here
    with torch.no_grad():
        got = fresh.transformer(**transformer_inputs())[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(
        got, ChromaPipeline.from_pretrained(demo_model_dir).transformer(**transformer_inputs())[0]
    )
    assert read_header(path)["chroma_studio.steps"] == "3"


def real_lora_state(target: str, rank: int) -> dict[str, torch.Tensor]:
    """Random LoRA weights with the real model's module names and shapes (no model weights)."""
    config = ChromaTransformer2DModel.load_config(str(resources_dir() / "models" / "transformer"))
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


@pytest.mark.parametrize("target", ["all+ffs", "all", "context"])
def test_kohya_file_converts_back_to_the_same_weight_deltas(target):
    rank, alpha = 2, 3.0
    state = real_lora_state(target, rank)
    kohya = to_kohya(state, alpha)
    if target == "all+ffs":
        assert kohya["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape[0] == 3 * rank
        assert kohya["lora_unet_double_blocks_0_img_attn_qkv.alpha"].item() == 3 * alpha
        assert kohya["lora_unet_single_blocks_0_linear1.lora_down.weight"].shape[0] == 4 * rank
        assert kohya["lora_unet_single_blocks_0_linear1.alpha"].item() == 4 * alpha

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
