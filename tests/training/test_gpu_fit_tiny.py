"""``tests/benchmarks/gpu_fit.py --tiny`` runs on the CPU: the GPU fit benchmark's own code path,
with a tiny Chroma, so a machine without CUDA proves the script a GPU will run still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_fit.py"


def test_gpu_fit_tiny_trains_every_case_and_reports_it(tmp_path):
    out = tmp_path / "fit.json"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(out), "--only", "int8:*,int4:1024-stream-6gb,nf4:512-8gb"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report == json.loads(done.stdout)  # the file after the last case is what it printed
    assert report["tiny"] is True and report["device"] == "cpu"
    assert any("caps" in note and "skipped" in note for note in report["notes"])

    int8 = report["precisions"]["int8-quanto"]["cases"]
    assert list(int8) == [
        "1024-stream-8gb",
        "1024-stream-6gb",
        "512-8gb",
        "512-6gb",
        "1024-8gb",
        "1024-6gb",
        "1024-uncapped",
    ]
    for name, case in int8.items():
        assert case["fits"] is True, name
        assert case["s_per_step"] > 0
        assert case["cap"] == "skipped: no CUDA"
        # the memory model's real-size figure, with the context and allocator reserve apart
        assert case["estimate_gb"]["device"] > case["estimate_gb"]["tensors"] > 0
    assert int8["512-6gb"]["estimate_gb"]["device"] < int8["1024-6gb"]["estimate_gb"]["device"]

    # 1024 px int8 does not fit 5.5 GB unstreamed, so the 6 GB case streams, through the engine's
    # streamer: each streamed block loads twice per step (forward and checkpoint recompute)
    streamed = int8["1024-stream-6gb"]
    assert streamed["blocks_to_swap"] > 0 and streamed["blocks_chosen_by"] != "none"
    assert streamed["loads_per_block_per_step"] == 2
    assert streamed["streamed_bytes_per_step"] > 0
    assert int8["1024-6gb"]["blocks_to_swap"] == 0 and "loads_per_block_per_step" not in int8["1024-6gb"]

    assert list(report["precisions"]["int4-quanto"]["cases"]) == ["1024-stream-6gb"]
    assert report["precisions"]["nf4-bnb"]["skipped"] == "bitsandbytes NF4 needs CUDA"
