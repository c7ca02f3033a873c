"""Captioning speed and memory on this CPU, with random weights at the real architectures.

Florence-2 large (the fast captioner): the real widths and depths (DaViT 256-2048 wide, depths
1-1-9-1; BART-large, 12+12 layers, d_model 1024, 51,289-token vocabulary; 768 px images, 577 image
tokens), fp32 as the engine runs it on a CPU, asked for ``<DETAILED_CAPTION>`` through the
Florence-2 processor, generating exactly ``--tokens`` tokens with the engine's beam search (3
beams) and greedily. Prints images/s and peak RAM.

The 8B class (JoyCaption Beta One: SigLIP so400m at 384 px, 729 image tokens, and Llama 3.1 8B):
16 GB of bf16 weights would not fit beside the rest of this machine's work, so only
``--llava-layers`` (default 1) of its 32 language layers and of its 27 vision layers are built,
at full width with the full 128,256-token embedding and head. One prefill and a few new tokens
are timed, the time spent inside the built layers is measured with hooks, and the whole model's
time is estimated as the rest plus the layers' time scaled to the real depth (stated as an
estimate in the output).

Usage: python tests/benchmarks/captioning.py [--tokens N] [--images N] [--llava-layers N | --no-llava]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import psutil

FLORENCE_VISION = {
    "depths": (1, 1, 9, 1),
    "embed_dim": (256, 512, 1024, 2048),
    "num_heads": (8, 16, 32, 64),
    "num_groups": (8, 16, 32, 64),
    "window_size": 12,
    "projection_dim": 1024,
    "drop_path_rate": 0.0,
}
FLORENCE_TEXT = {
    "d_model": 1024,
    "encoder_layers": 12,
    "decoder_layers": 12,
    "encoder_attention_heads": 16,
    "decoder_attention_heads": 16,
    "encoder_ffn_dim": 4096,
    "decoder_ffn_dim": 4096,
    "max_position_embeddings": 1024,
}
FLORENCE_VOCAB = 51289
FLORENCE_IMAGE = 768

SIGLIP_SO400M = {"hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16, "patch_size": 14}
SIGLIP_DEPTH, SIGLIP_IMAGE = 27, 384
LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}
LLAMA_DEPTH = 32


def peak_rss() -> int:
    """The process's peak resident memory so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def florence(tokens: int, images: int) -> dict[str, Any]:
    import torch
    from PIL import Image
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

    from chroma_studio.training.captioning.demo import florence_image_tokens, florence_processor, token_ids

    # The demo's word-level tokenizer: the prompt's length is close to BART's; the model's vocabulary is real.
    processor = florence_processor(FLORENCE_IMAGE)
    tokenizer = processor.tokenizer
    ids = {**token_ids(tokenizer), "decoder_start_token_id": tokenizer.eos_token_id}
    config = Florence2Config(
        vision_config=Florence2VisionConfig(**FLORENCE_VISION),
        text_config=BartConfig(vocab_size=FLORENCE_VOCAB + 1, **FLORENCE_TEXT, **ids),
        image_token_id=tokenizer.image_token_id,
    )
    started = time.perf_counter()
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(config).eval()
    build_s = time.perf_counter() - started
    parameters = sum(p.numel() for p in model.parameters())
    rss_loaded = psutil.Process().memory_info().rss
    pictures = [Image.new("RGB", (1024, 768), (30 * i % 255, 120, 200)) for i in range(images)]
    result: dict[str, Any] = {
        "parameters": parameters,
        "dtype": "fp32",
        "image_tokens": florence_image_tokens(FLORENCE_IMAGE),
        "new_tokens": tokens,
        "build_s": round(build_s, 1),
        "rss_after_build_gb": round(rss_loaded / 1e9, 2),
    }
    for beams in (3, 1):
        inputs = processor(text="<DETAILED_CAPTION>", images=pictures[0], return_tensors="pt")
        with torch.inference_mode():  # a warm-up: the first call allocates and picks kernels
            model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, num_beams=beams, do_sample=False)
        started = time.perf_counter()
        for picture in pictures:
            inputs = processor(text="<DETAILED_CAPTION>", images=picture, return_tensors="pt")
            with torch.inference_mode():
                out = model.generate(
                    **inputs, max_new_tokens=tokens, min_new_tokens=tokens, num_beams=beams, do_sample=False
                )
            assert out.shape[1] >= tokens
        seconds = time.perf_counter() - started
        result[f"beams_{beams}"] = {
            "seconds_per_image": round(seconds / images, 2),
            "images_per_s": round(images / seconds, 3),
        }
        print(json.dumps({f"florence_beams_{beams}": result[f"beams_{beams}"]}), file=sys.stderr, flush=True)
    result["peak_rss_gb"] = round(peak_rss() / 1e9, 2)
    del model
    return result


