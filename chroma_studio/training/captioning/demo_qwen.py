"""The ``demo-qwen`` captioner: a tiny random ``Qwen2_5_VLForConditionalGeneration``.

The same classes as the Qwen2.5-VL 3B and 7B captioners (the windowed vision transformer with its
2x2 patch merger, the Qwen2 language model with multimodal rotary positions, the
image processor), with a ChatML chat template of our own that places the image as Qwen's
does (``<|vision_start|><|image_pad|><|vision_end|>`` before the user's text). It is saved as an
ordinary transformers folder by :mod:`.demo`, so a captioning job loads it through the code that
loads the downloaded Qwen models.

The image processor is transformers' Pillow-based ``Qwen2VLImageProcessorPil``; like the real
models, the demo is fed by :mod:`.qwen_inputs` (no video processor, so no torchvision needed).
"""

from __future__ import annotations

from typing import Any

from chroma_studio.training.captioning.demo import DEMO_SEED, _gibberish_settings, word_tokenizer

QWEN_SPECIALS = [
    "<pad>",
    "<|im_start|>",
    "<|im_end|>",
    "<unk>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
PATCH = 4  # pixels per vision patch side (Qwen's is 14)
MERGE = 2  # patches merged per side into one language token, as Qwen's
# The processor resizes every image to between 4 and 16 language tokens (8x8 to 16x16 patches).
MIN_PIXELS = (PATCH * MERGE * 2) ** 2
MAX_PIXELS = (PATCH * MERGE * 4) ** 2

# ChatML as Qwen2.5-VL writes it; an image part of a typed message becomes the vision tokens.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_qwen_demo() -> tuple[Any, Any]:
    """The tiny random Qwen2.5-VL and its processor, the same on every run."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    tokenizer = word_tokenizer(QWEN_SPECIALS, "<|im_start|>", "<|im_end|>", "<|image_pad|>")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    images = Qwen2VLImageProcessorPil(
        patch_size=PATCH,
        merge_size=MERGE,
        temporal_patch_size=2,
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "patch_size": PATCH,
            "spatial_merge_size": MERGE,
            "temporal_patch_size": 2,
            "window_size": PATCH * MERGE * 2,
            "fullatt_block_indexes": [1],
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            # the head's 16 channels rotate as 8 frequency pairs: 2 for time, 3 for height, 3 for width
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _gibberish_settings(model, tokenizer)
    return model, _Parts(tokenizer, images)


class _Parts:
    """Saves the tokenizer (with the chat template) and the image processor where the processor would."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts

    def save_pretrained(self, folder: Any) -> None:
        for part in self.parts:
            part.save_pretrained(folder)
