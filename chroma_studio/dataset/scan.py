"""Find the images of a dataset: walk folders, read each image's header, pair it with its caption.

Only headers are read (see ``probe``), so a scan of thousands of images takes seconds. Whatever
cannot be used (a missing folder, a symlink loop, an unreadable or empty file, a decompression
bomb) becomes a ``ScanProblem``; the scan itself does not raise on bad input. A long scan can
report its progress and be stopped part-way (``progress`` and ``should_stop``); a stopped scan
returns what it found so far, marked ``cancelled``.

Conventions, shared with kohya and SimpleTuner:
- the caption of ``photo.jpg`` is ``photo.txt`` beside it;
- a folder named ``N_name`` (``10_mychar``) repeats its images N times per epoch; the nearest
  such folder between the image and the dataset folder (inclusive) decides, otherwise 1.
Hidden files and folders, ``__pycache__``, Chroma Studio's own cache folder and any folder
tagged as a cache (a ``CACHEDIR.TAG`` file, see https://bford.info/cachedir/) are skipped.

A symbolic link whose target lies outside the dataset folder (``photos -> ..``, a link into
another drive) is reported and not followed unless ``follow_links`` is set: a dropped folder
never pulls in images from elsewhere without a word. Links inside the folder are followed.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from chroma_studio.base.paths import cache_dir
from chroma_studio.dataset.probe import ProbeError, probe_image

log = logging.getLogger(__name__)

CAPTION_SUFFIX = ".txt"
CACHE_MARKER = "CACHEDIR.TAG"
SKIPPED_FOLDER_NAMES = frozenset({"__pycache__"})
# Formats always looked for; more come from the Pillow plugins installed (see image_extensions()).
BASE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
# Pillow formats that are not photographs, or that Pillow identifies but cannot decode by itself.
# fmt: off
NON_PHOTO_FORMATS = frozenset({
    "BUFR", "CUR", "DCX", "EPS", "FITS", "FLI", "FTEX", "GBR", "GRIB", "HDF5", "ICNS", "ICO", "IM",
    "IPTC", "MPEG", "MSP", "PCD", "PIXAR", "SPIDER", "SUN", "WMF", "XBM", "XPM",
})
# fmt: on
MAX_PLAUSIBLE_REPEATS = 500
PROGRESS_INTERVAL_S = 0.1  # progress is reported at most this often

ScanProgress = Callable[[int, Path], object]  # (image files examined so far, the folder being read)
_REPEATS = re.compile(r"^(\d+)_(.+)$")


@dataclass(frozen=True)
class ImageRecord:
    path: Path  # absolute
    width: int  # after EXIF orientation
    height: int
    caption_path: Path  # the sidecar caption beside the image; it may not exist
    folder: Path  # the dataset folder it was found under
    repeats: int = 1
    format: str = ""  # Pillow's format name

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class ScanProblem:
    path: Path
    message: str  # what is wrong and what to do, to follow the file name
    severity: str = "error"  # "error" | "warning"
    code: str = "unreadable"  # a stable identifier, e.g. "zero-byte", "symlink-loop"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ScanResult:
    images: list[ImageRecord] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    cancelled: bool = False  # stopped part-way: only the folders and files met before the stop are in

    @property
    def errors(self) -> list[ScanProblem]:
        return [p for p in self.problems if p.severity == "error"]


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case suffixes (with the dot) of the files treated as images on this machine."""
    Image.init()
    extra = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    extra -= {ext for ext, fmt in Image.registered_extensions().items() if fmt in NON_PHOTO_FORMATS}
    return BASE_EXTENSIONS | frozenset(extra)


def repeats_from_name(name: str) -> int | None:
    """``10_mychar`` -> 10; None when the name carries no repeat count."""
    match = _REPEATS.match(name)
    return int(match.group(1)) if match else None


def caption_path_for(image: Path) -> Path:
    return image.with_name(image.stem + CAPTION_SUFFIX)


