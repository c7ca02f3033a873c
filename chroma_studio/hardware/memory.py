"""Predicting a run's peak device memory and host RAM, phase by phase, before it starts.

Phases follow the engine: caching text (T5-XXL), caching images (VAE), loading and quantizing
the transformer, training, sampling. Each phase lists its parts (weights by precision, LoRA
state, activations, encoders, runtime overhead) so a person can see where the memory goes.

Units: bytes; "GB" in messages means 2^30 bytes, as nvidia-smi and GPU makers count (a 24 GB
card reports about 24 GB).

Weights come from the real parameter counts (``architecture.py``) and the storage formats
(``storage.py``: bf16, quanto int8/int4, bitsandbytes NF4). With ``blocks_to_swap`` (CUDA and
ROCm; ``streaming.py``) the streamed blocks' weights leave the device for pinned RAM (a part of
their own in loading, training and sampling) and two block-sized buffers take their place; the
LoRA, its gradients and optimizer states stay on the device.
Activations come from coefficients measured on real-width blocks (``activations.py``); attention
is assumed to run as a fused kernel that never holds the T x T scores (SDPA's memory-efficient or
flash kernels on CUDA/ROCm, as Chroma's boolean mask allows). On top of the tensors: the runtime's
own device memory (CUDA context, kernels, workspaces: 0.75 GB) and what the caching allocator
holds but cannot reuse (25% of the activations; bucketed image sizes fragment it).

The quickstart's rank-16 figures (28 / 16 / 11 / 8 GB for bf16 / int8 / int4 / NF4) are SimpleTuner
runs; ``QUICKSTART_ASSUMPTIONS`` describes them and the model gives 27.3 / 14.9 / 10.0 / 9.0 GB.
Chroma Studio's engine needs less for bf16 and int8 (20.4 and 12.8 GB at 1024 px) because it
caches captions before loading the transformer and trims the text to the captions' length.

Host RAM while loading: a bf16 safetensors checkpoint loaded in bf16 stays memory-mapped (its
17.8 GB pass through the page cache, which the OS can evict), and the engine moves or quantizes
one block at a time, so only that block is staged in RAM. Loading in another dtype (fp16, fp32)
converts the whole transformer in RAM. The quickstart's 40-50 GB is a loader that materialises
the transformer twice on the host (the checkpoint as read and the module being quantized:
2 x 17.8 GB) while T5-XXL waits in RAM too (offload_during_startup): see ``QUICKSTART_ASSUMPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import activations as act
from chroma_studio.hardware import streaming
from chroma_studio.hardware.architecture import chroma_architecture
from chroma_studio.hardware.detect import DeviceInfo
from chroma_studio.hardware.phases import PHASES, PINNED_PART, MemoryEstimate, Part, PhaseEstimate
from chroma_studio.hardware.storage import (  # noqa: F401 (quantized_bytes: part of this module's interface)
    dtype_bytes,
    quantized_bytes,
    t5_weight_bytes,
    transformer_weight_parts,
)

GiB = 2**30
# Device memory the runtime takes before any tensor: CUDA/HIP context, kernels, library workspaces.
CONTEXT_BYTES = {"cuda": GiB * 3 // 4, "rocm": GiB * 3 // 4, "xpu": GiB // 2, "mps": GiB // 4, "cpu": 0}
# Host RAM of the process itself: Python, torch and its GPU libraries, diffusers, transformers, the app.
# On the CPU there are no GPU libraries: the engine measured 0.3 GB anonymous and 0.1 GB of code pages
# with every library loaded (tests/benchmarks/real_size_cpu.py).
RUNTIME_BYTES = {"cuda": 3 * GiB, "rocm": 3 * GiB, "xpu": 2 * GiB, "mps": 2 * GiB, "cpu": GiB // 2}
DEMO_BYTES = GiB // 4  # the demo flavour's tiny model with its activations, generously


@dataclass(frozen=True)
class Assumptions:
    """How the run is carried out. The defaults describe Chroma Studio's engine."""

    text_tokens: int = 128  # text positions per sample: the engine trims to the longest caption (+1, to 8)
    models_first: bool = False  # every model on the device before caching (as SimpleTuner does)
    text_encoder_follows_base: bool = False  # T5 quantized like the transformer (the engine keeps it bf16)
    allocator_reserve: float = 0.25  # memory the caching allocator holds but cannot use, per byte of activations
    # Full bf16 copies of the transformer held in RAM while loading. 0: the checkpoint is memory-mapped
    # (safetensors in the compute dtype) and one block at a time is staged, as the engine does.
    transformer_host_copies: float = 0
    text_batch: int = 8  # captions per T5 call while caching


