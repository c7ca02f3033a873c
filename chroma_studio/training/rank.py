"""One process of a data-parallel run, as torch's launcher starts it:
``python -m torch.distributed.run --standalone --nproc-per-node N -m chroma_studio.training.rank``
(``protocol/launch.py`` builds that command line).

Rank 0 is the engine process of ``child.py`` as far as the app can tell: the workers inherit the
launcher's standard streams, so rank 0 reads the job from stdin (its first line), then one command
per line, and writes the events and the result to stdout, exactly as ``child.py`` does;
``remote.run_in_process`` reads them through the launcher unchanged. This was chosen over a relay
in the engine process because nothing sits between the app and rank 0: one process fewer to
keep alive, and no second copy of the protocol. The other ranks receive the job from rank 0 over
the process group, point their stdout at stderr (a library's print cannot garble the events),
never read stdin, and report nothing: their failures reach the launcher as exit codes, and its
report names the rank (``protocol/launch.py``).

Exit code: 0, or 1 when the run failed or ended before its first step (a stop while caching): rank
0 may then have left the others waiting in a collective, and the launcher ends them at once.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys
import threading

from chroma_studio.base.logs import setup_logging
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.protocol.events import Failed, RunStatus, null_sink
from chroma_studio.protocol.jobs import JobError, TrainJob, job_from_message
from chroma_studio.training import distributed
from chroma_studio.training.child import _exit, _lines, _read_commands, _take_stdout, _Writer

logger = logging.getLogger(__name__)


def main() -> int:
    faulthandler.enable()
    launched = distributed.launched_rank()
    if launched is None:
        print("This module is started by torch's launcher: see chroma_studio.protocol.launch.", file=sys.stderr)
        return 2
    events = _take_stdout()
    main_rank = launched[0] == 0
    writer = _Writer(events)
    if not main_rank:
        writer.stream = None  # only rank 0 speaks to the app
        events.close()
    commands = _lines(sys.stdin.fileno()) if main_rank else iter(())
    message = None
    if main_rank:
        try:
            message = json.loads(next(commands, b"{}"))
        except ValueError:
            message = None
    try:
        world = distributed.start()
        message = distributed.broadcast_json(message, world)
    except Exception as exc:  # no GPU for each process, MPS, Windows with CUDA, a rendezvous that failed
        from chroma_studio.training.errors import describe_failure

        failure = describe_failure(exc)
        logger.error("%s", failure.message)
        writer.event(failure)
        writer.result(None)
        return 1
    setup_logging(isinstance(message, dict) and bool(message.pop("verbose", False)))
    try:
        job = job_from_message(message)
    except JobError as exc:
        return _refuse(writer, f"The engine was given a job it cannot run: {exc}")
    if not isinstance(job, TrainJob):
        return _refuse(writer, f"Only training runs in several processes, not a {job.kind!r} job.")
    control = TrainingControl()
    if main_rank:
        # Ctrl-C in a terminal reaches only the launcher's caller (the launcher runs in a process
        # group of its own); a stop comes as a command. Should one reach rank 0, it stops cleanly.
        signal.signal(signal.SIGINT, lambda *_: control.stop())
        reader = threading.Thread(target=_read_commands, args=(commands, control, writer), daemon=True)
        reader.start()
    else:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # rank 0 decides when the run stops
    from chroma_studio.config import config_from_dict
    from chroma_studio.training.trainer import run_training

    result = run_training(config_from_dict(job.config), writer.event if main_rank else null_sink, control, world)
    writer.result(result)
    distributed.finish()
    if result.status == RunStatus.FAILED or (main_rank and result.lora_path is None):
        return 1  # the run ended before or outside the loop: the launcher ends any rank still waiting
    return 0


def _refuse(writer: _Writer, message: str) -> int:
    logger.error("%s", message)
    writer.event(Failed(message, "Set num_processes to 1 to train in one process, and report the problem."))
    writer.result(None)
    return 1


if __name__ == "__main__":
    _exit(main())
