"""The open project and the app's settings.

A project is the dataset folders, the trigger word and every training setting (one
``TrainingConfig``), plus the runs trained from it. It is saved as one JSON file, atomically,
and listed under recent projects. App-wide settings (output folder, cache folder, HF endpoint)
and the recent list live in QSettings.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, Signal

from chroma_studio.base.atomic import write_text_atomic
from chroma_studio.config import ConfigError, Problem, TrainingConfig, config_from_dict

logger = logging.getLogger(__name__)

PROJECT_SUFFIX = ".chromastudio"
PROJECT_FORMAT = 1
MAX_RECENT = 10


class ProjectError(ValueError):
    """A project file that cannot be opened; the message names the file and the reason."""


class AppSettings:
    """Typed access to the app's QSettings (tests pass their own ini-backed QSettings)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qsettings = settings if settings is not None else QSettings()

    def _text(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return str(value) if value is not None else default

    @property
    def output_folder(self) -> str:
        default = Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or Path.home()
        )
        return self._text("paths/output_folder") or str(default / "Chroma Studio" / "runs")

    @output_folder.setter
    def output_folder(self, value: str) -> None:
        self.qsettings.setValue("paths/output_folder", value)

    @property
    def cache_folder(self) -> str:
        """Where text and image embeddings are cached; empty: the app's cache folder."""
        return self._text("paths/cache_folder")

    @cache_folder.setter
    def cache_folder(self, value: str) -> None:
        self.qsettings.setValue("paths/cache_folder", value)

    @property
    def hf_endpoint(self) -> str:
        return self._text("hub/endpoint")

    @hf_endpoint.setter
    def hf_endpoint(self, value: str) -> None:
        self.qsettings.setValue("hub/endpoint", value.strip())

    def environment(self) -> dict[str, str]:
        """Variables the engine's Hub client reads."""
        return {"HF_ENDPOINT": self.hf_endpoint} if self.hf_endpoint else {}

    @property
    def recent_projects(self) -> list[str]:
        value = self.qsettings.value("projects/recent", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def add_recent_project(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_projects if p != path]
        self.qsettings.setValue("projects/recent", recent[:MAX_RECENT])

    def remove_recent_project(self, path: str) -> None:
        self.qsettings.setValue("projects/recent", [p for p in self.recent_projects if p != path])


class ProjectSession(QObject):
    """The project being edited: one config, its runs, where it is saved, and whether it changed."""

    config_changed = Signal()
    project_changed = Signal()  # opened, saved, renamed, or its dirty flag changed
    runs_changed = Signal()

    def __init__(self, settings: AppSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.config = TrainingConfig()
        self.runs: list[str] = []
        self.preset: str | None = None
        self.path: Path | None = None
        self.dirty = False

    # -- identity --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.stem if self.path else "Untitled project"

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.project_changed.emit()

    # -- editing ---------------------------------------------------------------------------
    def update(self, **values: Any) -> None:
        """Change settings by flat key; raises ConfigError (listing each bad key) and keeps the old config."""
        current = self.config.to_dict()
        if all(current.get(k) == v for k, v in values.items()):
            return
        self.config = self.config.replace(**values)
        self._set_dirty(True)
        self.config_changed.emit()

    def set_config(self, config: TrainingConfig, preset: str | None = None) -> None:
        self.config = config
        self.preset = preset
        self._set_dirty(True)
        self.config_changed.emit()

    def set_dataset_dirs(self, folders: list[str]) -> None:
        self.update(dataset_dirs=[str(f) for f in folders])

    def set_trigger_word(self, word: str) -> None:
        self.update(trigger_word=word.strip() or None)

    def problems(self) -> list[Problem]:
        return self.config.validate()

    # -- runs ------------------------------------------------------------------------------
    def new_run_dir(self) -> str:
        """A fresh folder under the output folder, named after the trigger word or project and the time."""
        base = self.config.data.trigger_word or (self.path.stem if self.path else "lora")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-") or "lora"
        folder = Path(self.settings.output_folder) / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
        candidate, n = folder, 1
        while candidate.exists():
            n += 1
            candidate = folder.with_name(f"{folder.name}-{n}")
        return str(candidate)

    def training_config(self, output_dir: str, resume: bool = False) -> TrainingConfig:
        """The config a run starts with: this project's settings in its own output folder."""
        values: dict[str, Any] = {"output_dir": output_dir, "resume_from_checkpoint": "latest" if resume else None}
        if not self.config.run.cache_dir and self.settings.cache_folder:
            values["cache_dir"] = self.settings.cache_folder
        return self.config.replace(**values)

    def add_run(self, output_dir: str) -> None:
        if output_dir not in self.runs:
            self.runs.append(output_dir)
            self._set_dirty(True)
            self.runs_changed.emit()

    def existing_runs(self) -> list[str]:
        return [r for r in self.runs if Path(r).is_dir()]

    # -- files -----------------------------------------------------------------------------
    def new(self) -> None:
        self.config, self.runs, self.preset, self.path = TrainingConfig(), [], None, None
        self.dirty = False
        self.project_changed.emit()
        self.config_changed.emit()
        self.runs_changed.emit()

    def to_dict(self) -> dict[str, Any]:
        return {
            "chroma_studio_project": PROJECT_FORMAT,
            "preset": self.preset,
            "config": self.config.to_dict(),
            "runs": list(self.runs),
        }

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ProjectError("Choose where to save the project first.")
        if target.suffix != PROJECT_SUFFIX:
            target = target.with_name(target.name + PROJECT_SUFFIX)
        write_text_atomic(target, json.dumps(self.to_dict(), indent=2) + "\n")
        self.path = target.resolve()
        self.settings.add_recent_project(str(self.path))
        self.dirty = False
        self.project_changed.emit()
        return self.path

    def open(self, path: str | Path) -> None:
        target = Path(path)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProjectError(f"{target} does not exist.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{target} cannot be read as a Chroma Studio project: {exc}") from None
        if not isinstance(data, dict) or "chroma_studio_project" not in data:
            raise ProjectError(f"{target} is not a Chroma Studio project file.")
        version = data["chroma_studio_project"]
        if not isinstance(version, int) or version > PROJECT_FORMAT:
            raise ProjectError(f"{target} was saved by a newer Chroma Studio; update the app to open it.")
        self.restore(data, base=target.resolve().parent, source=str(target))
        self.path = target.resolve()
        self.dirty = False
        self.settings.add_recent_project(str(self.path))
        self.project_changed.emit()

    def restore(self, data: dict[str, Any], base: Path | None = None, source: str | None = None) -> None:
        """Take the config, runs and preset of a project's data (relative paths against ``base``)."""
        try:
            config = config_from_dict(data.get("config", {}), source)
        except ConfigError as exc:
            raise ProjectError(str(exc)) from None
        base = base or Path.cwd()
        config.data.dataset_dirs = [str((base / d).resolve()) for d in config.data.dataset_dirs]
        self.config = config
        self.runs = [str((base / r).resolve()) for r in data.get("runs", []) if isinstance(r, str)]
        self.preset = data.get("preset")
        self.config_changed.emit()
        self.runs_changed.emit()

    def mark_unchanged(self) -> None:
        self._set_dirty(False)