def llava_8b(layers: int, new_tokens: int = 4, prompt_tokens: int = 60) -> dict[str, Any]:
    import torch
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, SiglipVisionConfig

    image_tokens = (SIGLIP_IMAGE // SIGLIP_SO400M["patch_size"]) ** 2
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(num_hidden_layers=layers, image_size=SIGLIP_IMAGE, **SIGLIP_SO400M),
        text_config=LlamaConfig(num_hidden_layers=layers, **LLAMA_8B),
        image_token_index=LLAMA_8B["vocab_size"] - 1,
        vision_feature_select_strategy="full",
        vision_feature_layer=-2 if layers > 1 else -1,
    )
    before = psutil.Process().memory_info().rss
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 from the start: never a float32 copy in RAM
    try:
        model = LlavaForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default)
    parameters = sum(p.numel() for p in model.parameters())
    inside = {"language": 0.0, "vision": 0.0}
    starts: dict[int, float] = {}

    def timed(part: str) -> tuple[Any, Any]:
        def before_layer(module: Any, args: Any) -> None:
            starts[id(module)] = time.perf_counter()

        def after_layer(module: Any, args: Any, output: Any) -> None:
            inside[part] += time.perf_counter() - starts.pop(id(module))

        return before_layer, after_layer

    for part, layer_list in (
        ("language", model.model.language_model.layers),
        ("vision", next(m for n, m in model.model.vision_tower.named_modules() if n.endswith("layers"))),
    ):
        before_layer, after_layer = timed(part)
        for layer in layer_list:
            layer.register_forward_pre_hook(before_layer)
            layer.register_forward_hook(after_layer)
    input_ids = torch.cat(
        [torch.full((1, image_tokens), config.image_token_index), torch.randint(10, 1000, (1, prompt_tokens))], dim=1
    )
    pixels = torch.randn(1, 3, SIGLIP_IMAGE, SIGLIP_IMAGE, dtype=torch.bfloat16)
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            pixel_values=pixels,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
        )
    total = time.perf_counter() - started
    # Every language layer costs the same, and so does every vision layer: scale each to the real depth.
    layers_s = inside["language"] + inside["vision"]
    estimate = (total - layers_s) + inside["language"] * LLAMA_DEPTH / layers + inside["vision"] * SIGLIP_DEPTH / layers
    return {
        "built": f"{layers} of {LLAMA_DEPTH} language and {layers} of {SIGLIP_DEPTH} vision layers, full width",
        "parameters_built": parameters,
        "dtype": "bf16",
        "prompt_tokens": image_tokens + prompt_tokens,
        "new_tokens": new_tokens,
        "measured_s": round(total, 2),
        "inside_language_layers_s": round(inside["language"], 2),
        "inside_vision_layers_s": round(inside["vision"], 2),
        "estimated_full_model_s_per_image": round(estimate, 1),
        "estimate_note": "an estimate: the rest as measured, plus each built layer's time times the real depth",
        "rss_added_gb": round((psutil.Process().memory_info().rss - before) / 1e9, 2),
        "full_model_weights_gb_bf16": round(8.48e9 * 2 / 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40, help="tokens generated per caption")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--llava-layers", type=int, default=1)
    parser.add_argument("--no-llava", action="store_true")
    parser.add_argument("--no-florence", action="store_true")
    args = parser.parse_args()

    import torch

    report: dict[str, Any] = {
        "cpu": {"cores": psutil.cpu_count(logical=True), "torch_threads": torch.get_num_threads()},
        "load_average_at_start": round(psutil.getloadavg()[0], 1),  # other work on the machine slows it
    }
    if not args.no_florence:
        report["florence_2_large"] = florence(args.tokens, args.images)
        print(json.dumps({"florence_2_large": report["florence_2_large"]}), file=sys.stderr, flush=True)
    if not args.no_llava:
        report["joycaption_class_8b"] = llava_8b(args.llava_layers)
    report["load_average_at_end"] = round(psutil.getloadavg()[0], 1)
    report["peak_rss_gb"] = round(peak_rss() / 1e9, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
