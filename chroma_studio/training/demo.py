"""The demo model: tiny random Chroma components, built deterministically on first use.

It has the real classes (ChromaTransformer2DModel, a T5 encoder and tokenizer, the 16-channel
AutoencoderKL, FlowMatchEulerDiscreteScheduler) at tiny widths, saved as an ordinary diffusers
folder, so a whole run exercises the same code as the real model, offline, in about a minute
on a laptop CPU. Its weights are random: its samples are noise. It exists to try the app and to
test it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chroma_studio.base.paths import cache_dir

logger = logging.getLogger(__name__)

DEMO_VERSION = "demo-v1"
DEMO_SEED = 1234

TRANSFORMER = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "axes_dims_rope": (4, 6, 6),
    "approximator_num_channels": 16,
    "approximator_hidden_dim": 32,
    "approximator_layers": 1,
}
T5 = {
    "d_model": 32,
    "d_ff": 64,
    "d_kv": 8,
    "num_heads": 4,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 16,
    "block_out_channels": (8, 16, 16, 16),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 256,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
SCHEDULER = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}

# Words the demo tokenizer knows as whole pieces; anything else falls back to single characters.
_BASE_WORDS = (
    "a above american an and are arranged art astronaut at background behind beside big bird black blades "
    "blue blurry brick bright brown building buildings by camera cat child city close closeup cloud "
    "clouds coffee coins cold color colorful colors colour cup dark day deep dense detailed distant dog "
    "dots down drawing dress even eyes face far field flag flat flower flowers food for forest from full "
    "fur galaxies glass glasses gold grass gravel gray green grey ground hair hand hands hard hat helmet "
    "her holding horse house image in indoor is it lake large latte launch light lighting lights lines "
    "looking man many metal model moon morning mortar mountain mountains night ocean of old on or orange "
    "pad painting pattern person photo photograph picture pink plate portrait purple rain red river "
    "rocket room rows saucer sea seen sharp shirt shuttle side silver sitting sks sky small smiling snow "
    "soft space spoon standing star stars stone stones street studio style suit sunset tabby table "
    "texture the to top tower tree trees tripod up view wall warm water wearing white with woman wood "
    "wooden yellow young"
)


def demo_model_dir() -> Path:
    return cache_dir() / "models" / DEMO_VERSION


def ensure_demo_model() -> Path:
    """Build the demo model folder if it is missing and return its path."""
    target = demo_model_dir()
    if (target / "model_index.json").is_file():
        return target
    logger.info("building the demo model in %s", target)
    tmp = target.with_name(target.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    build_demo_pipeline().save_pretrained(tmp, safe_serialization=True)
    tmp.replace(target) if not target.exists() else None
    return target


def build_demo_pipeline():
    """The tiny random ChromaPipeline, the same on every run."""
    import torch
    from diffusers import AutoencoderKL, ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler
    from transformers import T5Config, T5EncoderModel

    tokenizer = build_demo_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEMO_SEED)
        transformer = ChromaTransformer2DModel(**TRANSFORMER)
        text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), **T5))
        vae = AutoencoderKL(**VAE)
    return ChromaPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        transformer=transformer.eval(),
    )


def _demo_vocabulary() -> list[str]:
    words = set(_BASE_WORDS.split())
    characters = [chr(c) for c in range(33, 127)]
    return sorted(words) + characters


def build_demo_tokenizer():
    """A T5 tokenizer over a small vocabulary, built in code.

    It is a ``tokenizers`` Unigram model with a Metaspace pre-tokenizer, as T5's own is, so that
    transformers rebuilds the very same tokenizer when it reloads the saved files.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    for index, token in enumerate(_demo_vocabulary()):
        score = -2.0 - index * 1e-4
        if len(token) > 1 or token.isalnum():
            pieces.append(("\u2581" + token, score))
        if len(token) == 1:
            pieces.append((token, score - 5.0))
    pieces.append(("\u2581", -20.0))
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=512,
    )
