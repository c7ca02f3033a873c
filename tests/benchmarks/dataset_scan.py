"""Benchmark: scan and check a synthetic dataset; prints the figures as one JSON document.

    python tests/benchmarks/dataset_scan.py [--count 10000] [--folder DIR] [--captions-only]

Builds ``count`` small images (sizes 96-640 px, JPEG, PNG and WebP in turn, a caption for most)
in a temporary folder, then times ``scan_folders`` (headers only) and ``check_dataset`` (which
also decodes each image once and hashes its bytes). The files are freshly written, so they are
in the page cache: the figures measure the code, not the disk.

Before that, ``near_identical`` times the near-identical caption check on ``count`` templated
captions ("a photo of sks man wearing a {colour} {garment} in the {place}, {lighting}"), where
most captions have look-alikes; it runs first, so the peak memory of the process is its own. On
the first ``--subset`` captions its pairs are compared with those of comparing every pair.
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
import psutil
from PIL import Image

from chroma_studio.dataset.caption_checks import NEAR_IDENTICAL, near_identical_groups, words
from chroma_studio.dataset.checks import check_dataset
from chroma_studio.dataset.grouping import group_pairs
from chroma_studio.dataset.scan import scan_folders
from chroma_studio.dataset.similar_sets import similar_pairs

FORMATS = (("jpg", {"quality": 85}), ("png", {}), ("webp", {"quality": 80}))
_WORDS_TEXT = (
    "woman man child dog cat standing sitting running smiling laughing park street beach kitchen forest "
    "red blue green yellow black white jacket dress hat scarf morning evening night sunlight shadow rain "
    "snow window garden city bridge river close-up portrait profile looking holding cup book umbrella "
    "bicycle bench stairs wall brick wooden table lamp neon soft warm cold background blurred sharp wide"
)
WORDS = _WORDS_TEXT.split()
TEMPLATES = (
    "a photo of sks man wearing a {colour} {garment} in the {place}, {lighting}",
    "sks man in a {colour} {garment}, standing in the {place}, {lighting}",
    "close-up portrait of sks man wearing a {colour} {garment}, {place} in the background, {lighting}",
)
_SLOT_TEXT = {
    "colour": "red, blue, green, yellow, black, white, grey, navy, olive, beige, maroon, teal",
    "garment": "jacket, coat, shirt, sweater, hoodie, dress, suit, blazer, vest, cardigan, raincoat, parka",
    "place": "park, street, kitchen, forest, office, library, garden, harbour, cafe, subway station, living room, "
    "desert, mountain trail, city square, train platform",
    "lighting": "golden hour light, soft window light, harsh midday sun, overcast daylight, neon glow, candlelight, "
    "studio flash, blue hour, backlit by the sunset, dim lamplight",
}
SLOTS = {slot: text.split(", ") for slot, text in _SLOT_TEXT.items()}


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


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MB."""
    if sys.platform == "win32":
        return psutil.Process().memory_info().peak_wset / 2**20
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def templated_captions(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        rng.choice(TEMPLATES).format(**{slot: rng.choice(values) for slot, values in SLOTS.items()})
        for _ in range(count)
    ]


def every_pair(word_sets: list[frozenset[str]], threshold: float = NEAR_IDENTICAL) -> set[tuple[int, int]]:
    """The pairs of the check as it was: every pair of non-empty word sets compared."""
    pairs = set()
    for i, a in enumerate(word_sets):
        for j in range(i + 1, len(word_sets)):
            overlap = len(a & word_sets[j])
            if a and word_sets[j] and overlap >= threshold * (len(a) + len(word_sets[j]) - overlap) - 1e-9:
                pairs.add((i, j))
    return pairs


def near_identical(count: int, subset: int) -> dict:
    captions = templated_captions(count)
    rss_before = peak_rss_mb()
    groups, seconds = timed(lambda: near_identical_groups([frozenset(words(c)) for c in captions]))
    rss_peak = peak_rss_mb()
    word_sets = [frozenset(words(c)) for c in captions]
    pairs, pairs_seconds = timed(similar_pairs, word_sets, NEAR_IDENTICAL)
    sample = word_sets[:subset]
    exact, exact_seconds = timed(every_pair, sample)
    found = {pair for pair in pairs if pair[1] < subset}
    return {
        "captions": count,
        "distinct_captions": len(set(word_sets)),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(rss_peak, 1),
        "rss_before_mb": round(rss_before, 1),
        "groups": len(groups),
        "captions_in_groups": sum(len(g) for g in groups),
        "largest_group": max((len(g) for g in groups), default=0),
        "pairs": len(pairs),
        "pairs_seconds": round(pairs_seconds, 3),
        "subset": len(sample),
        "subset_pairs_every_pair": len(exact),
        "subset_pairs_found": len(found),
        "subset_every_pair_seconds": round(exact_seconds, 3),
        "recall": round(len(found & exact) / len(exact), 4) if exact else 1.0,
        "precision": round(len(found & exact) / len(found), 4) if found else 1.0,
        "subset_groups_match": near_identical_groups(sample) == group_pairs(len(sample), sorted(exact)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="images and captions (default 10000)")
    parser.add_argument("--folder", type=Path, help="build here and keep the files (default: a temporary folder)")
    parser.add_argument("--subset", type=int, default=2_000, help="captions compared pair by pair (default 2000)")
    parser.add_argument("--captions-only", action="store_true", help="only the near-identical caption check")
    args = parser.parse_args()

    captions = near_identical(args.count, args.subset)
    captions_ok = captions["recall"] >= 0.99 and captions["precision"] == 1.0 and captions["subset_groups_match"]
    if args.captions_only:
        figures = {"near_identical": captions, "cpus": os.cpu_count(), "python": platform.python_version()}
        print(json.dumps(figures, indent=2))
        return 0 if captions_ok else 1
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
        "near_identical": captions,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
    }
    print(json.dumps(figures, indent=2))
    return 0 if len(scan.images) == args.count and captions_ok else 1


if __name__ == "__main__":
    sys.exit(main())
