import pytest
import torch

from chroma_studio.training.errors import TrainingError
from chroma_studio.training.lora import add_lora, lora_parameters
from chroma_studio.training.quantize import is_quantized, nf4_quantization_config, quantize_transformer
from chroma_studio.training.step import StepInputs, flow_matching_loss
from chroma_studio.training.text import collate_text


@pytest.mark.parametrize("precision", ["int8-quanto", "int4-quanto"])
def test_quanto_quantizes_blocks_keeps_embedders_and_lora_trains_on_top(demo_pipeline, precision):
    from optimum.quanto import QModuleMixin

    transformer = demo_pipeline.transformer
    base = {n: p.detach().clone() for n, p in transformer.named_parameters()}
    quantize_transformer(transformer, precision, torch.device("cpu"))
    assert is_quantized(transformer)
    assert isinstance(transformer.transformer_blocks[0].attn.to_q, QModuleMixin)
    assert isinstance(transformer.single_transformer_blocks[0].proj_out, QModuleMixin)
    for name in ("x_embedder", "context_embedder", "proj_out"):
        assert not isinstance(getattr(transformer, name), QModuleMixin)
    assert not any(isinstance(m, QModuleMixin) for m in transformer.distilled_guidance_layer.modules())

    add_lora(transformer, rank=4, alpha=4, target="all")
    g = torch.Generator().manual_seed(0)
    text, mask = collate_text([torch.randn(6, 32, generator=g)])
    batch = StepInputs(
        torch.randn(1, 16, 8, 8, generator=g), text, mask, torch.tensor([0.4]), torch.randn(1, 16, 8, 8, generator=g)
    )
    loss = flow_matching_loss(transformer, batch, dtype=torch.float32)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in lora_parameters(transformer)]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    frozen = [n for n, p in transformer.named_parameters() if p.requires_grad and "lora_" not in n]
    assert not frozen
    assert torch.equal(transformer.x_embedder.weight, base["x_embedder.weight"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is missing")
def test_nf4_is_refused_clearly_without_cuda():
    with pytest.raises(TrainingError) as info:
        nf4_quantization_config(torch.bfloat16)
    assert "CUDA" in str(info.value) and "int4-quanto" in info.value.hint
