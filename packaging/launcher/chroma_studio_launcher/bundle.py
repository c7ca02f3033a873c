"""What the installer ships beside the launcher: uv, the Chroma Studio wheel, maybe a wheel folder.

``bundle.json`` (written by packaging/build_bundle.py) names the files. Frozen, the bundle is the
PyInstaller folder (``sys._MEIPASS``); from a checkout, ``--bundle DIR`` or ``CHROMA_STUDIO_BUNDLE``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .decide import OfflineFolder

BUNDLE_FILE = "bundle.json"
BUNDLE_OVERRIDE = "CHROMA_STUDIO_BUNDLE"
WHEELS_OVERRIDE = "CHROMA_STUDIO_WHEELS"
WHEELS_DIR = "wheels"
PYTHON_MIRROR_DIR = "python"


class BundleError(RuntimeError):
    """The launcher's own files are missing or damaged: reinstall."""


@dataclass(frozen=True)
class Bundle:
    root: Path
    uv: Path
    app_wheel: Path
    app_version: str


def bundle_root(explicit: Path | None, environ: Mapping[str, str], frozen_dir: Path | None) -> Path | None:
    if explicit:
        return explicit
    if environ.get(BUNDLE_OVERRIDE):
        return Path(environ[BUNDLE_OVERRIDE])
    return frozen_dir


def load_bundle(root: Path | None) -> Bundle:
    if root is None:
        raise BundleError("No bundle: pass --bundle DIR (a folder made by packaging/build_bundle.py).")
    manifest = root / BUNDLE_FILE
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        bundle = Bundle(root, root / data["uv"], root / data["app_wheel"], str(data["app_version"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"The installation is damaged ({manifest}: {exc}). Please reinstall Chroma Studio.") from exc
    for path in (bundle.uv, bundle.app_wheel):
        if not path.is_file():
            raise BundleError(f"The installation is damaged ({path} is missing). Please reinstall Chroma Studio.")
    return bundle


def offline_candidates(
    explicit: Path | None, environ: Mapping[str, str], executable: Path, system: str, root: Path | None
) -> list[Path]:
    """Folders that may hold wheels to install from instead of the network, in order of precedence."""
    if explicit:
        return [explicit]
    if environ.get(WHEELS_OVERRIDE):
        return [Path(environ[WHEELS_OVERRIDE])]
    candidates = [executable.parent / WHEELS_DIR]  # Windows {app}\wheels, the Linux folder
    if environ.get("APPIMAGE"):
        candidates.append(Path(environ["APPIMAGE"]).parent / WHEELS_DIR)  # beside the AppImage file
    if system == "darwin" and len(executable.parents) > 3 and executable.parents[2].suffix == ".app":
        candidates.append(executable.parents[3] / WHEELS_DIR)  # beside the .app (e.g. on the disk image)
    if root is not None:
        candidates.append(root / WHEELS_DIR)  # an offline edition carries them inside
    return candidates


def scan_offline(path: Path) -> OfflineFolder | None:
    """The folder as an OfflineFolder when it holds wheels; ``python/`` inside is a mirror for uv."""
    try:
        files = tuple(sorted(p.name for p in path.iterdir() if p.suffix == ".whl"))
    except OSError:
        return None
    if not files:
        return None
    mirror = path / PYTHON_MIRROR_DIR
    return OfflineFolder(str(path.resolve()), files, str(mirror.resolve()) if mirror.is_dir() else None)


def find_offline(candidates: list[Path]) -> OfflineFolder | None:
    for candidate in candidates:
        folder = scan_offline(candidate)
        if folder is not None:
            return folder
    return None
