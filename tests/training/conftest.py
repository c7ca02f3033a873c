"""Shared pieces for engine tests: the demo model (tiny real Chroma components) and small datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import TINY_DEMO, copy_demo_images

from chroma_studio.config import config_from_dict


@pytest.fixture(scope="session")
def demo_model_dir():
    from chroma_studio.training.demo import ensure_demo_model

    return ensure_demo_model()


@pytest.fixture
def demo_pipeline(demo_model_dir):
    """A fresh ChromaPipeline of the demo components (each test may modify it)."""
    from diffusers import ChromaPipeline

    return ChromaPipeline.from_pretrained(demo_model_dir)


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    """Four real demo images with their captions, in a folder of their own."""
    return copy_demo_images(tmp_path / "data")


@pytest.fixture
def make_config(tmp_path, small_dataset):
    """A demo-flavour config for a short CPU run; keyword arguments override flat keys."""

    def make(**overrides):
        values = {
            **TINY_DEMO,
            "dataset_dirs": [str(small_dataset)],
            "output_dir": str(tmp_path / "run"),
            "cache_dir": str(tmp_path / "cache"),
            "validation_steps": 0,  # samples only where a test asks for them
        }
        values.update(overrides)
        return config_from_dict(values)

    return make


class EventLog(list):
    """A sink that keeps every event."""

    def __call__(self, event):
        self.append(event)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


@pytest.fixture
def events() -> EventLog:
    return EventLog()
