"""A Qwen2.5-VL captioner's inputs for one image and one prompt, without a video processor.

transformers' ``Qwen2_5_VLProcessor`` cannot be built without a video processor, and its video
processor cannot be built without torchvision, although captioning never shows the model a video.
A torchvision that does not match the installed torch (the default index's CUDA build next to a
CPU torch, say) cannot even be imported. So the captioners are fed here from the two parts the
processor would use for a still image, loaded by transformers from the model's folder: its
tokenizer with the chat template, and its image processor (the torchvision one when torchvision
works, else the Pillow one). The processor's own steps for one image are few and documented in
its model card: render the chat, put one ``<|image_pad|>`` per merged patch in place of the
image's, tokenize, and mark those tokens as image tokens (``mm_token_type_ids``), which the model
needs to place them in its 3-D rotary positions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

IMAGE_TOKEN = "<|image_pad|>"
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")  # the processor's, preferred to the tokenizer's


class QwenInputs:
    """Tokenizer, image processor and chat template of a Qwen2.5-VL folder."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.image_processor = AutoImageProcessor.from_pretrained(folder)
        self.chat_template = chat_template(folder) or self.tokenizer.chat_template
        if not self.chat_template:
            raise ValueError(f"{folder} has no chat template (chat_template.jinja or the tokenizer's)")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.merge_size = int(getattr(self.image_processor, "merge_size", 2))

    def prompt(self, messages: list[dict[str, Any]]) -> str:
        """The chat rendered as text, ending where the assistant's answer begins."""
        return str(
            self.tokenizer.apply_chat_template(
                cast(Any, messages), chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
            )
        )

    def __call__(self, prompt: str, image: Any) -> Any:
        """``BatchFeature`` of one sequence: input_ids, attention_mask, mm_token_type_ids, pixel_values,
        image_grid_thw."""
        from transformers import BatchFeature

        if prompt.count(IMAGE_TOKEN) != 1:
            raise ValueError(f"the prompt must hold one {IMAGE_TOKEN}, it holds {prompt.count(IMAGE_TOKEN)}")
        pixels = self.image_processor(images=[image], return_tensors="pt")
        tokens = int(pixels["image_grid_thw"][0].prod()) // self.merge_size**2
        text = self.tokenizer([prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * tokens)], return_tensors="pt")
        kinds = (text["input_ids"] == self.image_token_id).long()
        return BatchFeature(
            {**text, "mm_token_type_ids": kinds, **pixels},
            tensor_type="pt",
        )

    def batch_decode(self, ids: Any, **kwargs: Any) -> list[str]:
        return list(self.tokenizer.batch_decode(ids, **kwargs))


def chat_template(folder: Path) -> str | None:
    """The processor's chat template saved in ``folder``, if there is one."""
    jinja = folder / TEMPLATE_FILES[0]
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    saved = folder / TEMPLATE_FILES[1]
    if saved.is_file():
        template = json.loads(saved.read_text(encoding="utf-8")).get("chat_template")
        return str(template) if template else None
    return None
