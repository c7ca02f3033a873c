"""Data-parallel training over several processes with PyTorch's own ``torch.distributed``.

The ranks are started by torch's launcher (``torch.distributed.run``, alias ``torchrun``; see
``protocol/launch.py`` and ``rank.py``), which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address in each one's environment. ``start()`` reads them and joins the process
group: NCCL on CUDA (on ROCm builds torch's ``nccl`` backend is RCCL), gloo on the CPU. Each
rank trains on the GPU of its ``LOCAL_RANK``; CPU ranks share the cores (``torch.set_num_threads``
of cores / ranks on this machine).

What each rank does:

- **Data**: every optimizer step's micro-batches are cut from the one seeded data order at the
  global batch (per-rank batch x ranks), and rank r takes samples r, r + N, ... of each
  (``data_parallel.rank_share``). Each sample's noise, sigma and caption dropout are seeded by
  its global index, so the step sees exactly what one process with the whole batch would see. A
  rank whose share of a short batch (the end of an aspect bucket) is empty repeats a sample at
  weight 0.
- **Gradients**: ``DistributedDataParallel`` averages them (``data_parallel.gradient_sync``), on
  a module that owns the LoRA parameters alone (``data_parallel.TrainableOnly``): DDP's start-up
  sync broadcasts and checks only those, and the frozen base never leaves a rank. The composable
  ``replicate`` and FSDP2's ``fully_shard`` were not chosen: the first is still marked
  experimental, the second shards, which a LoRA of a few MB does not need. Each rank weights its
  mean loss by its share of the global batch, so DDP's average is the mean over the whole batch;
  micro-batches before the last of a step run under ``no_sync``.
- **Logged loss**: summed over the ranks with one ``all_reduce`` per optimizer step.
- **Control**: rank 0 alone hears the app (or the terminal); once per step it broadcasts stop,
  pause, sample-now and save-now as a tensor of four numbers (``RankControl``). While paused, the
  ranks exchange it every ``PAUSE_POLL_S``.
- **Files**: rank 0 alone claims the output folder, writes metrics, samples, checkpoints, LoRA
  files and the log; ``share_from_main`` hands the others what they must know of it (the
  checkpoint to resume from). The embedding cache is filled together: rank r encodes captions
  and images r, r + N, ... (those not cached yet), a barrier, then every rank reads them all.

A rank that dies is the launcher's business: it ends the others and exits with a report naming
the rank (read by ``protocol/launch.py``). A rank that sees a collective fail because a peer is
gone waits to be ended rather than report a failure of its own that would hide the real one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from chroma_studio.protocol.control import Request, TrainingControl
from chroma_studio.protocol.events import Event, LogMessage, Sink
from chroma_studio.training.errors import TrainingError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Rank 0 may render samples or write LoRA files for minutes while the others wait in a collective;
# a dead rank is found by the launcher within a second, so this only bounds a hung one.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)
PAUSE_POLL_S = 0.2
PEER_LOSS_WAIT_S = 30.0  # how long a rank that lost a peer waits for the launcher to end it
PARENT_POLL_S = 1.0


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run."""

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from the launcher's environment; None outside a launch of
    more than one process."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    except (KeyError, ValueError):
        return None
    return (rank, size, local) if size > 1 else None


def rank_device(local_rank: int) -> torch.device:
    """The device of the rank with ``local_rank``: its own GPU, or the CPU. Refuses what cannot
    run data-parallel here: Apple's MPS (one device), a missing GPU, CUDA on Windows (no NCCL)."""
    from chroma_studio.training.loading import pick_device

    device = pick_device()
    if device.type == "cuda":
        if sys.platform == "win32":
            raise TrainingError(
                "Training on several GPUs is not available on Windows: PyTorch has no NCCL there.",
                "Set num_processes to 1, or train on Linux.",
            )
        count = torch.cuda.device_count()
        if int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1)) > count:  # every rank refuses, rank 0 says so
            raise TrainingError(
                f"num_processes asks for more processes than this machine has GPUs ({count}).",
                f"Set num_processes to {count} or fewer.",
            )
        return torch.device("cuda", local_rank)
    if device.type != "cpu":
        raise TrainingError(
            f"Several processes cannot share a {device.type} device: data-parallel training needs one "
            "CUDA or ROCm GPU per process, or the CPU.",
            "Set num_processes to 1.",
        )
    return device