def scan_folders(
    folders: Iterable[str | os.PathLike[str]],
    recursive: bool = True,
    *,
    progress: ScanProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    follow_links: bool = False,
) -> ScanResult:
    """Every usable image under ``folders`` (headers only), in a stable order, and every problem met.

    ``progress(files_done, current_folder)`` is called at most every ``PROGRESS_INTERVAL_S`` (and
    once at the end); ``should_stop()`` is asked between files, and when it turns true the scan
    returns at once with what it found so far and ``cancelled`` set.
    """
    result = ScanResult()
    tracker = _Tracker(progress, should_stop)
    seen_dirs: set[tuple[int, int]] = set()
    try:  # marked as seen, the app's cache is never walked into
        cache = cache_dir().stat()
        seen_dirs.add((cache.st_dev, cache.st_ino))
    except OSError:
        pass
    for folder in folders:
        root = Path(folder).expanduser().absolute()
        before = len(result.images)
        _Walker(root, recursive, seen_dirs, result, tracker, follow_links).walk()
        result.images[before:] = sorted(result.images[before:], key=lambda r: r.path.relative_to(root).parts)
        if tracker.stopped:
            break
    result.problems.sort(key=lambda p: str(p.path))
    result.cancelled = tracker.stopped
    tracker.finish()
    if result.cancelled:
        log.info("scan stopped after %d images with %d problems", len(result.images), len(result.problems))
    else:
        log.info("scanned %d images with %d problems", len(result.images), len(result.problems))
    return result


class _Tracker:
    """Counts the image files examined, reports the count now and then, and asks whether to stop."""

    def __init__(self, progress: ScanProgress | None, should_stop: Callable[[], bool] | None) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.done = 0
        self.stopped = False
        self.folder: Path | None = None
        self._reported = -1  # the count last reported
        self._last = float("-inf")  # when it was reported (time.monotonic)

    def stop_requested(self) -> bool:
        if not self.stopped and self.should_stop is not None and self.should_stop():
            self.stopped = True
        return self.stopped

    def file_done(self, folder: Path) -> None:
        self.done += 1
        self.folder = folder
        if self.progress is not None and time.monotonic() - self._last >= PROGRESS_INTERVAL_S:
            self._report(self.progress, folder)

    def finish(self) -> None:
        """Report the last count, if it was not reported yet."""
        if self.progress is not None and self.folder is not None and self._reported != self.done:
            self._report(self.progress, self.folder)

    def _report(self, progress: ScanProgress, folder: Path) -> None:
        self._last = time.monotonic()
        self._reported = self.done
        progress(self.done, folder)


