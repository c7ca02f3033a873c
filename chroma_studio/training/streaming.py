"""Streaming the frozen transformer blocks from host RAM (``blocks_to_swap``).

The base model is frozen and only the LoRA trains, so the frozen weights of the last
``blocks_to_swap`` blocks (counted over the 19 double and 38 single blocks in the order they run,
as sd-scripts and musubi-tuner count them) live in host RAM, pinned where the system allows, and
are copied to the GPU just before their block runs: in the forward pass and again in the
recompute that gradient checkpointing runs during backward, so each streamed block is loaded
twice per step. After the block has run its GPU copy is released; nothing is ever copied back,
since the weights never change. On CUDA the copy runs on a side stream and the next block in the
direction of travel (forward: up, recompute: down) is fetched while this one computes; the
compute stream waits on an event and the copies are recorded on it, so the allocator reuses
their memory only once the compute that reads them is done. On other devices (the CPU in tests)
the copy is made when the block starts; the host copy and the device copy are still two tensors.

Only frozen weights stream: bf16 tensors, or optimum-quanto's quantized weights, whose tensor
subclasses (``WeightQBytesTensor``, ``WeightQBitsTensor`` with its packed int4 data, and the
kernel-specific layouts quanto picks on CUDA) are taken apart with ``__tensor_flatten__`` and
rebuilt on the other side with ``__tensor_unflatten__``, so no layout is re-packed. The LoRA's
``lora_A``/``lora_B`` inside the same blocks, their gradients and the optimizer states stay on
the device in the same storage from step to step.

Why our own and not diffusers' group offloading: on offload it puts a pinned copy of every
parameter of a group back in place, which would throw away the LoRA's updates; whether the
recompute loads a group again depends on the order of its hooks and the checkpointing wrapper
(0 loads in backward in one order, 4 in the other); and it cannot stream only some of the
blocks. Here the order is fixed: the streamer wraps the block's own forward and checkpointing
wraps that, so the recompute runs the load too (``install`` refuses a block already
checkpointed).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from chroma_studio.training.errors import TrainingError

logger = logging.getLogger(__name__)

_MARK = "_chroma_studio_streamed"
_CHECKPOINTED = "_chroma_studio_checkpointed"  # set by grad_checkpointing


def transformer_blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    """The double then the single blocks: the order they run in."""
    double = cast(torch.nn.ModuleList, transformer.transformer_blocks)
    single = cast(torch.nn.ModuleList, transformer.single_transformer_blocks)
    return [*double, *single]


def streamed_blocks(transformer: torch.nn.Module, count: int) -> list[torch.nn.Module]:
    """The last ``count`` blocks in the order they run (all of them where the model has fewer)."""
    blocks = transformer_blocks(transformer)
    return blocks[max(len(blocks) - count, 0) :] if count > 0 else []


def check_streaming(device: torch.device, precision: str) -> None:
    """Refuse streaming where it cannot help or has not been made to work, in words for the user."""
    if device.type == "mps":
        raise TrainingError(
            "Streaming blocks from RAM (blocks_to_swap) does not help on a Mac: its memory is unified, so the "
            "weights already live in the same RAM the GPU reads, and streaming would only add copies.",
            "Set blocks_to_swap to 0; to use less memory choose int8-quanto or int4-quanto (base_model_precision).",
        )
    if precision == "nf4-bnb":
        raise TrainingError(
            "Streaming blocks from RAM (blocks_to_swap) does not work with nf4-bnb yet.",
            "Choose int4-quanto or int8-quanto (base_model_precision), or set blocks_to_swap to 0.",
        )


# -- tensors, quantized ones included -------------------------------------------------------------


def _is_subclass(tensor: torch.Tensor) -> bool:
    return type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__")


def _rebuild(tensor: torch.Tensor, make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``tensor`` with ``make`` applied to each plain tensor inside it, same subclass and layout."""
    if not _is_subclass(tensor):
        return make(tensor)
    names, meta = tensor.__tensor_flatten__()  # type: ignore[attr-defined]
    inner = {name: _rebuild(getattr(tensor, name), make) for name in names}
    return type(tensor).__tensor_unflatten__(inner, meta, tensor.size(), tensor.stride())  # type: ignore[attr-defined]


def storages(tensor: torch.Tensor) -> Iterator[torch.Tensor]:
    """The plain tensors that hold ``tensor``'s data (itself unless it is a quantized subclass)."""
    if not _is_subclass(tensor):
        yield tensor
        return
    names, _ = tensor.__tensor_flatten__()  # type: ignore[attr-defined]
    for name in names:
        yield from storages(getattr(tensor, name))


