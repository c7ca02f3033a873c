"""``chroma-studio doctor`` on a machine with several GPUs: data-parallel training is offered."""

from __future__ import annotations

import json
import sys

import pytest
from fakes import FakeGpu

from chroma_studio.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no NCCL on Windows: never offered there")


def test_two_gpus_of_one_size_offer_data_parallel_training(fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4090", 24), FakeGpu("NVIDIA GeForce RTX 4090", 24), ram_gb=128)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "GPUs:    2 GPUs: data-parallel available (num_processes 2)" in out


def test_gpus_of_different_sizes_say_the_settings_must_fit_the_smallest(fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4090", 24), FakeGpu("NVIDIA GeForce RTX 3060", 12), ram_gb=64)
    assert main(["doctor"]) == 0
    assert "2 GPUs: data-parallel available (num_processes 2; settings must fit the smallest, 12.0 GB)" in (
        capsys.readouterr().out
    )
    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_parallel_gpus"] == 2


def test_one_gpu_says_nothing_of_it(fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4090", 24), ram_gb=64)
    assert main(["doctor"]) == 0
    assert "data-parallel" not in capsys.readouterr().out
