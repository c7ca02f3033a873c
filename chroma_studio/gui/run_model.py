"""The state of one training run as the GUI shows it, kept from the engine's events.

``RunModel.apply(event)`` is the one place engine events are interpreted; the widgets listen
to its signals. A finished or stopped run can be read back from its folder (``load_folder``)
with the same model, so a reopened run looks like a live one that has ended.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from chroma_studio.base import run_folder as runs
from chroma_studio.protocol.events import (
    CheckpointSaved,
    Event,
    Failed,
    Finished,
    MemoryReport,
    Phase,
    PhaseChanged,
    Progress,
    RunPlanned,
    RunStatus,
    SampleReady,
    StepLogged,
    log_lines,
)

logger = logging.getLogger(__name__)

SMOOTHING = 0.95  # weight of the running loss average; ~40 steps of memory


class LossSeries:
    """Steps, raw loss and a bias-corrected running average, in float64 arrays that grow."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty((3, capacity), dtype=np.float64)
        self._size = 0
        self._average = 0.0
        self._weight = 1.0  # SMOOTHING ** n, for the bias correction of the average

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._size, self._average, self._weight = 0, 0.0, 1.0

    def append(self, step: float, loss: float) -> None:
        if self._size == self._data.shape[1]:
            grown = np.empty((3, self._size * 2), dtype=np.float64)
            grown[:, : self._size] = self._data[:, : self._size]
            self._data = grown
        if np.isfinite(loss):
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
            self._weight *= SMOOTHING
        smoothed = self._average / (1 - self._weight) if self._weight < 1 else loss
        self._data[:, self._size] = (step, loss, smoothed)
        self._size += 1

    def extend(self, steps: Any, losses: Any) -> None:
        for step, loss in zip(steps, losses, strict=True):
            self.append(float(step), float(loss))

    @property
    def steps(self) -> np.ndarray:
        return self._data[0, : self._size]

    @property
    def loss(self) -> np.ndarray:
        return self._data[1, : self._size]

    @property
    def smoothed(self) -> np.ndarray:
        return self._data[2, : self._size]


@dataclass(frozen=True)
class SampleImage:
    step: int
    prompt_index: int
    prompt: str
    path: str