def tensor_bytes(tensor: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in storages(tensor))


def copy_tensor(tensor: torch.Tensor, device: torch.device, non_blocking: bool = False) -> torch.Tensor:
    """A new copy of ``tensor`` on ``device`` (always a distinct tensor, even on the same device)."""

    def copy(t: torch.Tensor) -> torch.Tensor:
        out = torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=device)
        out.copy_(t.detach(), non_blocking=non_blocking)
        return out

    return _rebuild(tensor.detach(), copy)


def pin_tensor(tensor: torch.Tensor) -> torch.Tensor:
    return _rebuild(tensor.detach(), lambda t: t.pin_memory())


def _parameter(tensor: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(tensor, requires_grad=False)


# -- where the weights are ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """One frozen weight: the module that owns it, its name there, and its host copy."""

    module: torch.nn.Module
    name: str
    host: torch.nn.Parameter


def _frozen_slots(block: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.nn.Parameter]]:
    found = []
    for module_name, module in block.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if param is None or param.requires_grad or "lora_" in f"{module_name}.{name}":
                continue
            found.append((module, name, param))
    return found


def park_on_host(block: torch.nn.Module) -> None:
    """Move ``block``'s frozen weights to host RAM as they are (quantized layout kept); used while
    loading, before the LoRA is added, so the device holds one streamed block at a time."""
    cpu = torch.device("cpu")
    for module in block.modules():
        # every weight here is a base weight (quanto's freeze leaves its new ones requiring grad)
        for name, param in module.named_parameters(recurse=False):
            if param.device.type != "cpu":
                module._parameters[name] = _parameter(copy_tensor(param, cpu))


def place_resident(transformer: torch.nn.Module, device: torch.device, streamed: Sequence[torch.nn.Module]) -> None:
    """Move everything but the ``streamed`` blocks to ``device``; those stay in host RAM."""
    keep = {id(block) for block in streamed}

    def place(module: torch.nn.Module) -> None:
        for child in module.children():
            if id(child) in keep:
                continue
            if any(id(m) in keep for m in child.modules()):
                place(child)
            else:
                child.to(device)
        for param in module.parameters(recurse=False):
            param.data = param.data.to(device)
        for name, buffer in module.named_buffers(recurse=False):
            module._buffers[name] = buffer.to(device)

    place(transformer)


# -- the streamer ---------------------------------------------------------------------------------


@dataclass
class _Loaded:
    tensors: list[torch.Tensor]
    event: Any = None  # a torch.cuda.Event the compute stream waits on


@dataclass(frozen=True)
class StreamingReport:
    """What the run records about streaming: in the log once, and in every metrics line."""

    blocks: int  # blocks streamed
    total_blocks: int  # blocks in the model (57 for Chroma)
    pinned: bool
    host_bytes: int  # the host copies of the streamed weights

    def describe(self) -> str:
        size = f"{self.host_bytes / 1e9:.2f} GB"
        return (
            f"Streaming {self.blocks} of {self.total_blocks} blocks from RAM "
            f"({size} {'pinned' if self.pinned else 'not pinned'})."
        )