# The SimpleTuner runs behind the quickstart's rank-16 figures: T5 padded to 512 tokens, every
# model loaded onto the GPU before caching (no offload_during_startup), T5 quantized with the
# transformer and released after the captions; 1024 px, batch 1, gradient checkpointing, LoRA
# target ``all``, bf16. Their peaks: bf16 and int8 while caching text (T5 beside the transformer),
# int4 and NF4 while training.
QUICKSTART_ASSUMPTIONS = Assumptions(
    text_tokens=512, models_first=True, text_encoder_follows_base=True, transformer_host_copies=2
)
QUICKSTART_SETTINGS: dict[str, Any] = {
    "resolution": 1024,
    "train_batch_size": 1,
    "gradient_checkpointing": True,
    "lora_rank": 16,
    "flux_lora_target": "all",
    "mixed_precision": "bf16",
    "offload_during_startup": False,
}
QUICKSTART_FIGURES_GB = {"no_change": 28.0, "int8-quanto": 16.0, "int4-quanto": 11.0, "nf4-bnb": 8.0}


# -- the estimate -----------------------------------------------------------------------------------
def estimate_memory(
    config: TrainingConfig, device: DeviceInfo | str, assumptions: Assumptions | None = None
) -> MemoryEstimate:
    """Peak device memory and host RAM of ``config`` on ``device`` (a DeviceInfo or a kind such as "cuda")."""
    a = assumptions or Assumptions()
    kind = device.kind if isinstance(device, DeviceInfo) else device
    unified = device.unified_memory if isinstance(device, DeviceInfo) else kind == "mps"
    if config.model.model_flavour == "demo":
        return _demo_estimate(kind, unified, a)
    return _Estimator(config, kind, a).estimate(unified)


def _demo_estimate(kind: str, unified: bool, a: Assumptions) -> MemoryEstimate:
    """The demo model has a few million parameters: the runtime is all there is."""
    parts = (
        Part("demo model, activations and caches", device_bytes=DEMO_BYTES),
        Part("runtime context (kernels, workspaces)", device_bytes=CONTEXT_BYTES.get(kind, 0)),
        Part("process runtime (Python, torch, libraries)", host_bytes=RUNTIME_BYTES.get(kind, 0)),
    )
    phases = tuple(PhaseEstimate(name, parts) for name in PHASES)
    return MemoryEstimate(
        kind, unified, phases, a, ("The demo flavour is a tiny random model; its samples are noise.",)
    )


