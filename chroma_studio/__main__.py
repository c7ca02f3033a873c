import sys

from chroma_studio.cli import main

sys.exit(main())
