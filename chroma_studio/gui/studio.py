"""``Studio``: the app's one view-model; the pages are views of it.

It holds the open project (a ``ProjectSession``: every setting in one ``TrainingConfig``, the runs,
the project file), the machine with its recommendation, what the Dataset page found in the
folders, and the run controller. Pages read its properties, follow its signals and call its verbs:
start a run, apply a preset, what is missing before training, what differs from the
recommendation. The dataset folders, the trigger word and the resolution live in the project's
config and nowhere else; a change to any of them is announced by a signal of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from chroma_studio.config import FIELDS, ConfigError, Problem, TrainingConfig, errors
from chroma_studio.gui import hardware_adapter
from chroma_studio.gui.machine_info import MachineSummary, PresetOption
from chroma_studio.gui.queue_model import QueueModel
from chroma_studio.gui.run_controller import RunController
from chroma_studio.gui.session import AppSettings, ProjectSession
from chroma_studio.gui.worker import CallWorker

logger = logging.getLogger(__name__)

UNTITLED_STATE_KEY = "projects/untitled_state"  # the unsaved project, kept between launches
# Settings other parts of the window edit (the Dataset page, the run folder, resume), or with one choice.
MANAGED_ELSEWHERE = frozenset(
    {"dataset_dirs", "trigger_word", "output_dir", "resume_from_checkpoint", "model_type", "model_family"}
)


def preset_values(option: PresetOption) -> dict[str, Any]:
    """The settings a preset changes (not the dataset, trigger word or run folder)."""
    return {k: v for k, v in option.settings.items() if k in FIELDS and k not in MANAGED_ELSEWHERE}


@dataclass(frozen=True)
class StartResult:
    """What became of a request to train: a run in ``output_dir``, or why there is none."""

    output_dir: str = ""
    running: bool = False  # a run is in progress already
    missing_images: str = ""  # there is nothing to train on: why, in words
    problems: tuple[Problem, ...] = ()  # settings that stop a run: typed values refused, then config errors

    @property
    def started(self) -> bool:
        return bool(self.output_dir)


class Studio(QObject):
    config_changed = Signal()
    project_changed = Signal()  # opened, saved, renamed, or its unsaved mark changed
    runs_changed = Signal()
    preset_changed = Signal(object)  # the preset's key; None once a setting is changed by hand
    resolution_changed = Signal(int)
    dataset_folders_changed = Signal(list, list)  # the folders now, and those just removed (absolute paths)
    trigger_word_changed = Signal(str)
    dataset_images_changed = Signal(object, int)  # images that train (None while scanning), image files found
    machine_detected = Signal(object)  # MachineSummary
    machine_detection_failed = Signal(str)

    def __init__(
        self,
        settings: AppSettings | None = None,
        detector: Callable[[], MachineSummary] | str | None = "detect",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = ProjectSession(settings, self)
        self.settings = self.session.settings
        self.controller = RunController(self)
        self.queue = QueueModel(self.controller, environment=self.settings.environment, parent=self)
        self.summary: MachineSummary | None = None
        self.input_errors: dict[str, str] = {}  # key -> why the value typed for it was refused
        self._dataset_images: tuple[int | None, int] = (None, 0)
        self._seen = (self.session.config, self.session.preset)  # what the last signals announced
        if isinstance(detector, str):  # "detect": ask this machine
            detector = partial(hardware_adapter.summarize, self.settings.output_folder)
        self.detector = detector
        self.detect_worker: CallWorker | None = None
        self.session.config_changed.connect(self._on_session_config_changed)
        self.session.project_changed.connect(self.project_changed)
        self.session.runs_changed.connect(self.runs_changed)

    # -- the project's settings ------------------------------------------------------------
    @property
    def config(self) -> TrainingConfig:
        return self.session.config

    @property
    def preset(self) -> str | None:
        return self.session.preset

    @property
    def resolution(self) -> int:
        return self.config.data.resolution

    def set_resolution(self, resolution: int) -> None:
        self.session.update(resolution=int(resolution))

    def update_settings(self, **values: Any) -> None:
        """Change settings by flat key; raises ConfigError and keeps the old config."""
        self.session.update(**values)

    def edit_setting(self, key: str, value: Any) -> bool:
        """A value typed in the settings form: taken (the preset no longer describes the settings), or
        refused and kept in ``input_errors`` until a good value replaces it (False)."""
        try:
            self.session.update(**{key: value})
        except ConfigError as exc:
            self.input_errors[key] = "; ".join(p.message for p in exc.problems)
            return False
        self.input_errors.pop(key, None)
        if self.session.preset is not None:
            self.session.preset = None
            self._announce_changes()
        return True

    def problems(self) -> list[Problem]:
        """Every problem of the settings, errors and warnings (not the values refused while typed)."""
        return self.session.problems()

    def apply_preset(self, option: PresetOption) -> None:
        """Take a preset's settings; the dataset, trigger word and folders stay. Raises ConfigError."""
        config = self.config.replace(**preset_values(option))
        self.input_errors.clear()
        self.session.set_config(config, preset=option.key)

    def apply_recommendation(self) -> bool:
        """Take the settings recommended for this machine (False before it is known)."""
        if self.recommended is None:
            return False
        self.apply_preset(self.recommended)
        return True

    # -- the dataset ----------------------------------------------------------------------------
    @property
    def dataset_folders(self) -> list[str]:
        return list(self.config.data.dataset_dirs)

    def set_dataset_folders(self, folders: list[str]) -> None:
        """Train on these folders (made absolute, each once)."""
        normal = list(dict.fromkeys(str(Path(f).expanduser().absolute()) for f in folders))
        self.session.set_dataset_dirs(normal)

    def add_dataset_folders(self, folders: list[str]) -> None:
        self.set_dataset_folders([*self.dataset_folders, *folders])

    def remove_dataset_folder(self, folder: str) -> None:
        self.set_dataset_folders([f for f in self.dataset_folders if f != folder])

    @property
    def trigger_word(self) -> str:
        return self.config.data.trigger_word or ""

    def set_trigger_word(self, word: str) -> None:
        self.session.set_trigger_word(word)

    @property
    def dataset_images(self) -> tuple[int | None, int]:
        """Images that train (None while the folders are scanned) and image files found."""
        return self._dataset_images

    def set_dataset_images(self, usable: int | None, found: int) -> None:
        if (usable, found) != self._dataset_images:
            self._dataset_images = (usable, found)
            self.dataset_images_changed.emit(usable, found)

    # -- the machine ------------------------------------------------------------------------
    @property
    def recommended(self) -> PresetOption | None:
        return self.summary.recommended if self.summary is not None else None

    def detect_machine(self) -> None:
        """Ask the detector off the GUI thread; ``machine_detected`` or ``machine_detection_failed`` follows."""
        if self.detector is None or (self.detect_worker is not None and self.detect_worker.is_running()):
            return
        worker = CallWorker(self.detector)
        worker.finished.connect(self._on_detect_worker_finished, Qt.ConnectionType.QueuedConnection)
        worker.failed.connect(self._on_detect_worker_failed, Qt.ConnectionType.QueuedConnection)
        self.detect_worker = worker
        worker.start()

    @Slot(object)
    def _on_detect_worker_finished(self, summary: Any) -> None:
        if self.detect_worker is not None:
            self.detect_worker.wait()
        if summary is not None:
            self.set_machine_summary(summary)

    @Slot(str)
    def _on_detect_worker_failed(self, message: str) -> None:
        self.machine_detection_failed.emit(message)

    def set_machine_summary(self, summary: MachineSummary) -> None:
        """Know the machine; a fresh project (no preset, no runs) takes the recommended settings."""
        first = self.summary is None
        self.summary = summary
        if first and self.session.preset is None and not self.session.runs:
            changed = self.session.dirty
            if self._take_recommendation() and not changed:
                self.session.mark_unchanged()  # the starting settings of a fresh project are not the user's change
        self.machine_detected.emit(summary)

    def _take_recommendation(self) -> bool:
        try:
            return self.apply_recommendation()
        except ConfigError as exc:  # a shipped recommendation the config refuses: keep the settings
            logger.warning("the recommended settings cannot be applied: %s", exc)
            return False

    def processes_changes(self, processes: int) -> dict[str, Any]:
        """The settings to change for a run on ``processes`` GPUs, ``num_processes`` last. Several
        processes cannot stream blocks: where the settings stream, the recommendation for all GPUs
        comes first (no block streamed, and the precision, resolution and rank it chose)."""
        on_all = self.summary.all_gpus if self.summary is not None else None
        if processes > 1 and self.config.model.blocks_to_swap and on_all is not None and on_all.fits:
            values = {k: v for k, v in preset_values(on_all).items() if k not in ("model_flavour", "num_processes")}
            return {**values, "num_processes": processes}  # the model (base, HD, …) stays the user's
        return {"num_processes": processes}

    def estimate_text(self) -> str:
        """What the settings need of this machine's memory, in a sentence ("" before it is known)."""
        return hardware_adapter.estimate_text(self.config, self.summary) if self.summary is not None else ""

    # -- before training ------------------------------------------------------------------------
    def recommended_changes(self) -> dict[str, Any]:
        """The settings that differ from the recommendation: key -> the recommended value."""
        if self.recommended is None:
            return {}
        values = preset_values(self.recommended)
        try:
            target = self.config.replace(**values).to_dict()
        except ConfigError:
            return {}
        current = self.config.to_dict()
        return {key: target[key] for key in values if target[key] != current[key]}

    def missing_images(self) -> str:
        """Why there is nothing to train on ("" when there are images, or while that is not known)."""
        folders = self.dataset_folders
        if not folders:
            return "Add a folder of images first: drop it on the Dataset page, or use its Add folder button."
        usable, found = self._dataset_images
        if usable is None or usable > 0:
            return ""
        if found:
            files = "the image" if found == 1 else f"all {found:,} images"
            return (
                f"No images yet that can train: {files} in the dataset cannot be used (a damaged file, or a "
                "caption that cannot be read), and training leaves such images out. The Dataset page shows "
                "what is wrong with each one; fix or replace them, or add another folder there."
            )
        where = f"the folder “{Path(folders[0]).name}” has" if len(folders) == 1 else "the dataset folders have"
        return (
            f"No images yet: {where} no images. Add a folder of photos (JPEG, PNG, WebP and other common "
            "formats) on the Dataset page."
        )

    def blocking_problems(self) -> list[Problem]:
        """What stops a run in the settings: the values refused while typed, then the config's errors."""
        return [*(Problem(k, m) for k, m in self.input_errors.items()), *errors(self.problems())]

    def start_run(self, preset: PresetOption | None = None, resume_dir: str | None = None) -> StartResult:
        """Check everything and start a run (with ``preset`` applied first; or resuming ``resume_dir``)."""
        if self.controller.running:
            return StartResult(running=True)
        reason = self.missing_images()
        if reason:
            return StartResult(missing_images=reason)
        if preset is not None:
            try:
                self.apply_preset(preset)
            except ConfigError as exc:
                return StartResult(problems=tuple(exc.problems))
        problems = self.blocking_problems()
        if problems:
            return StartResult(problems=tuple(problems))
        output_dir = resume_dir or self.session.new_run_dir()
        config = self.session.training_config(output_dir, resume=resume_dir is not None)
        self.controller.start(config, self.settings.environment())
        self.session.add_run(output_dir)
        return StartResult(output_dir=output_dir)

    def add_to_queue(self) -> StartResult:
        """Check the settings and images as a start would, then add a snapshot of them to the queue
        of runs in a new run folder (``QueueError`` when the queue refuses it)."""
        reason = self.missing_images()
        if reason:
            return StartResult(missing_images=reason)
        problems = self.blocking_problems()
        if problems:
            return StartResult(problems=tuple(problems))
        output_dir = self.queue.free_output_dir(self.session.new_run_dir())
        self.queue.add(self.session.training_config(output_dir).to_dict(), Path(output_dir).name)
        self.session.add_run(output_dir)  # listed under Past runs once it has started
        return StartResult(output_dir=output_dir)

    # -- projects -------------------------------------------------------------------------------
    def new_project(self) -> None:
        """An empty project with the settings recommended for this machine, marked unchanged."""
        self.session.new()
        self.input_errors.clear()
        if self._take_recommendation():
            self.session.mark_unchanged()

    def open_project(self, path: str) -> None:
        """Open a project file; raises ProjectError (naming the file and the reason)."""
        self.session.open(path)
        self.input_errors.clear()

    def save_untitled_state(self) -> None:
        self.settings.qsettings.setValue(UNTITLED_STATE_KEY, json.dumps(self.session.to_dict()))

    def restore_untitled_state(self) -> None:
        """Take back the unsaved project of the last launch, if there is one."""
        text = self.settings.qsettings.value(UNTITLED_STATE_KEY, "")
        if not text:
            return
        try:
            self.session.restore(json.loads(str(text)))
        except (ValueError, TypeError, AttributeError) as exc:  # ProjectError is a ValueError
            logger.warning("the last unsaved project could not be restored: %s", exc)

    def shutdown(self) -> None:
        """Stop the run (if any) and wait for it and the machine detection to end."""
        self.controller.shutdown()
        self.queue.shutdown()
        if self.detect_worker is not None:
            self.detect_worker.wait()

    # -- change signals -----------------------------------------------------------------------
    def _on_session_config_changed(self) -> None:
        self.config_changed.emit()
        self._announce_changes()

    def _announce_changes(self) -> None:
        """Send the signal of each part of the project that changed since the last announcement."""
        (old, old_preset), config = self._seen, self.session.config
        self._seen = (config, self.session.preset)
        if old.data.dataset_dirs != config.data.dataset_dirs:
            removed = [f for f in old.data.dataset_dirs if f not in config.data.dataset_dirs]
            self.dataset_folders_changed.emit(list(config.data.dataset_dirs), removed)
        if old.data.trigger_word != config.data.trigger_word:
            self.trigger_word_changed.emit(self.trigger_word)
        if old.data.resolution != config.data.resolution:
            self.resolution_changed.emit(config.data.resolution)
        if old_preset != self.session.preset:
            self.preset_changed.emit(self.session.preset)
