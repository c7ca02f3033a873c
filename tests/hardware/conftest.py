"""Fixtures that fake the hardware at the boundary (see fakes.py)."""

from __future__ import annotations

import pytest
from fakes import FakeGpu, FakeNvml, install_fake_nvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch):
    """Install fake NVIDIA GPUs: ``fake_nvml(FakeGpu("RTX 4090", 24), ram_gb=64)``."""

    def install(*gpus: FakeGpu, **kwargs) -> FakeNvml:
        return install_fake_nvml(monkeypatch, *gpus, **kwargs)

    return install
