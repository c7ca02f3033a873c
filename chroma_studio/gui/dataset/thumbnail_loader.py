"""``ThumbnailLoader``: thumbnails decoded on a thread pool, on demand, newest request first.

The grid's delegate calls ``pixmap(path)`` for each item it paints: a cached pixmap comes back
at once; otherwise the path is queued (once, however often it is painted) and None comes back,
so the delegate draws a placeholder. Workers hand back a ``QImage``; the ``QPixmap`` is made on
the GUI thread and kept in a memory cache of bounded size, and ``thumbnail_changed`` tells the view
to repaint that item. Requests that have not started are dropped by ``forget_queued()`` (after a
scroll) and by ``clear()`` (when the folders change); results of an older ``clear()`` generation
are ignored.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from chroma_studio.gui.dataset.thumbnail_cache import THUMBNAIL_PX, ThumbnailError, load_thumbnail, thumbnail_folder

log = logging.getLogger(__name__)

MEMORY_BUDGET_BYTES = 160 * 2**20


@dataclass
class _Request:
    path: str
    generation: int
    started: bool = False


class _DecodeRelay(QObject):
    """Carries results from the workers to the GUI thread (a queued connection)."""

    # Paths travel as Python objects: a str signal argument becomes a QString, which drops the lone
    # surrogates of a file name that is not UTF-8, so the path would no longer match.
    decoded = Signal(int, object, object)  # generation, path (str), QImage or None
    failed = Signal(int, object, str)  # generation, path (str), reason


class ThumbnailLoader(QObject):
    thumbnail_changed = Signal(object)  # this path's (str) thumbnail is now in memory, or known to fail

    def __init__(
        self,
        px: int = THUMBNAIL_PX,
        cache_folder: Path | None = None,
        threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.px = px
        self.cache_folder = thumbnail_folder() if cache_folder is None else cache_folder
        self._pool = QThreadPool(self)  # created before the relay, so it is destroyed (and waited for) first
        # Leave a core to the GUI thread: on a small machine a busy pool makes scrolling stutter.
        self._pool.setMaxThreadCount(threads or max(1, QThread.idealThreadCount() - 1))
        self._pool.setThreadPriority(QThread.Priority.LowPriority)
        self._relay = _DecodeRelay(self)
        self._relay.decoded.connect(self._on_relay_decoded)
        self._relay.failed.connect(self._on_relay_failed)
        self._generation = 0
        self._priority = itertools.count()
        self._pending: dict[str, _Request] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._bytes = 0
        self._failures: dict[str, str] = {}

    # -- for the painter -------------------------------------------------------------------------
    def pixmap(self, path: str) -> QPixmap | None:
        """The thumbnail of ``path`` if it is ready; otherwise None, and it is requested."""
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._failures:
            self.request(path)
        return None

    def has_thumbnail(self, path: str) -> bool:
        """Whether the thumbnail of ``path`` is in memory now (asks for nothing)."""
        return path in self._pixmaps

    def failure(self, path: str) -> str:
        """Why ``path`` has no thumbnail ("" unless its decoding failed)."""
        return self._failures.get(path, "")

    def request(self, path: str) -> None:
        if path in self._pending or path in self._pixmaps:
            return
        request = _Request(path, self._generation)
        self._pending[path] = request
        # Later requests run first: they are the items on screen now.
        self._pool.start(lambda: self._decode(request), min(next(self._priority), 2**31 - 1))

    # -- housekeeping ----------------------------------------------------------------------------
    def pending_count(self) -> int:
        return len(self._pending)

    def forget_queued(self) -> None:
        """Drop the requests that have not started (the items scrolled out of view); visible ones are
        asked for again when they are painted."""
        self._pool.clear()
        self._pending = {path: r for path, r in self._pending.items() if r.started}

    def clear(self) -> None:
        """Cancel every request and forget every thumbnail (the folders changed)."""
        self._generation += 1
        self._pool.clear()
        self._pending.clear()
        self._pixmaps.clear()
        self._bytes = 0
        self._failures.clear()

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until every queued and running decode has ended; False if ``msecs`` passed first."""
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        self.clear()
        self._pool.waitForDone()

    # -- workers -----------------------------------------------------------------------------------
    def _decode(self, request: _Request) -> None:
        """Runs on a pool thread."""
        request.started = True
        if request.generation != self._generation:
            return
        try:
            image = load_thumbnail(request.path, self.px, self.cache_folder)
        except ThumbnailError as exc:
            self._relay.failed.emit(request.generation, request.path, str(exc))
            return
        except Exception as exc:  # never lose a worker silently: log it and mark the thumbnail failed
            log.exception("thumbnail of %s failed", request.path)
            self._relay.failed.emit(request.generation, request.path, str(exc))
            return
        self._relay.decoded.emit(request.generation, request.path, image)

    def _on_relay_decoded(self, generation: int, path: str, image: QImage) -> None:
        if generation != self._generation:
            return
        self._pending.pop(path, None)
        pixmap = QPixmap.fromImage(image)
        self._pixmaps[path] = pixmap
        self._bytes += _size_of(pixmap)
        while self._bytes > MEMORY_BUDGET_BYTES and len(self._pixmaps) > 1:
            _, evicted = self._pixmaps.popitem(last=False)
            self._bytes -= _size_of(evicted)
        self.thumbnail_changed.emit(path)

    def _on_relay_failed(self, generation: int, path: str, reason: str) -> None:
        if generation != self._generation:
            return
        self._pending.pop(path, None)
        self._failures[path] = reason
        log.debug("no thumbnail for %s: %s", path, reason)
        self.thumbnail_changed.emit(path)


def _size_of(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4