class BlockStreamer:
    """Keeps the frozen weights of ``blocks`` in host RAM and lends them to ``device`` per run of a block.

    ``loads[i]`` counts how often streamed block ``i`` ran with its device copy; ``bytes_copied``
    counts host-to-device bytes. ``warnings`` holds what the run should tell the user (a pinning
    that failed).
    """

    def __init__(
        self,
        blocks: Sequence[torch.nn.Module],
        device: torch.device,
        *,
        total_blocks: int,
        pin: bool | None = None,
    ) -> None:
        self.blocks, self.device, self.total_blocks = list(blocks), device, total_blocks
        self.pin = device.type == "cuda" if pin is None else pin
        self.use_streams = device.type == "cuda"
        self.slots: list[list[_Slot]] = []
        self.block_bytes: list[int] = []
        self.loads: Counter[int] = Counter()
        self.bytes_copied = 0
        self.warnings: list[str] = []
        self._prefetched: dict[int, _Loaded] = {}
        self._last: int | None = None
        self._copy_stream: Any = torch.cuda.Stream(device) if self.use_streams else None

    # -- setting up ---------------------------------------------------------------------------
    def install(self) -> StreamingReport:
        """Take each block's frozen weights to host RAM and wrap its forward; the LoRA goes to the device."""
        for index, block in enumerate(self.blocks):
            if getattr(block, _CHECKPOINTED, False):
                raise ValueError("install block streaming before gradient checkpointing, so the recompute loads too")
            if getattr(block, _MARK, False):
                raise ValueError("this block already streams")
            slots = []
            for module, name, param in _frozen_slots(block):
                host = param if param.device.type == "cpu" else copy_tensor(param, torch.device("cpu"))
                host = self._pinned(host)
                slot = _Slot(module, name, host if isinstance(host, torch.nn.Parameter) else _parameter(host))
                module._parameters[name] = slot.host
                slots.append(slot)
            for param in block.parameters():  # the LoRA, before any optimizer sees it
                if param.requires_grad and param.device != self.device:
                    param.data = param.data.to(self.device)
            for module in block.modules():  # buffers are small (quanto's scales): they stay resident
                for name, buffer in module.named_buffers(recurse=False):
                    if buffer.device != self.device:
                        module._buffers[name] = buffer.to(self.device)
            self.slots.append(slots)
            self.block_bytes.append(sum(tensor_bytes(s.host) for s in slots))
            self._wrap(index, block)
        report = self.report()
        logger.info("%s", report.describe())
        return report

    def _pinned(self, host: torch.Tensor) -> torch.Tensor:
        if not self.pin:
            return host
        try:
            return _parameter(pin_tensor(host))
        except RuntimeError as exc:  # Windows and WSL limit pinned memory
            self.pin = False
            message = (
                f"Could not pin the streamed blocks' memory ({exc}); they stream from ordinary RAM, "
                "which copies more slowly."
            )
            logger.warning("%s", message)
            self.warnings.append(message)
            return host

    def _wrap(self, index: int, block: torch.nn.Module) -> None:
        plain = block.forward

        @functools.wraps(plain)
        def forward(*args: Any, **kwargs: Any) -> Any:
            self._load(index)
            try:
                return plain(*args, **kwargs)
            finally:
                self._release(index)

        block.forward = forward
        setattr(block, _MARK, True)

    def report(self) -> StreamingReport:
        return StreamingReport(len(self.blocks), self.total_blocks, self.pin, sum(self.block_bytes))

    def record(self, since: int) -> dict[str, Any]:
        """The metrics line's streaming entry: blocks, pinned, host-to-device bytes after ``since``."""
        return {"blocks": len(self.blocks), "pinned": self.pin, "bytes": self.bytes_copied - since}

    # -- while training -----------------------------------------------------------------------
    def _copy(self, index: int) -> _Loaded:
        self.bytes_copied += self.block_bytes[index]
        if not self.use_streams:
            return _Loaded([copy_tensor(s.host, self.device) for s in self.slots[index]])
        with torch.cuda.stream(self._copy_stream):
            tensors = [copy_tensor(s.host, self.device, non_blocking=self.pin) for s in self.slots[index]]
            event = torch.cuda.Event()
            event.record(self._copy_stream)
        return _Loaded(tensors, event)

    def _load(self, index: int) -> None:
        loaded = self._prefetched.pop(index, None) or self._copy(index)
        if loaded.event is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(loaded.event)
            for tensor in loaded.tensors:
                for storage in storages(tensor):
                    storage.record_stream(compute)
        for slot, tensor in zip(self.slots[index], loaded.tensors, strict=True):
            slot.module._parameters[slot.name] = _parameter(tensor)
        self.loads[index] += 1
        if self.use_streams:
            self._prefetch(index)
        self._last = index

    def _prefetch(self, index: int) -> None:
        """Start copying the block that runs next: up in the forward pass, down in the recompute."""
        upward = index == 0 or (self._last is not None and index > self._last)
        following = index + 1 if upward else index - 1
        if 0 <= following < len(self.blocks) and following not in self._prefetched:
            self._prefetched.clear()  # at most one block waits on the device
            self._prefetched[following] = self._copy(following)

    def _release(self, index: int) -> None:
        for slot in self.slots[index]:
            slot.module._parameters[slot.name] = slot.host

    def uninstall(self) -> None:
        """Unwrap the blocks; their weights stay in host RAM (for tests and tools)."""
        for block in self.blocks:
            if getattr(block, _CHECKPOINTED, False):
                raise ValueError("turn gradient checkpointing off before removing block streaming")
            del block.forward
            delattr(block, _MARK)
        self._prefetched.clear()


def install_streaming(transformer: torch.nn.Module, count: int, device: torch.device) -> BlockStreamer | None:
    """Stream the last ``count`` blocks of ``transformer`` to ``device``; None when ``count`` is 0."""
    blocks = streamed_blocks(transformer, count)
    if not blocks:
        return None
    streamer = BlockStreamer(blocks, device, total_blocks=len(transformer_blocks(transformer)))
    streamer.install()
    return streamer
