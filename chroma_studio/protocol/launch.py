"""Starting a data-parallel run through torch's launcher, and reading how it ended (no torch here).

``run_in_process`` (``remote.py``) starts ``launcher_command(N)`` instead of the engine process
when a training job asks for ``num_processes`` > 1: ``torch.distributed.run`` (what ``torchrun``
runs) starts N ranks of ``training/rank.py`` on this machine (``--standalone``: a rendezvous on a
free local port), watches them, and when one dies ends the others (SIGTERM, then SIGKILL) and
exits with a report on stderr naming the rank that failed first. Rank 0 speaks the engine
protocol on the streams it inherits, so the caller reads events as from one engine process.

Several machines: the same ranks can be started by hand with torchrun's ``--nnodes``,
``--node-rank`` and ``--rdzv-endpoint`` on each machine; not tested.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from chroma_studio.protocol.events import Failed, FailureTopic

RANK_MODULE = "chroma_studio.training.rank"
LAUNCHER_MODULE = "torch.distributed.run"
MONITOR_INTERVAL_S = 0.5  # how often the launcher looks at its ranks

# The launcher's report: "Root Cause (first observed failure): [0]: ... rank : 1 (local_rank: 1)
# ... exitcode : -9 (pid: 123)".
_ROOT_CAUSE = re.compile(
    r"Root Cause.*?rank\s*:\s*(?P<rank>\d+).*?exitcode\s*:\s*(?P<code>-?\d+)", re.DOTALL | re.IGNORECASE
)
_SIGNALS = {-9: "SIGKILL", -15: "SIGTERM", -11: "SIGSEGV", -6: "SIGABRT", -7: "SIGBUS", -4: "SIGILL"}


def processes_of(config: Mapping[str, Any]) -> int:
    """How many processes a job's flat config asks for (``num_processes``; 1 when unset or bad)."""
    value = config.get("num_processes")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def launcher_command(python: str, processes: int) -> list[str]:
    """The command line that starts ``processes`` ranks with torch's launcher under ``python``."""
    return [
        python,
        "-m",
        LAUNCHER_MODULE,
        "--standalone",
        f"--nproc-per-node={processes}",
        f"--monitor-interval={MONITOR_INTERVAL_S}",
        f"--log-dir={os.devnull}",  # the ranks' output goes to the caller; no log folder left in the temp folder
        "-m",
        RANK_MODULE,
    ]


def failed_rank(tail: Sequence[str]) -> tuple[int, int] | None:
    """(rank, exit code) of the first rank that failed, from the launcher's last output."""
    found = list(_ROOT_CAUSE.finditer("\n".join(tail)))
    if not found:
        return None
    return int(found[-1]["rank"]), int(found[-1]["code"])


def describe_rank_exit(tail: Sequence[str], processes: int, checkpoint_kept: bool) -> Failed:
    """Why a data-parallel run ended without a result, naming the rank that failed first."""
    resume = " The last checkpoint is kept: Resume continues from it." if checkpoint_kept else ""
    details = "\n".join(tail)
    failed = failed_rank(tail)
    if failed is None:
        return Failed(
            f"One of the {processes} training processes ended unexpectedly, and the others were ended with it.",
            f"The details below show the last output.{resume}",
            details,
        )
    rank, code = failed
    how = f"was killed ({_SIGNALS.get(code, f'signal {-code}')})" if code < 0 else f"failed (exit code {code})"
    message = f"Training process rank {rank} of {processes} {how}; the launcher ended the other processes."
    if code == -9:
        return Failed(
            message,
            "The system most likely ran out of memory: close other programs, lower the resolution or the "
            f"batch size, or use fewer processes (num_processes).{resume}",
            details,
            topic=FailureTopic.MEMORY,
        )
    return Failed(message, f"The details below show that process's last output.{resume}", details)
