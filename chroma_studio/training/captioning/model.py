"""Loading a captioner by its transformers class, and asking it about one image.

A captioner from the catalogue is fetched from the Hub with progress events (``training/hub.py``:
``HF_ENDPOINT`` and offline mode apply), safetensors only, and loaded by the class the catalogue
names: no remote code is ever run. The demo captioners are built in code into the app's cache and
loaded the same way.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chroma_studio.dataset.captioners import Captioner, Dtype
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import Sink
from chroma_studio.training.captioning.demo import DEMO_MAX_NEW_TOKENS
from chroma_studio.training.captioning.prompts import Request, conversation
from chroma_studio.training.errors import TrainingError

logger = logging.getLogger(__name__)

# What a captioner needs from its repository: never pickled weights (*.bin, *.pt), which can run code.
FILE_PATTERNS = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken")
HEADROOM = 0.9


@dataclass(frozen=True)
class Placement:
    device: str  # "cuda", "mps" or "cpu"
    dtype: Dtype


def choose_placement(captioner: Captioner) -> Placement:
    """Where and in what precision to run ``captioner`` on this machine.

    A GPU gets bf16 (fp16 on a Mac) when it fits, else NF4 where bitsandbytes and CUDA are there;
    a CPU runs fp32, the only precision its kernels are fast in. The demo always runs on the CPU.
    """
    import torch

    if captioner.demo:
        return Placement("cpu", "fp32")
    if torch.cuda.is_available():
        memory = int(torch.cuda.get_device_properties(0).total_memory * HEADROOM)
        wide: Dtype = "bf16" if "bf16" in captioner.memory else "fp16"
        if captioner.memory.get(wide, 0) <= memory or "nf4" not in captioner.memory:
            return Placement("cuda", wide)
        return Placement("cuda", "nf4")
    if torch.backends.mps.is_available():
        return Placement("mps", "fp16")
    return Placement("cpu", "fp32")


def fetch(captioner: Captioner, sink: Sink, control: TrainingControl | None) -> Path:
    """The local folder of ``captioner``: built for the demo, else downloaded (or found in the cache)."""
    if captioner.demo:
        from chroma_studio.training.captioning.demo import ensure_demo_captioner

        return ensure_demo_captioner(captioner.name)
    from chroma_studio.training.hub import download

    return Path(download(captioner.repo_id, FILE_PATTERNS, sink, control))


class LoadedCaptioner:
    """A captioner's model and processor on its device, ready to answer ``Request``s about an image."""

    def __init__(self, captioner: Captioner, folder: Path, placement: Placement) -> None:
        import torch
        import transformers

        self.captioner = captioner
        self.placement = placement
        model_class = getattr(transformers, captioner.model_class)
        kwargs: dict[str, Any] = {"use_safetensors": True}
        if placement.dtype == "nf4":
            if importlib.util.find_spec("bitsandbytes") is None:
                raise TrainingError(
                    f"{captioner.label} needs 4-bit quantization to fit this GPU, and bitsandbytes is not installed.",
                    "Install it (pip install bitsandbytes), or choose a smaller captioner such as Florence-2.",
                )
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
                llm_int8_skip_modules=["vision_tower", "multi_modal_projector", "visual", "lm_head"],
            )
            kwargs["device_map"] = {"": 0}
            self.dtype = torch.bfloat16
        else:
            self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[placement.dtype]
            kwargs["dtype"] = self.dtype
        transformers.utils.logging.disable_progress_bar()  # the loading bar would garble the caller's progress line
        logger.info("loading %s from %s (%s, %s)", captioner.name, folder, placement.device, placement.dtype)
        self.processor = _processor(captioner, folder)
        self.model = model_class.from_pretrained(folder, **kwargs).eval()
        if placement.dtype != "nf4":
            self.model.to(placement.device)

    def ask(self, image: Any, request: Request) -> str:
        """The captioner's answer to ``request`` about ``image`` (an RGB PIL image), as plain text."""
        import torch

        family = self.captioner.family
        if family == "florence2":
            inputs = self.processor(text=request.prompt, images=image, return_tensors="pt")
            # Florence-2's own examples search 3 beams; on a CPU that costs 2.3x the time of a greedy
            # caption (tests/benchmarks/captioning.py), so only a GPU searches.
            settings: dict[str, Any] = {"num_beams": 3 if self.placement.device == "cuda" else 1}
        elif family == "qwen2_5_vl":
            inputs = self.processor(self.processor.prompt(conversation(family, request.prompt)), image)
            settings = {"num_beams": 1, "repetition_penalty": 1.05}
        else:
            prompt = self.processor.apply_chat_template(
                conversation(family, request.prompt), tokenize=False, add_generation_prompt=True
            )
            inputs = self.processor(text=[prompt], images=[image], return_tensors="pt")
            settings = {"num_beams": 1, "repetition_penalty": 1.05}
        inputs = inputs.to(self.placement.device if self.placement.dtype != "nf4" else self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        budget = min(request.max_new_tokens, DEMO_MAX_NEW_TOKENS) if self.captioner.demo else request.max_new_tokens
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=budget, do_sample=False, **settings)
        if not self.model.config.is_encoder_decoder:  # a decoder repeats the prompt before its answer
            output = output[:, inputs["input_ids"].shape[1] :]
        text = self.processor.batch_decode(output, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
        return str(text).strip()


def _processor(captioner: Captioner, folder: Path) -> Any:
    """What turns a prompt and an image into the model's inputs: for Qwen2.5-VL our own feeder
    (``qwen_inputs``: transformers' processor would insist on torchvision), else the model's processor."""
    problem = torchvision_problem()
    if problem:
        raise TrainingError(
            problem,
            "Captioning does not need torchvision: uninstall it (pip uninstall torchvision), or install "
            "the torchvision built for your torch from the same PyTorch index.",
        )
    import transformers

    if captioner.family == "qwen2_5_vl":
        from chroma_studio.training.captioning.qwen_inputs import QwenInputs

        return QwenInputs(folder)
    return transformers.AutoProcessor.from_pretrained(folder)


def torchvision_problem() -> str | None:
    """Why the installed torchvision cannot be used, or None (also when there is none: nothing needs it).

    transformers picks its torchvision image processors whenever torchvision is installed, so a
    build made for another torch (the default index's CUDA one next to a CPU torch fails at import
    with "operator torchvision::nms does not exist") would break every captioner with a traceback.
    """
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        importlib.import_module("torchvision")
    except Exception as exc:  # any failure at import means a build for another torch
        import torch

        return (
            f"The installed torchvision does not work with torch {torch.__version__}: it is a build for "
            f"another PyTorch ({type(exc).__name__}: {exc})."
        )
    return None
