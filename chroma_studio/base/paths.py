"""Where Chroma Studio keeps its files: shipped resources and the per-user cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the chroma_studio package


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (beside the package in a checkout or an installed tree)."""
    override = os.environ.get("CHROMA_STUDIO_RESOURCES")
    if override:
        return Path(override)
    for candidate in (PACKAGE_DIR / "resources", PACKAGE_DIR.parent / "resources"):
        if candidate.is_dir():
            return candidate
    return PACKAGE_DIR.parent / "resources"


def cache_dir() -> Path:
    """The per-user cache: the demo model, text/latent caches, thumbnails.

    ``CHROMA_STUDIO_CACHE_DIR`` overrides the platform default.
    """
    override = os.environ.get("CHROMA_STUDIO_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ChromaStudio"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "ChromaStudio" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "chroma-studio"


def data_dir() -> Path:
    """The per-user data folder: files the app and the command line share (the queue of runs).

    ``CHROMA_STUDIO_DATA_DIR`` overrides the platform default.
    """
    override = os.environ.get("CHROMA_STUDIO_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "ChromaStudio"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "ChromaStudio"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "chroma-studio"