def start() -> World:
    """Join the process group the launcher set up; this rank's ``World``."""
    launched = launched_rank()
    if launched is None:
        raise TrainingError("This process was not started by torch's launcher with several processes.")
    rank, size, local_rank = launched
    watch_parent()
    device = rank_device(local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        torch.set_num_threads(max(1, _cores() // local_size))
    dist.init_process_group(
        backend, rank=rank, world_size=size, timeout=COLLECTIVE_TIMEOUT, device_id=device if backend == "nccl" else None
    )
    logger.info("rank %d of %d on %s (%s)", rank, size, device, backend)
    return World(rank, size, local_rank, device)


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def watch_parent() -> None:
    """End this process when the launcher that started it is gone (killed without the chance
    to end its workers): a rank must never train on, orphaned, holding a GPU."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                logger.error("the launcher is gone; ending this training process")
                os._exit(1)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


# -- sharing what rank 0 knows ----------------------------------------------------------------------


def broadcast_json(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank, as JSON bytes (no pickle, unlike broadcast_object_list)."""
    device = world.device if world.device.type == "cuda" else torch.device("cpu")
    if world.main:
        data = torch.tensor(list(json.dumps(value).encode("utf-8")), dtype=torch.uint8, device=device)
        length = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    else:
        length = torch.zeros(1, dtype=torch.int64, device=device)
    dist.broadcast(length, 0)
    if not world.main:
        data = torch.empty(int(length.item()), dtype=torch.uint8, device=device)
    dist.broadcast(data, 0)
    return value if world.main else json.loads(bytes(data.cpu().tolist()).decode("utf-8"))


class MainRankFailed(Exception):
    """Rank 0 failed at a step the others wait on; it reports why, the others end quietly."""


def share_from_main(
    world: World | None, work: Callable[[], T], encode: Callable[[T], Any], decode: Callable[[Any], T]
) -> T:
    """``work()`` on rank 0 alone; its result reaches the others through ``encode``/``decode``
    (JSON values). When it fails there, the others raise ``MainRankFailed``."""
    if world is None:
        return work()
    if world.main:
        try:
            result = work()
        except BaseException:
            broadcast_json({"failed": True}, world)
            raise
        broadcast_json({"value": encode(result)}, world)
        return result
    shared = broadcast_json(None, world)
    if shared.get("failed"):
        raise MainRankFailed("rank 0 failed; it reports why")
    return decode(shared["value"])


def main_first(world: World | None, work: Callable[[], T]) -> T:
    """``work()`` on rank 0, then on the others (e.g. a download the others then find done)."""
    if world is None:
        return work()
    if world.main:
        result = work()
        dist.barrier()
        return result
    dist.barrier()
    return work()


def barrier(world: World | None) -> None:
    if world is not None:
        dist.barrier()


def my_part(items: Sequence[T], world: World | None) -> list[T]:
    """This rank's items of a list the ranks split between them: r, r + N, ..."""
    return list(items) if world is None else list(items[world.rank :: world.size])


def once(sink: Sink) -> Sink:
    """``sink`` without repeats of a warning already passed on (the ranks' caching reads the
    dataset twice: its own part, then all of it)."""
    seen: set[str] = set()

    def forward(event: Event) -> None:
        if isinstance(event, LogMessage):
            if event.message in seen:
                return
            seen.add(event.message)
        sink(event)

    return forward


def is_peer_loss(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another rank is gone."""
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return any(
        mark in text for mark in ("Connection closed by peer", "Connection reset by peer", "NCCL", "Gloo", "gloo")
    )


def wait_to_be_ended(exc: BaseException) -> None:
    """After losing a peer, give the launcher time to end this rank: its report names the rank
    that died first, which this rank's own error would hide."""
    if is_peer_loss(exc):
        logger.warning("another training process is gone (%s); waiting for the launcher", exc)
        time.sleep(PEER_LOSS_WAIT_S)


class RankControl(TrainingControl):
    """The run's control as every rank sees it: rank 0's, shared at each ``sync()``.

    Rank 0 passes its own control (``source``), which the app or the terminal drives; the others
    none. Between syncs each rank reads the state of the last one, so all of them take the same
    branch: stop, pause, sample or save happen together at a step boundary.
    """

    def __init__(self, world: World, source: TrainingControl | None) -> None:
        super().__init__()
        self.world, self.source = world, source

    def sync(self) -> None:
        device = self.world.device if self.world.device.type == "cuda" else torch.device("cpu")
        state = torch.zeros(4, dtype=torch.int32, device=device)
        if self.world.main and self.source is not None:
            requests = self.source.take_requests()
            values = [
                self.source.stop_requested,
                self.source.paused,
                Request.SAMPLE in requests,
                Request.SAVE in requests,
            ]
            state = torch.tensor([int(v) for v in values], dtype=torch.int32, device=device)
        dist.broadcast(state, 0)
        stop, paused, sample, save = (bool(v) for v in state.tolist())
        if stop:
            self.stop()
        elif paused:
            self.pause()
        else:
            self.resume()
        if sample:
            self.request_sample()
        if save:
            self.request_save()

    def wait_while_paused(self, timeout: float | None = None) -> None:
        """Every rank waits the same time, then hears rank 0 again."""
        if self.source is not None:
            self.source.wait_while_paused(PAUSE_POLL_S)
        else:
            time.sleep(PAUSE_POLL_S)
        self.sync()

    @property
    def stop_asked(self) -> bool:
        """Rank 0's live stop (for work only rank 0 does, such as rendering samples)."""
        return self.source.stop_requested if self.source is not None else self.stop_requested
