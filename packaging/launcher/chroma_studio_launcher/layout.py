"""Where the launcher keeps the private environment, per operating system (a pure mapping)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_OVERRIDE = "CHROMA_STUDIO_HOME"


@dataclass(frozen=True)
class Layout:
    """The launcher's per-user folder: environment, uv's Python builds and cache, state, logs."""

    root: Path
    system: str

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def python_dir(self) -> Path:
        return self.root / "python"

    @property
    def uv_cache(self) -> Path:
        return self.root / "uv-cache"

    @property
    def state_file(self) -> Path:
        return self.root / "install.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def constraints(self) -> Path:
        return self.root / "constraints.txt"

    @property
    def env_python(self) -> Path:
        if self.system == "windows":
            return self.env / "Scripts" / "python.exe"
        return self.env / "bin" / "python"

    @property
    def env_gui_python(self) -> Path:
        """The interpreter that opens no console window (Windows' pythonw.exe)."""
        if self.system == "windows":
            return self.env / "Scripts" / "pythonw.exe"
        return self.env_python

    def site_packages(self) -> list[Path]:
        if self.system == "windows":
            return [self.env / "Lib" / "site-packages"]
        return sorted((self.env / "lib").glob("python3*/site-packages"))


def default_root(system: str, environ: Mapping[str, str], home: Path) -> Path:
    """``CHROMA_STUDIO_HOME`` if set, else the platform's per-user application-data folder."""
    if environ.get(HOME_OVERRIDE):
        return Path(environ[HOME_OVERRIDE])
    if system == "windows":
        return Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "ChromaStudio"
    if system == "darwin":
        return home / "Library" / "Application Support" / "ChromaStudio"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "chroma-studio"
