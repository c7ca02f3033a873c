"""Parameter counts of the real Chroma components, and LoRA targets counted by the engine's own rule."""

from __future__ import annotations

import pytest
from support.calibration.architecture import count_architecture

from chroma_studio.hardware.architecture import CACHED_COUNTS, LORA_TARGET_MODULES, chroma_architecture


@pytest.fixture(scope="module")
def recounted():
    return count_architecture()


def test_cached_counts_match_the_real_configs_on_the_meta_device(recounted):
    assert recounted == CACHED_COUNTS


def test_counts_are_chromas(recounted):
    transformer = recounted["transformer"]
    assert transformer["total"] == 8_899_983_424  # 8.90B
    assert (transformer["double_blocks"], transformer["single_blocks"]) == (19, 38)
    assert (transformer["heads"], transformer["head_dim"], transformer["dim"]) == (24, 128, 3072)
    assert 4.75e9 < recounted["text_encoder"]["total"] < 4.77e9  # T5-XXL encoder, embedding counted once
    assert 83e6 < recounted["vae"]["total"] < 85e6


def test_the_parts_add_up_to_the_whole():
    arch = chroma_architecture()
    assert (
        arch.quantizable_weights + arch.block_bias_and_norm_params + arch.unquantized_params == arch.transformer_params
    )
    assert set(arch.top_level_params) == {"distilled_guidance_layer", "context_embedder", "x_embedder", "proj_out"}


def test_lora_params_follow_rank_times_in_plus_out():
    arch = chroma_architecture()
    # all: 8 square attention projections per double block, q/k/v per single block
    assert arch.lora_params("all", 16) == 16 * 3072 * 2 * (19 * 8 + 38 * 3) == 26_148_864
    assert arch.lora_params("all", 32) == 2 * arch.lora_params("all", 16)
    ffs = arch.lora_params("all+ffs", 16) - arch.lora_params("all", 16)
    per_double = 4 * 16 * (3072 + 12288)  # ff and ff_context, up and down
    per_single = 16 * (3072 + 12288) + 16 * (15360 + 3072)  # proj_mlp and the block's proj_out
    assert ffs == 19 * per_double + 38 * per_single
    assert arch.lora_params("context", 16) < arch.lora_params("context+ffs", 16) < arch.lora_params("all", 16)


@pytest.fixture(scope="module")
def meta_transformer():
    import torch
    from diffusers import ChromaTransformer2DModel

    from chroma_studio.hardware.architecture import read_model_config

    config = {k: v for k, v in read_model_config("transformer").items() if not k.startswith("_")}
    with torch.device("meta"):
        return ChromaTransformer2DModel(**config)


@pytest.mark.parametrize("target", list(LORA_TARGET_MODULES))
def test_targets_select_exactly_the_modules_the_engine_adapts(meta_transformer, target):
    from chroma_studio.training.lora import target_module_names

    arch = chroma_architecture()
    ours = {
        f"{prefix}.{i}.{lin.name}"
        for prefix, kind in (("transformer_blocks", "double"), ("single_transformer_blocks", "single"))
        for i in range(arch.blocks(kind))
        for lin in arch.lora_modules(target, kind)
    }
    engine = set(target_module_names(meta_transformer, target))
    assert ours == engine
    modules = dict(meta_transformer.named_modules())
    engine_params = sum(16 * (modules[n].in_features + modules[n].out_features) for n in engine)
    assert arch.lora_params(target, 16) == engine_params
