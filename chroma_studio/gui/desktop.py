"""Handing files to the desktop: "Show in folder"."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

logger = logging.getLogger(__name__)


def show_in_folder(path: str | Path) -> bool:
    """Open the file manager at ``path`` (selecting the file where the platform can)."""
    target = Path(path)
    try:
        if sys.platform == "darwin" and target.exists():
            subprocess.Popen(["open", "-R", str(target)])
            return True
        if sys.platform == "win32" and target.is_file():
            subprocess.Popen(["explorer", "/select,", str(target)])
            return True
    except OSError as exc:
        logger.warning("cannot open the file manager: %s", exc)
    folder = target if target.is_dir() else target.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
