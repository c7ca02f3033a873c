"""Logging set-up shared by the command line and the app's engine process."""

from __future__ import annotations

import logging
import os
import warnings

FORMAT = "%(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    """Warnings and errors on stderr (everything with ``verbose``); the libraries' chatter muted.

    Deprecation notices from transformers and diffusers are meant for developers of code that
    calls them, not for people training a LoRA, so they are hidden unless ``verbose``.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=FORMAT)
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"diffusers\.")


def is_verbose() -> bool:
    """Whether this process logs debug messages (an engine process it starts should, too)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)
