"""Automatic captioning in the engine: the captioning job (``runner``), the captioners' loading
and generation (``model``), what they are asked (``prompts``), how Qwen2.5-VL is fed (``qwen_inputs``) and the
offline demo captioners (``demo``, ``demo_qwen``). The catalogue itself is torch-free, in ``dataset/captioners.py``."""

from __future__ import annotations

from chroma_studio.training.captioning.runner import run_captioning

__all__ = ["run_captioning"]
