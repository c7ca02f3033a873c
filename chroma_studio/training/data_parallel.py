"""The training step of a data-parallel run: each rank's share of a batch, DDP on the LoRA alone,
and the step's loss and sigmas from all ranks (how the ranks start and talk: ``distributed.py``).

Each rank weights its mean loss by its share of the global batch, so DDP's average of the ranks'
gradients is the gradient of the mean over the whole batch, as one process with that batch has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

from chroma_studio.training.data import MicroBatch
from chroma_studio.training.distributed import World


def rank_share(micro_batch: MicroBatch, world: World) -> tuple[MicroBatch, float]:
    """This rank's samples of a global micro-batch, and its weight: its share of the batch's mean.

    A rank left with no sample of a short batch takes the first one at weight 0: it still runs
    forward and backward, as DDP needs every rank to, and adds nothing."""
    examples = micro_batch.examples[world.rank :: world.size]
    samples = micro_batch.samples[world.rank :: world.size]
    if not samples:
        return MicroBatch(micro_batch.epoch, micro_batch.examples[:1], micro_batch.samples[:1]), 0.0
    return MicroBatch(micro_batch.epoch, examples, samples), len(samples) / len(micro_batch.samples)


def run_batch(per_rank: int, world: World | None, resumed: Mapping[str, Any] | None) -> tuple[int, str | None]:
    """The micro-batch all ranks train together, and a note when a resume changed the number of
    processes: the run then keeps the batch of its checkpoint (``global_batch_size`` in its
    state.json), so the data order, the steps and the LR schedule continue as they began; what
    changes is each process's share of the batch (and its memory)."""
    ranks = world.size if world else 1
    batch = per_rank * ranks
    if not resumed:
        return batch, None
    before = resumed.get("num_processes", 1)
    if not isinstance(before, int) or before == ranks:
        return batch, None
    recorded = resumed.get("global_batch_size")
    kept = recorded if isinstance(recorded, int) and recorded > 0 else per_rank * before
    share = -(-kept // ranks)
    return kept, (
        f"The checkpoint was made with {before} process{'es' if before != 1 else ''}; this run has {ranks}. "
        f"It keeps its batch of {kept} samples, so each process now takes up to {share} of them."
    )


class NoMetrics:
    """The metrics file of a rank other than 0: it writes nothing."""

    def write(self, record: dict[str, Any]) -> None:
        pass

    def __enter__(self) -> NoMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def held_gradients(model: torch.nn.Module, hold: bool) -> contextlib.AbstractContextManager[Any]:
    """Within it, DDP keeps the gradients of a micro-batch to itself (``no_sync``): all but the
    last micro-batch of an accumulated step."""
    from torch.nn.parallel import DistributedDataParallel

    if hold and isinstance(model, DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def step_summary(
    loss: torch.Tensor, parts: Sequence[tuple[int, torch.Tensor | None]], world: World
) -> tuple[float, list[float]]:
    """The step's loss (each rank's is already its weighted share) and every sample's sigma in
    the order of the global batch, with one all_reduce: each rank fills its own slots."""
    slots = torch.zeros(1 + sum(size for size, _ in parts), dtype=torch.float64)
    slots[0] = loss.double().cpu()
    offset = 1
    for size, drawn in parts:
        if drawn is not None:
            slots[offset + world.rank : offset + size : world.size] = drawn.double()
        offset += size
    device = world.device if world.device.type == "cuda" else torch.device("cpu")
    total = sum_over_ranks(slots.to(device)).cpu()
    return total[0].item(), [round(s, 5) for s in total[1:].tolist()]


class TrainableOnly(torch.nn.Module):
    """What DDP wraps: a module that owns the model's trainable (LoRA) parameters, the very same
    tensors, and nothing else; its forward is the model's.

    The model itself is held in a tuple, not as a submodule, so DDP never sees its frozen weights
    or buffers: its start-up sync broadcasts and checks the LoRA alone, and the frozen base (17 GB
    in bf16; quanto's packed tensors, which do not broadcast at all) never leaves a rank. Torch
    (up to 2.13) has no public way to tell DDP to skip parameters; the private
    ``DistributedDataParallel._set_params_and_buffers_to_ignore_for_model`` does the same by name.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.trainable = torch.nn.ParameterList([p for p in model.parameters() if p.requires_grad])
        self.model = (model,)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model[0](*args, **kwargs)


def gradient_sync(transformer: torch.nn.Module, world: World) -> torch.nn.parallel.DistributedDataParallel:
    """``transformer`` in DDP with only its trainable (LoRA) parameters taking part (``TrainableOnly``)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(TrainableOnly(transformer), device_ids=device_ids)


def sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over all ranks (one all_reduce)."""
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total
