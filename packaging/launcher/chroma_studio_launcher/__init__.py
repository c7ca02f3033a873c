"""The Chroma Studio launcher: first-run setup of a private Python environment, then the app.

It runs before Chroma Studio is installed, so it never imports ``chroma_studio``. The decision of
which PyTorch build to install (:mod:`.decide`) is pure and shared by the Windows, macOS and Linux
installers; :mod:`.detect` gathers the hardware facts without torch; :mod:`.install` runs uv.
"""

__version__ = "0.1.0"

APP_NAME = "Chroma Studio"
DIST_NAME = "chroma-studio"
