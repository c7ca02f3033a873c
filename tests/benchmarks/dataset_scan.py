"""Benchmark: scan and check a synthetic dataset; prints the figures as one JSON document.

    python tests/benchmarks/dataset_scan.py [--count 10000] [--folder DIR]

Builds ``count`` small images (sizes 96-640 px, JPEG, PNG and WebP in turn, a caption for most)
in a temporary folder, then times ``scan_folders`` (headers only) and ``check_dataset`` (which
also decodes each image once and hashes its bytes). The files are freshly written, so they are
in the page cache: the figures measure the code, not the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from chroma_studio.dataset.checks import check_dataset
from chroma_studio.dataset.scan import scan_folders

FORMATS = (("jpg", {"quality": 85}), ("png", {}), ("webp", {"quality": 80}))
_WORDS_TEXT = (
    "woman man child dog cat standing sitting running smiling laughing park street beach kitchen forest "
    "red blue green yellow black white jacket dress hat scarf morning evening night sunlight shadow rain "
    "snow window garden city bridge river close-up portrait profile looking holding cup book umbrella "
    "bicycle bench stairs wall brick wooden table lamp neon soft warm cold background blurred sharp wide"
)
WORDS = _WORDS_TEXT.split()


def build_dataset(folder: Path, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    words = random.Random(seed)
    for index in range(count):
        width, height = (int(side) for side in rng.integers(96, 641, size=2))
        grid = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(grid).resize((width, height), Image.Resampling.BILINEAR)
        extension, options = FORMATS[index % len(FORMATS)]
        subfolder = folder / f"{index // 1000:02d}"
        subfolder.mkdir(parents=True, exist_ok=True)
        path = subfolder / f"img{index:05d}.{extension}"
        image.save(path, **options)
        if index % 10:  # every tenth image has no caption
            caption = "ohwx, " + " ".join(words.sample(WORDS, words.randint(6, 24)))
            path.with_suffix(".txt").write_text(caption, encoding="utf-8")


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="images to build (default 10000)")
    parser.add_argument("--folder", type=Path, help="build here and keep the files (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chroma-studio-scan-bench-") as scratch:
        folder = args.folder or Path(scratch) / "dataset"
        _, build_seconds = timed(build_dataset, folder, args.count)
        scan, scan_seconds = timed(scan_folders, [folder])
        report, check_seconds = timed(check_dataset, [folder], resolution=512, trigger_word="ohwx")
    per_thousand = 1000 / max(1, len(scan.images))
    figures = {
        "images": len(scan.images),
        "scan_seconds": round(scan_seconds, 3),
        "scan_seconds_per_1000": round(scan_seconds * per_thousand, 3),
        "check_seconds": round(check_seconds, 3),
        "check_seconds_per_1000": round(check_seconds * per_thousand, 3),
        "build_seconds": round(build_seconds, 1),
        "scan_problems": len(scan.problems),
        "findings": dict(sorted(Counter(f.code for f in report.findings).items())),
        "formats": dict(sorted(Counter(r.format for r in scan.images).items())),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
    }
    print(json.dumps(figures, indent=2))
    return 0 if len(scan.images) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
