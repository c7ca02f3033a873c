"""Chroma's text mask: right with and without gradient checkpointing, and trimming costs nothing."""

import pytest
import torch

from chroma_studio.training import lora
from chroma_studio.training.grad_checkpointing import disable_masked_checkpointing, enable_masked_checkpointing
from chroma_studio.training.step import StepInputs, flow_matching_loss
from chroma_studio.training.text import (
    apply_t5_padding,
    collate_text,
    encode_prompts,
    joint_attention_mask,
    visible_length,
)

CAPTIONS = ["a photo of a cat", "a grey brick wall texture with mortar lines, flat even lighting, close up"]


def padded_512(pipe, captions):
    """What other trainers (and the pipeline) feed: 512 positions, one padding token unmasked."""
    tokens = pipe.tokenizer(captions, padding="max_length", max_length=512, truncation=True, return_tensors="pt")
    with torch.no_grad():
        embeds = pipe.text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask)[0]
    mask = torch.arange(512)[None, :] <= tokens.attention_mask.sum(1)[:, None]
    return embeds, mask


@pytest.fixture
def model(demo_pipeline):
    transformer = demo_pipeline.transformer
    lora.add_lora(transformer, rank=4, alpha=4, target="all+ffs")
    with torch.no_grad():  # a trained-looking LoRA, so its gradients are not trivially zero
        for p in lora.lora_parameters(transformer):
            p.normal_(0, 0.1)
    return transformer.train()


def loss_and_grads(transformer, embeds, mask, t5_padding="unmodified"):
    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(2, 16, 8, 8, generator=g), torch.randn(2, 16, 8, 8, generator=g)
    batch = StepInputs(latents, embeds, mask, torch.tensor([0.2, 0.9]), noise)
    transformer.zero_grad()
    loss = flow_matching_loss(transformer, batch, dtype=torch.float32, t5_padding=t5_padding)
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in lora.lora_parameters(transformer)])


def test_t5_keeps_real_tokens_plus_one_pad_and_matches_512_padding(demo_pipeline):
    embeds = encode_prompts(demo_pipeline.text_encoder, demo_pipeline.tokenizer, CAPTIONS, 512)
    counts = demo_pipeline.tokenizer(CAPTIONS).attention_mask
    assert [e.shape[0] for e in embeds] == [len(c) + 1 for c in counts]
    full, _ = padded_512(demo_pipeline, CAPTIONS)
    for i, e in enumerate(embeds):
        torch.testing.assert_close(e, full[i, : e.shape[0]], atol=1e-5, rtol=0)


def test_a_prompt_that_fills_the_limit_has_no_padding_token():
    assert visible_length(77, 77) == 77
    assert visible_length(20, 77) == 21


def test_collate_rounds_up_to_eight_and_the_mask_is_boolean():
    text, mask = collate_text([torch.ones(3, 4), torch.ones(10, 4)])
    assert text.shape == (2, 16, 4) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [3, 10]
    assert text[0, 3:].abs().sum() == 0


def test_joint_mask_is_boolean_even_from_a_float_mask():
    joint = joint_attention_mask(torch.tensor([[1.0, 1.0, 0.0]]), image_tokens=4)
    assert joint.dtype == torch.bool and joint.tolist() == [[True, True, False, True, True, True, True]]


def test_t5_padding_zero_zeroes_masked_rows_and_keeps_the_visible_pad():
    embeds = torch.ones(1, 4, 2)
    mask = torch.tensor([[True, True, False, False]])
    assert apply_t5_padding(embeds, mask, "zero")[0, :, 0].tolist() == [1, 1, 0, 0]
    assert torch.equal(apply_t5_padding(embeds, mask, "unmodified"), embeds)


@pytest.mark.parametrize("checkpointed", [False, True])
def test_padding_changes_neither_loss_nor_gradients(model, demo_pipeline, checkpointed):
    if checkpointed:
        enable_masked_checkpointing(model)
    embeds, mask = padded_512(demo_pipeline, CAPTIONS)
    noisy = embeds.clone()
    noisy[~mask] = torch.randn_like(noisy[~mask]) * 10
    loss_a, grads_a = loss_and_grads(model, embeds, mask)
    loss_b, grads_b = loss_and_grads(model, noisy, mask)
    assert loss_a == loss_b
    assert torch.equal(grads_a, grads_b)
    assert grads_a.abs().sum() > 0


def test_checkpointing_gives_the_same_loss_and_gradients_as_the_plain_forward(model, demo_pipeline):
    embeds, mask = padded_512(demo_pipeline, CAPTIONS)
    plain = loss_and_grads(model, embeds, mask)
    enable_masked_checkpointing(model)
    checkpointed = loss_and_grads(model, embeds, mask)
    disable_masked_checkpointing(model)
    assert plain[0] == pytest.approx(checkpointed[0], abs=1e-6)
    torch.testing.assert_close(plain[1], checkpointed[1], atol=1e-6, rtol=1e-5)


def test_diffusers_own_checkpointing_loses_the_mask(model, demo_pipeline):
    """The pitfall our checkpointing exists for: if this starts failing, diffusers fixed it."""
    embeds, mask = padded_512(demo_pipeline, CAPTIONS)
    noisy = embeds.clone()
    noisy[~mask] = torch.randn_like(noisy[~mask]) * 10
    model.enable_gradient_checkpointing()
    assert loss_and_grads(model, embeds, mask)[0] != loss_and_grads(model, noisy, mask)[0]


@pytest.mark.parametrize("checkpointed", [False, True])
def test_trimmed_text_equals_the_full_512_sequence(model, demo_pipeline, checkpointed):
    if checkpointed:
        enable_masked_checkpointing(model)
    trimmed, trimmed_mask = collate_text(
        encode_prompts(demo_pipeline.text_encoder, demo_pipeline.tokenizer, CAPTIONS, 512)
    )
    assert trimmed.shape[1] < 64
    full, full_mask = padded_512(demo_pipeline, CAPTIONS)
    loss_t, grads_t = loss_and_grads(model, trimmed, trimmed_mask)
    loss_f, grads_f = loss_and_grads(model, full, full_mask)
    assert abs(loss_t - loss_f) < 1e-5
    assert (grads_t - grads_f).abs().max() < 1e-5


def test_outputs_are_finite_with_padding_present(model, demo_pipeline):
    embeds, mask = padded_512(demo_pipeline, CAPTIONS)
    loss, grads = loss_and_grads(model, embeds, mask, t5_padding="zero")
    assert torch.isfinite(torch.tensor(loss)) and torch.isfinite(grads).all()
