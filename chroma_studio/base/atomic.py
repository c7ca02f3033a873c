"""Atomic writes: a crash or a full disk leaves either the old file (or folder) or the new one, never half."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` to produce the file beside ``path``, fsync it, then rename it over ``path``.

    On any failure the temporary file is removed and ``path`` keeps its previous content. The new
    file keeps the permissions of the one it replaces, or gets the usual ones (0666 less the
    umask) when it is new: a temporary file starts private (0600), which would otherwise make a
    user's caption or LoRA unreadable to other programs and users.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8", newline: str | None = None) -> None:
    """Write text atomically. ``newline`` as in ``open()``: "" writes line endings exactly as given."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding=encoding, newline=newline) as handle:
            handle.write(text)

    write_atomic(path, write)


def publish_folder(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """fsync the files of the finished folder ``tmp`` and give them the usual mode, then rename it to
    ``final`` (swapping out an old one).

    When ``final`` exists, it is first renamed to ``.old.<name>`` beside it and removed only once
    ``tmp`` is in its place: a crash in between leaves that copy for the next save to put back.
    """
    tmp, final = Path(tmp), Path(final)
    mode = usual_mode()
    for path in tmp.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(path, mode)  # writers such as safetensors' make their files private (0600)
    if final.exists():  # saving the same folder twice: swap, never leave a gap
        old = final.parent / f".old.{final.name}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return usual_mode()


def usual_mode(folder: bool = False) -> int:
    """What ``open()`` or ``mkdir()`` would give under the current umask (0644 / 0755 typically)."""
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