@dataclass
class _Estimator:
    config: TrainingConfig
    kind: str
    a: Assumptions

    def __post_init__(self) -> None:
        c = self.config
        self.arch = chroma_architecture()
        self.dbytes = dtype_bytes(c.model.mixed_precision)
        self.precision = c.model.base_model_precision
        self.offload = c.model.offload_during_startup
        self.context = Part("runtime context (kernels, workspaces)", device_bytes=CONTEXT_BYTES.get(self.kind, 0))
        self.runtime = Part("process runtime (Python, torch, libraries)", host_bytes=RUNTIME_BYTES.get(self.kind, 0))
        text = min(self.a.text_tokens, c.text.tokenizer_max_length + 1)
        self.train_tokens = act.TokenCounts(act.image_tokens(c.data.resolution), text)
        self.sample_tokens = act.TokenCounts(act.image_tokens(c.sample_resolution), text)
        t5_precision = self.precision if self.a.text_encoder_follows_base else "no_change"
        self.t5_bytes = t5_weight_bytes(self.arch, t5_precision, self.dbytes)
        self.vae_dbytes = 4 if c.model.mixed_precision in ("fp16", "no") else 2
        self.vae = Part("VAE weights", device_bytes=self.arch.vae_params * self.vae_dbytes)
        self.swap = c.model.blocks_to_swap if streaming.applies(self.kind, self.precision) else 0
        self.streamed = streaming.streamed_blocks(self.arch, self.swap, self.precision, self.dbytes)
        self.weights = transformer_weight_parts(
            self.arch, self.precision, c.model.mixed_precision, self.streamed.counts if self.swap else None
        )
        self.lora_params = self.arch.lora_params(c.lora.flux_lora_target, c.lora.lora_rank)

    def estimate(self, unified: bool) -> MemoryEstimate:
        phases = (self.caching_text(), self.caching_images(), self.loading(), self.training(), self.sampling())
        return MemoryEstimate(self.kind, unified, phases, self.a, tuple(self.notes()))

    def pinned(self) -> list[Part]:
        """The streamed blocks' copies in pinned RAM (none without streaming)."""
        if not self.swap:
            return []
        total = self.arch.double_blocks + self.arch.single_blocks
        return [Part(f"{PINNED_PART} ({self.swap} of {total})", host_bytes=self.streamed.host_bytes)]

    def streaming_buffers(self) -> list[Part]:
        """The device buffers the streamed blocks pass through: the running block and the next one."""
        if not self.swap:
            return []
        return [Part("streaming buffers (2 blocks)", device_bytes=self.streamed.buffer_bytes)]

    def reserve(self, transient: int) -> Part:
        return Part("allocator reserve", device_bytes=int(transient * self.a.allocator_reserve))

    def resident_transformer(self) -> list[Part]:
        """With models_first the quantized transformer waits on the device (or, offloaded, on the host)."""
        if not self.a.models_first:
            return []
        total = sum(p.device_bytes for p in self.weights)
        if self.offload:
            return [Part("transformer waiting on the host", host_bytes=total), *self.pinned()]
        return [Part("transformer waiting on the device", device_bytes=total), *self.pinned()]

    def caching_text(self) -> PhaseEstimate:
        tokens = self.train_tokens.text
        activations = act.t5_activations(batch=self.a.text_batch, tokens=tokens, dtype_bytes=self.dbytes)
        # A bf16 safetensors T5 stays memory-mapped; a single file (ComfyUI's t5xxl_fp16) or fp32 is converted in RAM.
        t5_file = (self.config.model.pretrained_t5_model_name_or_path or "").lower().endswith((".safetensors", ".sft"))
        in_ram = self.t5_bytes if t5_file or self.dbytes == 4 or self.a.models_first else 0
        if self.offload and self.kind != "cpu":  # streamed one layer at a time (accelerate cpu_offload)
            on_device = self.arch.t5_embedding_params * self.dbytes
            t5 = Part("T5-XXL weights (streamed layer by layer)", device_bytes=on_device, host_bytes=in_ram)
        else:
            t5 = Part("T5-XXL weights", device_bytes=self.t5_bytes, host_bytes=in_ram)
        vae = [self.vae] if self.a.models_first and not self.offload else []
        parts = [
            t5,
            Part("T5-XXL activations", device_bytes=activations),
            *vae,
            *self.resident_transformer(),
            self.reserve(activations),
            self.context,
            self.runtime,
        ]
        return PhaseEstimate("caching_text", tuple(parts))

    def caching_images(self) -> PhaseEstimate:
        pixels = act.vae_activations(self.config.data.resolution, decode=False, dtype_bytes=self.vae_dbytes)
        vae = replace(self.vae, host_bytes=self.vae.device_bytes)
        parts = [
            vae,
            Part("VAE activations (encode)", device_bytes=pixels),
            *self.resident_transformer(),
            self.reserve(pixels),
            self.context,
            self.runtime,
        ]
        return PhaseEstimate("caching_images", tuple(parts))

    def loading(self) -> PhaseEstimate:
        arch, dbytes = self.arch, self.dbytes
        parts = [*self.weights, *self.pinned()]
        largest_block = max(arch.block_params("double"), arch.block_params("single")) * dbytes
        if self.precision.endswith("-quanto"):  # one block in full precision while it is quantized
            parts.append(Part("block being quantized", device_bytes=largest_block))
        elif self.precision == "nf4-bnb":
            largest = max(lin.weights for k in ("double", "single") for lin in arch.linears(k))
            parts.append(Part("tensor being quantized", device_bytes=largest * dbytes, host_bytes=largest * 2))
        if self.a.transformer_host_copies:
            copies = self.a.transformer_host_copies
            parts.append(
                Part(f"transformer copies in RAM (x{copies:g})", host_bytes=int(copies * arch.transformer_params * 2))
            )
        elif dbytes != 2 or self.config.model.mixed_precision == "fp16":  # converted from the bf16 checkpoint
            parts.append(Part("transformer converted in RAM", host_bytes=arch.transformer_params * dbytes))
        elif self.precision != "nf4-bnb" and self.kind != "cpu":  # on the CPU it is quantized where it is staged
            parts.append(Part("block staged in RAM", host_bytes=largest_block))
        if self.a.models_first:
            where = "host_bytes" if self.offload else "device_bytes"
            parts += [
                Part("T5-XXL weights", **{where: self.t5_bytes}),
                Part("VAE weights", **{where: self.vae.device_bytes}),
            ]
        else:
            parts.append(Part("VAE kept for samples", host_bytes=self.vae.device_bytes))
        parts += [self.context, self.runtime]
        return PhaseEstimate("loading", tuple(parts))

    def training(self) -> PhaseEstimate:
        c = self.config
        a = act.training_activations(
            self.arch,
            self.train_tokens,
            batch=c.optim.train_batch_size,
            checkpointing=c.model.gradient_checkpointing,
            lora_target=c.lora.flux_lora_target,
            rank=c.lora.lora_rank,
            precision=self.precision,
            dtype_bytes=self.dbytes,
        )
        held = "activations: checkpointed block inputs" if c.model.gradient_checkpointing else "activations: saved"
        parts = [
            *self.weights,
            *self.streaming_buffers(),
            *self.pinned(),
            Part("LoRA weights, gradients and AdamW states (fp32)", device_bytes=16 * self.lora_params),
            Part(held, device_bytes=a.held),
            Part("activations: block in backward", device_bytes=a.working),
            Part("activations: embeddings and loss", device_bytes=a.outside),
            Part("quantized layers' backward scratch", device_bytes=a.scratch),
            self.reserve(a.total),
            self.context,
            Part("VAE kept for samples", host_bytes=self.vae.device_bytes),
            self.runtime,
        ]
        return PhaseEstimate("training", tuple(p for p in parts if p.device_bytes or p.host_bytes))

    def sampling(self) -> PhaseEstimate:
        c = self.config
        denoise = act.inference_activations(
            self.arch, self.sample_tokens, dtype_bytes=self.dbytes, lora_rank=c.lora.lora_rank
        )
        decode = act.vae_activations(c.sample_resolution, decode=True, dtype_bytes=self.vae_dbytes)
        transient = max(denoise, decode)
        parts = [
            *self.weights,
            *self.streaming_buffers(),
            *self.pinned(),
            Part("LoRA weights and AdamW states (fp32)", device_bytes=12 * self.lora_params),
            self.vae,
            Part("activations: denoising step or VAE decode", device_bytes=transient),
            self.reserve(transient),
            self.context,
            self.runtime,
        ]
        return PhaseEstimate("sampling", tuple(parts))

    def notes(self) -> list[str]:
        c, notes = self.config, []
        notes.append(
            f"{self.train_tokens.image} image tokens at {c.data.resolution} px + {self.train_tokens.text} text "
            f"tokens; LoRA {c.lora.flux_lora_target} rank {c.lora.lora_rank}: "
            f"{self.lora_params / 1e6:.1f}M trainable parameters."
        )
        if not self.a.transformer_host_copies:
            notes.append(
                "Checkpoints in bf16 are memory-mapped: the 17.8 GB transformer and 9.5 GB T5-XXL pass through the "
                "page cache, so more free RAM makes loading faster but is not required."
            )
        notes += self.streaming_notes()
        if self.kind == "mps":
            notes.append("Apple silicon shares RAM between the GPU and the CPU: device and host figures add up.")
        if self.kind == "cpu":
            notes.append("On the CPU every figure is system RAM; device and host figures add up.")
        return notes

    def streaming_notes(self) -> list[str]:
        asked = self.config.model.blocks_to_swap
        if asked and not self.swap:
            return [streaming.not_applied_note(self.kind, self.precision, asked)]
        if not self.swap:
            return []
        s = self.streamed
        return [
            f"blocks_to_swap {self.swap}: the last {s.counts['double']} double and {s.counts['single']} single "
            f"blocks keep their frozen weights in pinned RAM ({s.host_bytes / GiB:.1f} GB) and pass through "
            f"{s.buffer_bytes / GiB:.1f} GB of device buffers; the LoRA stays on the device."
        ]
