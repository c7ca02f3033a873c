"""The launcher is not part of the chroma_studio package: import it from packaging/launcher."""

from __future__ import annotations

import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parents[2] / "packaging" / "launcher"
if str(LAUNCHER) not in sys.path:
    sys.path.insert(0, str(LAUNCHER))
