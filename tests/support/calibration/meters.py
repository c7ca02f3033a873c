"""Meters for the memory tensors really take, used to calibrate and check the memory model.

- ``SavedTensorMeter``: bytes autograd keeps for backward (``saved_tensors_hooks``), each storage
  counted once, given tensors (weights, inputs) left out.
- ``live_tensor_meter()``: the peak of bytes held by tensors created while it is active (a torch
  dispatch mode that follows every new storage until it is freed). On the CPU this is the number
  a CUDA caching allocator would report as ``max_memory_allocated``, before rounding. It does not
  see temporaries made inside tensor subclasses' own dispatch (quanto's quantized weights).

torch is imported inside functions only.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any


def _storage(tensor: Any) -> Any:
    """The tensor's storage, or None for wrapper tensors without one (quantized weights)."""
    try:
        storage = tensor.untyped_storage()
        storage.data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    return storage


def _storage_keys(tensors: Iterable[Any]) -> set[int]:
    return {storage.data_ptr() for storage in map(_storage, tensors) if storage is not None}


class SavedTensorMeter:
    """Counts the bytes autograd saves for backward inside ``with meter:``; each storage once."""

    def __init__(self, ignore: Iterable[Any] = ()):
        self.ignore = _storage_keys(ignore)
        self.storages: dict[int, int] = {}

    def _pack(self, tensor: Any) -> Any:
        storage = _storage(tensor)
        if storage is not None and storage.data_ptr() not in self.ignore:
            key = storage.data_ptr()
            self.storages[key] = max(self.storages.get(key, 0), storage.nbytes())
        return tensor

    def __enter__(self) -> SavedTensorMeter:
        import torch

        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


def _live_meter_class() -> type:
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveTensorMeter(TorchDispatchMode):
        """Peak bytes of storages created inside ``with meter:`` and still alive, ignoring given tensors."""

        def __init__(self, ignore: Iterable[Any] = ()):
            super().__init__()
            self.ignore = _storage_keys(ignore)
            self.live = 0
            self.peak = 0
            self._alive: set[int] = set()

        def _track(self, tensor: Any) -> None:
            storage = _storage(tensor)
            if storage is None:
                return
            key, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or key in self.ignore or key in self._alive:
                return
            self._alive.add(key)
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key, size)

        def _release(self, key: int, size: int) -> None:
            if key in self._alive:
                self._alive.discard(key)
                self.live -= size

        def reset_peak(self) -> None:
            self.peak = self.live

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            import torch

            for item in tree_flatten(out)[0]:
                if isinstance(item, torch.Tensor):
                    self._track(item)
            return out

    return LiveTensorMeter


def live_tensor_meter(ignore: Iterable[Any] = ()) -> Any:
    """A ``LiveTensorMeter`` (see the module docstring); use it as a context manager."""
    return _live_meter_class()(ignore)


def weight_tensors(module: Any) -> list[Any]:
    """Parameters and buffers, with the inner tensors of quanto-quantized weights."""
    tensors = [*module.parameters(), *module.buffers()]
    for param in list(tensors):
        tensors += [getattr(param, name) for name in ("_data", "_scale", "_shift") if hasattr(param, name)]
    return tensors


def fill_random_weights(module: Any, device: str, zero_biases: bool = True) -> None:
    """Deterministic small random weights for a measured model: norm scales 1, other vectors zero
    (or random, with ``zero_biases`` off), matrices N(0, 0.02). Memory does not depend on values."""
    import torch

    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 1 and "norm" in name:
                param.fill_(1.0)
            elif param.dim() == 1 and zero_biases:
                param.zero_()
            else:
                param.normal_(0.0, 0.02, generator=generator)
