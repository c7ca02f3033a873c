import pytest
import torch
from accelerate import init_empty_weights
from diffusers import ChromaTransformer2DModel
from support import transformer_inputs

from chroma_studio.base.paths import resources_dir
from chroma_studio.training.lora import TARGET_PATTERNS, add_lora, lora_parameters, target_module_names


@pytest.fixture(scope="module")
def real_layout():
    """The real 8.9B transformer, on the meta device (no memory)."""
    config = ChromaTransformer2DModel.load_config(str(resources_dir() / "models" / "transformer"))
    with init_empty_weights():
        return ChromaTransformer2DModel.from_config(config)


FORBIDDEN = ("x_embedder", "context_embedder", "distilled_guidance_layer", "time_text_embed", "norm_out")


@pytest.mark.parametrize("target", list(TARGET_PATTERNS))
def test_targets_never_touch_embedders_approximator_or_final_projection(real_layout, target):
    names = target_module_names(real_layout, target)
    assert names
    assert "proj_out" not in names
    assert not [n for n in names if n.startswith(FORBIDDEN)]


def test_target_counts_on_the_real_architecture(real_layout):
    count = {t: len(target_module_names(real_layout, t)) for t in TARGET_PATTERNS}
    assert count["all"] == 19 * 8 + 38 * 3
    assert count["all+ffs"] == 19 * 12 + 38 * 5
    assert count["context"] == 19 * 4
    assert count["context+ffs"] == 19 * 6
    assert count["tiny"] == 19 * 5 + 38 * 3


def test_all_ffs_includes_single_block_proj_out_and_proj_mlp(real_layout):
    names = set(target_module_names(real_layout, "all+ffs"))
    assert "single_transformer_blocks.37.proj_out" in names
    assert "single_transformer_blocks.0.proj_mlp" in names
    assert "transformer_blocks.18.ff_context.net.2" in names


def test_a_fresh_lora_leaves_the_output_unchanged_and_trains_only_itself(demo_pipeline):
    transformer = demo_pipeline.transformer
    inputs = transformer_inputs()
    with torch.no_grad():
        before = transformer(**inputs)[0]
    names = add_lora(transformer, rank=4, alpha=8, target="all")
    with torch.no_grad():
        after = transformer(**inputs)[0]
    assert torch.equal(before, after)
    trainable = [n for n, p in transformer.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(trainable) == 2 * len(names)
    assert all(p.dtype == torch.float32 for p in lora_parameters(transformer))
