"""The script PyInstaller freezes: the launcher's entry point."""

import sys

from chroma_studio_launcher.__main__ import main

sys.exit(main())
