"""``check_dataset``: everything that would spoil or waste a training run, found before it starts.

The check only reads. Beyond the scan (headers), it decodes each image once, one at a time and
at a reduced scale where the format allows, to find damaged files and to compute the
perceptual hash, and it hashes every file's bytes to find exact copies.

The rules per image (size, caption, damage) are those of ``rules``, shared with the Dataset page
and with training: too small to use (error), below the training resolution (warning), huge
(warning); decompression bombs (declared size above ``probe.BOMB_PIXELS``) are never decoded.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PIL import Image

from chroma_studio.dataset.buckets import bucket_histogram
from chroma_studio.dataset.caption_checks import check_captions
from chroma_studio.dataset.findings import CheckReport, Finding, name_list, sort_findings
from chroma_studio.dataset.fingerprints import dhash, file_sha256, near_duplicate_groups
from chroma_studio.dataset.images import load_check_thumbnail, verify_image
from chroma_studio.dataset.rules import decode_finding, size_findings
from chroma_studio.dataset.scan import ImageRecord, ScanProblem, ScanResult, scan_folders
from chroma_studio.dataset.sizes import HUGE_PIXELS, TOO_SMALL_UPSCALE, is_huge

__all__ = ["HUGE_PIXELS", "TOO_SMALL_UPSCALE", "CheckReport", "Finding", "check_dataset"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], object]  # (images done, images in all)


def check_dataset(
    folders: Iterable[str | os.PathLike[str]],
    resolution: int = 1024,
    trigger_word: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    follow_links: bool = False,
) -> CheckReport:
    """Scan and check ``folders`` for training at ``resolution``. Never modifies anything.

    ``progress(done, total)`` is called after each image; when ``should_stop()`` turns true the
    check ends early with ``report.cancelled`` set and the findings so far.
    """
    roots = [Path(folder).expanduser().absolute() for folder in folders]
    trigger_word = (trigger_word or "").strip() or None
    report = CheckReport(roots, resolution, trigger_word)
    scan = scan_folders(roots, should_stop=should_stop, follow_links=follow_links)
    report.images = scan.images
    report.cancelled = scan.cancelled
    findings = [_from_scan_problem(problem) for problem in scan.problems]
    if not scan.cancelled:  # folders the stopped scan never reached are not known to be empty
        findings += _folders_without_images(roots, scan)
    findings += _repeat_notes(scan.images)
    digests: dict[int, str] = {}
    hashes: dict[int, bytes] = {}
    for index, record in enumerate(scan.images):
        if report.cancelled or (should_stop is not None and should_stop()):
            report.cancelled = True
            break
        findings += size_findings(record, resolution)
        findings += _read_image(index, record, digests, hashes)
        if progress is not None:
            progress(index + 1, len(scan.images))
    if not report.cancelled:
        findings += _duplicate_findings(scan.images, digests, hashes)
        caption_findings, report.captions = check_captions(scan.images, trigger_word)
        findings += caption_findings
    report.buckets = bucket_histogram(scan.images, resolution)
    report.findings = sort_findings(findings)
    log.info("checked %d images: %d findings", len(scan.images), len(report.findings))
    return report


def _from_scan_problem(problem: ScanProblem) -> Finding:
    return Finding(problem.path, problem.code, problem.message, problem.severity)


def _folders_without_images(roots: Sequence[Path], scan: ScanResult) -> list[Finding]:
    unusable = {p.path for p in scan.problems if p.code in ("folder-missing", "not-a-folder", "permission-denied")}
    findings = []
    for root in roots:
        if root in unusable or any(record.path.is_relative_to(root) for record in scan.images):
            continue
        findings.append(
            Finding(
                root,
                "no-images",
                "has no images that can be used (JPEG, PNG, WebP, BMP, TIFF and the other formats Pillow reads); add "
                "images or choose another folder.",
                "error",
            )
        )
    return findings


def _repeat_notes(records: Sequence[ImageRecord]) -> list[Finding]:
    counts: dict[tuple[Path, int], int] = {}
    for record in records:
        if record.repeats > 1:
            key = (record.path.parent, record.repeats)
            counts[key] = counts.get(key, 0) + 1
    return [
        Finding(
            folder,
            "repeats",
            f"holds {n} images that each count {repeats} times per epoch (from the folder name).",
            "info",
        )
        for (folder, repeats), n in counts.items()
    ]


def _read_image(index: int, record: ImageRecord, digests: dict[int, str], hashes: dict[int, bytes]) -> list[Finding]:
    """Hash the bytes and decode the image once; a file that fails either becomes a finding.

    Huge images that cannot be decoded at a reduced scale (anything but JPEG) are only verified
    (PNG checks every chunk's checksum), so the check's memory stays bounded; they get no
    perceptual hash.
    """
    try:
        digests[index] = file_sha256(record.path)
    except OSError as exc:
        message = f"cannot be read ({exc.strerror or exc}); check it or remove it."
        return [Finding(record.path, "unreadable", message, "error")]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # reported as "huge" instead
            if is_huge(record.width, record.height) and record.format != "JPEG":
                verify_image(record.path)
            else:
                hashes[index] = dhash(load_check_thumbnail(record.path))
    except Exception as exc:  # a damaged file can fail inside any Pillow plugin, in any way
        log.debug("cannot decode %s", record.path, exc_info=True)
        return [decode_finding(record.path, exc)]
    return []


def _duplicate_findings(
    records: Sequence[ImageRecord], digests: dict[int, str], hashes: dict[int, bytes]
) -> list[Finding]:
    findings = []
    by_digest: dict[str, list[int]] = {}
    for index, digest in digests.items():
        by_digest.setdefault(digest, []).append(index)
    for group in by_digest.values():
        if len(group) > 1:
            first, others = records[group[0]], [records[i].path for i in group[1:]]
            findings.append(
                Finding(
                    first.path,
                    "exact-duplicate",
                    f"has exactly the same content as {name_list(others)}; each "
                    "copy is trained again every epoch. Keep one.",
                    "warning",
                    tuple(others),
                )
            )
    # One image per exact-duplicate group, so copies are not reported twice.
    representatives = [group[0] for group in by_digest.values() if group[0] in hashes]
    representatives.sort()
    for group in near_duplicate_groups([hashes[i] for i in representatives]):
        first, others = records[representatives[group[0]]], [records[representatives[i]].path for i in group[1:]]
        findings.append(
            Finding(
                first.path,
                "near-duplicate",
                f"looks nearly the same as {name_list(others)}; near-duplicates make "
                "the LoRA copy that one picture. Keep the best one unless the difference is what it should "
                "learn.",
                "warning",
                tuple(others),
            )
        )
    return findings
