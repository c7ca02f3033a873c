"""The demo captioners: tiny random models of the real captioners' transformers classes.

``demo`` is a ``LlavaForConditionalGeneration`` (as JoyCaption is: a SigLIP vision tower and a
Llama language model) with a Llama-3-style chat template; ``demo-florence`` is a
``Florence2ForConditionalGeneration`` (DaViT vision tower, BART encoder-decoder) with the
Florence-2 processor and its task tokens. Tokenizer, image processor and chat template are built
in code and the whole model is saved as an ordinary transformers folder in the app's cache, so a
captioning job loads it through the very code that loads a downloaded captioner, offline. The
weights are random: the captions are strings of words from a small vocabulary.

The tokenizer is a ``tokenizers`` word-level model (whole words, split at spaces and
punctuation) rather than the real models' byte-level BPE: random weights then decode to words,
not to broken bytes, and nothing needs a download.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from chroma_studio.base.paths import cache_dir

logger = logging.getLogger(__name__)

DEMO_CAPTIONER_VERSION = "v1"
DEMO_SEED = 4321

# The words the demo captioners know; they write nothing else.
VOCABULARY = (
    "a an the of in on with and at by photo picture painting drawing render portrait closeup view image "
    "man woman child person dog cat bird horse tree trees flower flowers house building street city sky "
    "cloud clouds sun moon star stars sea lake river mountain mountains field forest grass snow rain "
    "red orange yellow green blue purple pink brown black white gray silver gold bright dark soft warm "
    "cold light shadow sitting standing walking holding wearing looking smiling hat dress shirt glasses "
    "table chair cup plate window door wall floor wooden stone metal glass small large old young detailed "
    "blurry sharp background foreground studio indoor outdoor night day morning sunset lighting style"
)

LLAVA_SPECIALS = [
    "<pad>",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<unk>",
    "<image>",
    "<|start_header_id|>",
    "<|end_header_id|>",
]
FLORENCE_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]

# Llama 3's layout; like JoyCaption's template, it puts the image into the first user message.
LLAVA_CHAT_TEMPLATE = (
    "{% set ns = namespace(image=false) %}{{ bos_token }}"
    "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['role'] == 'user' and not ns.image %}<image>\n{% set ns.image = true %}{% endif %}"
    "{{ message['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

DEMO_MAX_NEW_TOKENS = 12  # the demo's answers: a dozen words of gibberish, whatever the length asked
LLAVA_IMAGE_SIZE = 32
LLAVA_PATCH = 8
FLORENCE_IMAGE_SIZE = 64


def demo_captioner_dir(name: str) -> Path:
    return cache_dir() / "models" / f"captioner-{name}-{DEMO_CAPTIONER_VERSION}"


def ensure_demo_captioner(name: str) -> Path:
    """The folder of the demo captioner ``name`` ("demo", "demo-florence", "demo-qwen"), built on first use."""
    from chroma_studio.training.captioning.demo_qwen import build_qwen_demo

    builders = {"demo": build_llava_demo, "demo-florence": build_florence_demo, "demo-qwen": build_qwen_demo}
    if name not in builders:
        raise ValueError(f"there is no demo captioner called '{name}'")
    target = demo_captioner_dir(name)
    if (target / "config.json").is_file():
        return target
    logger.info("building the demo captioner %s in %s", name, target)
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    model, processor = builders[name]()
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    if not target.exists():
        partial.replace(target)
    else:  # another process built it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return target


def word_tokenizer(specials: list[str], bos: str, eos: str, image_token: str) -> Any:
    """A tokenizer over ``VOCABULARY``: ``specials`` first (ids 0...), then the words, "." and ","."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*sorted(set(VOCABULARY.split())), ".", ","]
    vocabulary = {token: index for index, token in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=[t for t in specials if t not in (bos, eos, "<pad>", "<unk>")],
        extra_special_tokens={"image_token": image_token},
    )


def image_processor(family: str, **settings: Any) -> Any:
    """``<family>ImageProcessor`` (e.g. "CLIP", "Siglip"): the Pillow-based one where transformers has
    both (5.x, which otherwise wants torchvision), the only one before that."""
    import transformers

    cls = getattr(transformers, f"{family}ImageProcessorPil", None) or getattr(transformers, f"{family}ImageProcessor")
    return cls(**settings)


def florence_image_tokens(image_size: int) -> int:
    """Florence-2's image tokens for a square image: the vision tower's strides multiply to 32, so a
    (size/32)^2 grid, plus one pooled token."""
    return (image_size // 32) ** 2 + 1


def florence_processor(image_size: int) -> Any:
    """A ``Florence2Processor`` over the word tokenizer, for ``image_size``-pixel square images."""
    from transformers import Florence2Processor

    images = image_processor(
        "CLIP",
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        image_seq_length=florence_image_tokens(image_size),
    )
    tokenizer = word_tokenizer(FLORENCE_SPECIALS, "<s>", "</s>", "<image>")
    return Florence2Processor(image_processor=images, tokenizer=tokenizer)


def token_ids(tokenizer: Any) -> dict[str, Any]:
    """The special token ids a language model's config names, as the tokenizer has them."""
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def random_model(model_class: Any, config: Any, tokenizer: Any) -> Any:
    """``model_class(config)`` with the demo seed's weights (the same on every run), set to write words."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        model = model_class(config).eval()
    _gibberish_settings(model, tokenizer)
    return model


def _gibberish_settings(model: Any, tokenizer: Any) -> None:
    """Generation defaults that make a random model write a few words: no special tokens but the
    end, no repeats, at least a few words before the end."""
    ends = {tokenizer.eos_token_id}
    model.generation_config.suppress_tokens = [i for i in tokenizer.all_special_ids if i not in ends]
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.min_new_tokens = 4


def build_llava_demo() -> tuple[Any, Any]:
    """The tiny random LLaVA (SigLIP + Llama) and its processor, the same on every run."""
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipVisionConfig

    tokenizer = word_tokenizer(LLAVA_SPECIALS, "<|begin_of_text|>", "<|eot_id|>", "<image>")
    processor = LlavaProcessor(
        image_processor=image_processor("Siglip", size={"height": LLAVA_IMAGE_SIZE, "width": LLAVA_IMAGE_SIZE}),
        tokenizer=tokenizer,
        patch_size=LLAVA_PATCH,
        vision_feature_select_strategy="full",  # SigLIP has no class token
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=0,
    )
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=LLAVA_IMAGE_SIZE,
            patch_size=LLAVA_PATCH,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=1024,
            **token_ids(tokenizer),
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    return random_model(LlavaForConditionalGeneration, config, tokenizer), processor


def build_florence_demo() -> tuple[Any, Any]:
    """The tiny random Florence-2 (DaViT + BART) and its processor, the same on every run."""
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

    processor = florence_processor(FLORENCE_IMAGE_SIZE)
    tokenizer = processor.tokenizer
    vision = Florence2VisionConfig(
        depths=(1, 1, 1, 1),
        embed_dim=(8, 16, 32, 64),
        num_heads=(1, 2, 2, 4),
        num_groups=(1, 2, 2, 4),
        window_size=2,
        projection_dim=32,
        drop_path_rate=0.0,
        max_position_embeddings=8,
        max_temporal_embeddings=4,
    )
    text = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=1024,
        **token_ids(tokenizer),
        decoder_start_token_id=tokenizer.eos_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tokenizer.image_token_id)
    return random_model(Florence2ForConditionalGeneration, config, tokenizer), processor
