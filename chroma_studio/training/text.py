"""T5 prompt encoding and the text attention mask Chroma needs.

Chroma attends to every real caption token plus exactly one padding token; every other padding
position must be invisible. Two facts let us keep far fewer text positions than the 512 that
other trainers feed:

- T5 runs with the attention mask on, so its output at a real token, and at the first padding
  token, does not depend on how much padding follows. We encode at the batch's own length and
  keep only the visible rows: the real tokens and the one padding token.
- Inside the transformer, masked text tokens are invisible to every other token and all text
  positions (txt_ids) are zero, so a batch's text can be cut to its longest visible prompt
  (rounded up to a multiple of 8) without changing the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

TEXT_ALIGN = 8


def visible_length(token_count: int, max_length: int) -> int:
    """Real tokens (EOS included) plus the one padding token Chroma keeps, if any padding exists."""
    return min(token_count + 1, max_length)


@torch.no_grad()
def encode_prompts(
    text_encoder: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    max_length: int,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """Encode prompts with T5 (mask on); return per prompt the visible rows, shape (L_i, D).

    L_i = real tokens + 1 (the unmasked padding token), or max_length when the prompt fills it.
    """
    device = device or next(text_encoder.parameters()).device
    tokens = tokenizer(
        list(prompts),
        padding="longest",
        max_length=max_length,
        truncation=True,
        return_tensors="pt",
    )
    ids, mask = tokens.input_ids, tokens.attention_mask
    counts = mask.sum(dim=1).tolist()
    width = max(visible_length(c, max_length) for c in counts)
    if ids.shape[1] < width:  # ensure the padding token Chroma keeps exists for the longest prompt
        pad = torch.full((ids.shape[0], width - ids.shape[1]), tokenizer.pad_token_id, dtype=ids.dtype)
        ids = torch.cat([ids, pad], dim=1)
        mask = torch.cat([mask, torch.zeros_like(pad)], dim=1)
    hidden = text_encoder(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=False)[0]
    return [hidden[i, : visible_length(c, max_length)].detach() for i, c in enumerate(counts)]


def collate_text(
    embeds: Sequence[torch.Tensor], pad_to: int | None = None, align: int = TEXT_ALIGN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack visible text rows into a batch: (B, S, D) embeddings and a (B, S) boolean mask.

    S is the longest L_i rounded up to ``align`` (or ``pad_to`` to reproduce a fixed length such
    as 512). Rows past L_i are zeros and masked.
    """
    longest = max(e.shape[0] for e in embeds)
    width = pad_to if pad_to is not None else -(-longest // align) * align
    if width < longest:
        raise ValueError(f"cannot pad text of length {longest} to {width}")
    batch = embeds[0].new_zeros((len(embeds), width, embeds[0].shape[-1]))
    mask = torch.zeros((len(embeds), width), dtype=torch.bool, device=embeds[0].device)
    for i, e in enumerate(embeds):
        batch[i, : e.shape[0]] = e
        mask[i, : e.shape[0]] = True
    return batch, mask


def apply_t5_padding(embeds: torch.Tensor, text_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """``zero``: multiply by the mask, so masked positions are exactly zero (a safety net in case a
    mask is ever lost; with the mask applied it changes nothing). ``unmodified``: as is."""
    if mode == "zero":
        return embeds * text_mask.unsqueeze(-1).to(embeds.dtype)
    return embeds


def joint_attention_mask(text_mask: torch.Tensor, image_tokens: int) -> torch.Tensor:
    """The (B, S_txt + S_img) boolean mask the transformer takes: text as given, image all visible.

    It must be boolean: the transformer builds the pairwise mask as an outer product, and torch
    adds a float mask to the attention scores instead of masking (0/1 floats would hide nothing).
    """
    image = torch.ones((text_mask.shape[0], image_tokens), dtype=torch.bool, device=text_mask.device)
    return torch.cat([text_mask.bool(), image], dim=1)