class RunModel(QObject):
    """Everything known about the current (or reopened) run."""

    status_changed = Signal(str)  # a RunStatus
    phase_changed = Signal(str, str)  # a Phase, its detail
    planned = Signal(int, int)  # total steps, start step
    steps_added = Signal()
    sample_added = Signal(object)  # SampleImage
    checkpoint_saved = Signal(int, str)
    memory_changed = Signal(object)  # the engine's MemoryReport
    progress_changed = Signal(str, int, int, str)  # task, done, total (0 = unknown), unit
    log_added = Signal(str, str)  # level, message
    run_failed = Signal(object)  # the engine's Failed event
    run_finished = Signal(object)  # the engine's Finished event (or one rebuilt from disk)
    cleared = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.series = LossSeries()
        self._times: deque[tuple[float, int]] = deque(maxlen=64)
        self.clear()

    # -- state -----------------------------------------------------------------------------
    def clear(self, output_dir: str = "") -> None:
        self.series.clear()
        self._times.clear()
        self.status = RunStatus.IDLE
        self.phase: Phase | str = ""  # "" before the engine has said anything
        self.phase_detail = ""
        self.output_dir = output_dir
        self.total_steps = 0
        self.start_step = 0
        self.step = 0
        self.last_loss: float | None = None
        self.learning_rate: float | None = None
        self.samples: list[SampleImage] = []
        self.checkpoints: list[tuple[int, str]] = []
        self.memory: MemoryReport | None = None
        self.failure: Failed | None = None
        self.result: Finished | None = None
        self.lora_files: list[str] = []
        self.reopened = False
        self.run_settings: dict[str, Any] = {}  # the run's flat config (config.json)
        self.cleared.emit()

    def set_status(self, status: RunStatus | str) -> None:
        status = RunStatus(status)
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)

    @property
    def active(self) -> bool:
        return self.status.active

    def steps_per_second(self) -> float:
        """Optimizer steps per second over the last steps (pauses and samples included)."""
        if len(self._times) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._times[0], self._times[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def eta_seconds(self) -> float | None:
        rate = self.steps_per_second()
        if rate <= 0 or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - self.step) / rate)

    def restart_rate(self) -> None:
        """Forget the step times (after a pause) so the rate is not diluted by the wait."""
        self._times.clear()

    # -- engine events ---------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Take one event from the engine."""
        match event:
            case PhaseChanged():
                self._on_phase_changed(event)
            case Progress(task=task, done=done, total=total, unit=unit):
                self.progress_changed.emit(task, done, total, unit)
            case RunPlanned():
                self._on_run_planned(event)
            case StepLogged():
                self._on_step_logged(event)
            case SampleReady(step=step, prompt_index=index, prompt=prompt, path=path):
                self._add_sample(SampleImage(step, index, prompt, path))
            case CheckpointSaved(step=step, path=path):
                self.checkpoints.append((step, path))
                self.checkpoint_saved.emit(step, path)
            case MemoryReport():
                self.memory = event
                self.memory_changed.emit(event)
            case Finished():
                self._on_finished(event)
            case Failed():
                self.failure = event
                self.set_status(RunStatus.FAILED)
                self.run_failed.emit(event)
        for level, message in log_lines(event):
            self.log_added.emit(level, message)

    def _on_phase_changed(self, event: PhaseChanged) -> None:
        self.phase, self.phase_detail = event.phase, event.detail
        if event.phase == Phase.PAUSED:
            self.set_status(RunStatus.PAUSED)
        elif self.status in (RunStatus.STARTING, RunStatus.PAUSED):
            self.set_status(RunStatus.RUNNING)
            self.restart_rate()
        self.phase_changed.emit(event.phase, event.detail)

    def _on_run_planned(self, event: RunPlanned) -> None:
        self.total_steps, self.start_step, self.step = event.total_steps, event.start_step, event.start_step
        if event.start_step and not len(self.series) and self.output_dir:
            self._load_history(Path(self.output_dir), event.start_step)
        self.planned.emit(event.total_steps, event.start_step)

    def _on_step_logged(self, event: StepLogged) -> None:
        self.step, self.total_steps = event.step, event.total_steps
        self.last_loss, self.learning_rate = event.loss, event.lr
        self.series.append(float(event.step), float(event.loss))
        self._times.append((time.monotonic(), event.step))
        self.steps_added.emit()

    def _add_sample(self, sample: SampleImage) -> None:
        self.samples.append(sample)
        self.sample_added.emit(sample)

    def _on_finished(self, event: Finished) -> None:
        self.result = event
        self.step = max(self.step, event.step)
        if event.output_dir:
            self.output_dir = event.output_dir
        self.lora_files = [f for f in event.files if f] or ([event.lora_path] if event.lora_path else [])
        self.set_status(RunStatus.STOPPED if event.stopped else RunStatus.FINISHED)
        self.run_finished.emit(event)

    # -- a run on disk ---------------------------------------------------------------------
    def _load_history(self, folder: Path, up_to: int) -> None:
        """What a resumed run did before ``up_to`` (its checkpoint): the curve, samples, checkpoints."""
        records = [r for r in runs.read_metrics(folder) if r["step"] <= up_to]
        self.series.extend([r["step"] for r in records], [r["loss"] for r in records])
        if records:
            self.last_loss, self.learning_rate = records[-1]["loss"], records[-1].get("lr")
        self.steps_added.emit()
        for record in runs.read_sample_index(folder):
            path = folder / runs.SAMPLES / record["file"]
            if record["step"] <= up_to and path.is_file():
                self._add_sample(
                    SampleImage(record["step"], record.get("prompt_index", 0), record["prompt"], str(path))
                )
        self.checkpoints = [(step, str(path)) for step, path in runs.checkpoint_dirs(folder) if step <= up_to]

    def load_folder(self, output_dir: str | Path) -> None:
        """Show a past run: its loss curve, samples, checkpoints and LoRA files."""
        folder = Path(output_dir)
        if not (folder / runs.METRICS).is_file() and not (folder / runs.CONFIG).is_file():
            raise FileNotFoundError(f"{folder} is not a training run folder (no config.json or metrics.jsonl).")
        self.clear(str(folder))
        self.reopened = True
        config = runs.read_json(folder / runs.CONFIG)
        self.run_settings = config
        for line in runs.read_log(folder):
            self.log_added.emit("history", line)
        self._load_history(folder, up_to=2**62)
        self.step = int(self.series.steps[-1]) if len(self.series) else 0
        self.total_steps = int(config.get("max_train_steps") or self.step)
        self.planned.emit(self.total_steps, 0)
        lora = folder / runs.LORA_FILE
        self.lora_files = sorted(str(p) for p in folder.glob("*.safetensors")) if lora.is_file() else []
        stopped = not runs.is_finished(folder, self.step, self.total_steps)
        self.phase, self.phase_detail = Phase.FINISHED, "Reopened from disk"
        self.set_status(RunStatus.STOPPED if stopped else RunStatus.FINISHED)
        self.result = Finished(
            self.step,
            str(folder),
            str(lora) if lora.is_file() else None,
            stopped=stopped,
            files=tuple(self.lora_files),
        )
        self.run_finished.emit(self.result)
