import torch

from chroma_studio.training.step import StepInputs, flow_matching_loss, image_ids, pack_latents, unpack_latents
from chroma_studio.training.text import collate_text


def test_pack_is_2x2_patches_and_unpack_inverts_it():
    latents = torch.arange(2 * 16 * 4 * 6, dtype=torch.float32).view(2, 16, 4, 6)
    packed = pack_latents(latents)
    assert packed.shape == (2, 2 * 3, 64)
    # the first token holds channel 0's top-left 2x2 patch first
    assert packed[0, 0, :4].tolist() == [
        latents[0, 0, 0, 0],
        latents[0, 0, 0, 1],
        latents[0, 0, 1, 0],
        latents[0, 0, 1, 1],
    ]
    assert torch.equal(unpack_latents(packed, 4, 6), latents)


def test_image_ids_are_zero_row_col():
    ids = image_ids(4, 6)
    assert ids.shape == (6, 3)
    assert ids[:, 0].eq(0).all()
    assert ids[4].tolist() == [0.0, 1.0, 1.0]


def test_loss_is_mse_against_noise_minus_x0(demo_pipeline):
    transformer = demo_pipeline.transformer
    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(1, 16, 8, 8, generator=g), torch.randn(1, 16, 8, 8, generator=g)
    sigma = torch.tensor([0.3])
    text, mask = collate_text([torch.randn(5, 32, generator=g)])
    loss = flow_matching_loss(transformer, StepInputs(latents, text, mask, sigma, noise), dtype=torch.float32)

    noisy = 0.7 * latents + 0.3 * noise
    full_mask = torch.cat([mask, torch.ones(1, 16, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        prediction = transformer(
            hidden_states=pack_latents(noisy),
            encoder_hidden_states=text,
            timestep=sigma,
            img_ids=image_ids(8, 8),
            txt_ids=torch.zeros(8, 3),
            attention_mask=full_mask,
            return_dict=False,
        )[0]
    expected = ((prediction - pack_latents(noise - latents)) ** 2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