class _Walker:
    """Walks one dataset folder into a shared result; ``seen_dirs`` keeps each real folder to one visit."""

    def __init__(
        self,
        root: Path,
        recursive: bool,
        seen_dirs: set[tuple[int, int]],
        result: ScanResult,
        tracker: _Tracker,
        follow_links: bool = False,
    ) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))
        self.follow_links = follow_links
        self.recursive = recursive
        self.seen_dirs = seen_dirs
        self.result = result
        self.tracker = tracker
        self.extensions = image_extensions()

    def problem(self, path: Path, code: str, message: str, severity: str = "error") -> None:
        self.result.problems.append(ScanProblem(path, message, severity, code))

    def walk(self) -> None:
        if not self.root.exists():
            self.problem(self.root, "folder-missing", "does not exist; check the folder path.")
            return
        if not self.root.is_dir():
            self.problem(self.root, "not-a-folder", "is not a folder; give the folder that holds the images.")
            return
        stack = [(self.root, (), self.repeats_for(self.root, 1))]
        while stack and not self.tracker.stop_requested():
            folder, ancestors, repeats = stack.pop()
            stack.extend(self.visit(folder, ancestors, repeats))

    def visit(
        self, folder: Path, ancestors: tuple[tuple[int, int], ...], repeats: int
    ) -> list[tuple[Path, tuple[tuple[int, int], ...], int]]:
        """Record the images in ``folder``; return its subfolders to visit."""
        try:
            stat = folder.stat()
            key = (stat.st_dev, stat.st_ino)
            if key in ancestors:
                self.problem(
                    folder,
                    "symlink-loop",
                    "links back to a folder that contains it (a loop); it was skipped. Remove or fix the link.",
                    "warning",
                )
                return []
            if key in self.seen_dirs:
                log.debug("%s was already scanned by another route", folder)
                return []
            self.seen_dirs.add(key)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.folder_error(folder, exc)
            return []
        names = {e.name for e in entries}
        if folder != self.root and CACHE_MARKER in names:
            log.debug("skipping cache folder %s", folder)
            return []
        lower_names = {name.lower(): name for name in sorted(names, reverse=True)}
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink() and not self.follow_links and self.leaves_the_folder(path):
                    continue
                is_dir = entry.is_dir()
            except OSError as exc:
                self.file_error(path, exc)
                continue
            if is_dir:
                if self.recursive and entry.name not in SKIPPED_FOLDER_NAMES:
                    subfolders.append((path, (*ancestors, key), self.repeats_for(path, repeats)))
            elif os.path.splitext(entry.name)[1].lower() in self.extensions:
                if self.tracker.stop_requested():
                    return []
                self.add_image(path, repeats, names, lower_names)
                self.tracker.file_done(folder)
        return subfolders[::-1]  # popped from a stack: reversed keeps alphabetical order

    def leaves_the_folder(self, link: Path) -> bool:
        """True (and reported) when ``link`` points outside the dataset folder."""
        target = Path(os.path.realpath(link))
        if target == self.real_root or self.real_root in target.parents or not target.exists():
            return False  # inside, or broken: a broken link is reported where the file is read
        self.problem(
            link,
            "link-outside",
            f"is a link to {target}, outside the dataset folder; it was not followed. Copy what it points to into "
            "the folder, or follow links (--follow-links, or Follow links in the app).",
            "warning",
        )
        return True

    def add_image(self, path: Path, repeats: int, names: set[str], lower_names: dict[str, str]) -> None:
        try:
            header = probe_image(path)
        except ProbeError as exc:
            self.problem(path, exc.code, exc.message, exc.severity)
            return
        caption_name = path.stem + CAPTION_SUFFIX
        if caption_name not in names:  # a caption spelled PHOTO.TXT still belongs to photo.jpg
            caption_name = lower_names.get(caption_name.lower(), caption_name)
        self.result.images.append(
            ImageRecord(
                path, header.width, header.height, path.with_name(caption_name), self.root, repeats, header.format
            )
        )

    def repeats_for(self, folder: Path, inherited: int) -> int:
        count = repeats_from_name(folder.name)
        if count is None:
            return inherited
        if count == 0:
            self.problem(
                folder,
                "repeats",
                f"is named like a repeat count of 0 ('{folder.name}'), which would never "
                "show its images; they count once. Rename it to 1_... or more.",
                "warning",
            )
            return 1
        if count > MAX_PLAUSIBLE_REPEATS:
            self.problem(
                folder,
                "repeats",
                f"repeats its images {count} times per epoch because its name starts with "
                f"'{count}_' (kohya's N_name convention); rename it if that is not meant.",
                "warning",
            )
        return count

    def folder_error(self, folder: Path, exc: OSError) -> None:
        if isinstance(exc, PermissionError):
            self.problem(
                folder,
                "permission-denied",
                "cannot be opened (permission denied); its images were skipped. Allow reading the folder.",
            )
        elif exc.errno == errno.ELOOP:
            self.problem(folder, "symlink-loop", "is a loop of symbolic links; it was skipped. Fix the link.")
        else:
            self.problem(folder, "unreadable", f"cannot be read ({exc.strerror or exc}); its images were skipped.")

    def file_error(self, path: Path, exc: OSError) -> None:
        if exc.errno == errno.ELOOP:
            self.problem(path, "symlink-loop", "is a loop of symbolic links; it was skipped. Fix or delete the link.")
        elif isinstance(exc, PermissionError):
            self.problem(path, "permission-denied", "cannot be read (permission denied); allow reading it.")
        else:
            self.problem(path, "unreadable", f"cannot be read ({exc.strerror or exc}); check it or remove it.")
