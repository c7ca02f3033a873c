"""What an image file says about itself in its header: format, size after EXIF orientation.

Nothing here decodes pixels. Pillow's ``Image.open`` is lazy: it parses the header (and for
JPEG every marker before the scan data, EXIF included) and stops. The one case that needs
care is PNG, whose ``eXIf`` chunk may follow the image data and whose ``getexif()`` would
decode the whole image to reach it; there the chunks are walked by seeking over their data.
"""

from __future__ import annotations

import logging
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

ORIENTATION_TAG = 0x0112
# EXIF orientations 5-8 turn the picture by 90 or 270 degrees: width and height swap.
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# Pillow refuses to open anything above twice its MAX_IMAGE_PIXELS (about 179 M pixels); the
# same limit applies here even where an application has switched Pillow's own check off.
BOMB_PIXELS = 2 * 89_478_485
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_PNG_CHUNKS = 100_000


@dataclass(frozen=True)
class ImageHeader:
    width: int  # after EXIF orientation
    height: int
    format: str
    orientation: int = 1


class ProbeError(Exception):
    """The file cannot be used; ``code`` says why (see ``scan.ScanProblem.code``)."""

    def __init__(self, code: str, message: str, severity: str = "error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.severity = severity


def probe_image(path: Path) -> ImageHeader:
    """Read the header of one image. Raises ProbeError with a message that says what to do."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _os_problem(path, exc) from None
    if size == 0:
        raise ProbeError("zero-byte", "is empty (0 bytes), probably an interrupted copy; copy it again or delete it.")
    try:
        with warnings.catch_warnings():
            # Sizes between Pillow's warning and error limits are reported as 'huge' by the check.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                fmt = im.format or ""
                if width * height > BOMB_PIXELS:
                    raise _bomb(width * height)
                orientation = read_orientation(im)
    except ProbeError:
        raise
    except Image.DecompressionBombError as exc:
        raise _bomb(_pixels_in_message(str(exc))) from None
    except UnidentifiedImageError:
        raise ProbeError(
            "not-an-image", "is not an image this computer can read; convert it to PNG or JPEG, or remove it."
        ) from None
    except OSError as exc:
        raise _os_problem(path, exc) from None
    except (SyntaxError, ValueError, struct.error, EOFError) as exc:  # malformed headers, raised by the plugins
        raise ProbeError("corrupt", f"has a damaged header ({exc}); re-export it or remove it.") from None
    if orientation in SWAPPING_ORIENTATIONS:
        width, height = height, width
    return ImageHeader(width, height, fmt, orientation)


def read_orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8), read without decoding; 1 when absent or unreadable."""
    try:
        if im.format == "PNG" and "exif" not in im.info:
            exif = _png_trailing_exif(im.fp)
            if exif is None:
                return 1
            parsed = Image.Exif()
            parsed.load(exif)
            value = parsed.get(ORIENTATION_TAG, 1)
        else:
            value = im.getexif().get(ORIENTATION_TAG, 1)
    except Exception as exc:  # a malformed EXIF block only costs the orientation, never the image
        log.debug("unreadable EXIF in %s: %s", getattr(im, "filename", "?"), exc)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_trailing_exif(fp: IO[bytes] | None) -> bytes | None:
    """The payload of an eXIf chunk placed after the image data, found by seeking chunk to chunk."""
    if fp is None:
        return None
    fp.seek(0)
    if fp.read(8) != _PNG_SIGNATURE:
        return None
    for _ in range(_MAX_PNG_CHUNKS):
        head = fp.read(8)
        if len(head) < 8:
            return None
        length, kind = struct.unpack(">I4s", head)
        if kind == b"eXIf":
            data = fp.read(length)
            return data if len(data) == length else None
        if kind == b"IEND":
            return None
        fp.seek(length + 4, 1)  # chunk data and CRC
    return None


def _bomb(pixels: int | None) -> ProbeError:
    claimed = f"{pixels:,} pixels" if pixels else "more pixels than is safe"
    return ProbeError(
        "decompression-bomb",
        f"declares {claimed}, above the {BOMB_PIXELS:,} that can be decoded safely (a decompression bomb or a "
        "damaged header); it was not decoded. Remove it, or downscale it with a tool you trust.",
    )


def _pixels_in_message(message: str) -> int | None:
    match = re.search(r"\((\d+) pixels\)", message)
    return int(match.group(1)) if match else None


def _os_problem(path: Path, exc: OSError) -> ProbeError:
    if isinstance(exc, PermissionError):
        return ProbeError("permission-denied", "cannot be read (permission denied); allow reading it or remove it.")
    if isinstance(exc, FileNotFoundError):
        if path.is_symlink():
            return ProbeError("broken-link", "is a link to a file that does not exist; fix or delete the link.")
        return ProbeError("unreadable", "disappeared while the folder was being read; scan again.")
    if exc.errno is None:  # Pillow reports damaged data as a bare OSError
        return ProbeError("corrupt", f"is damaged ({exc}); re-export it or remove it.")
    return ProbeError("unreadable", f"cannot be read ({exc.strerror or exc}); check the file or remove it.")
