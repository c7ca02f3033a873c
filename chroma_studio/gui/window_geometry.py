"""Where the main window opens: a size that fits the screen, the place it had last time if that is
still on a connected screen.

Laptops give as little as 1280x720 logical pixels (1920x1080 at 150 %), less the task bar; a window
restored from a larger monitor, or from a monitor no longer connected, is brought back within reach.
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize
from PySide6.QtGui import QGuiApplication, QScreen

DEFAULT_SIZE = QSize(1280, 820)
# Room for the title bar and borders the window manager adds around the window (unknown before it shows).
FRAME_ALLOWANCE = QMargins(8, 32, 8, 8)


def fit_rect(wanted: QRect, available: QRect, frame: QMargins = FRAME_ALLOWANCE, minimum: QSize = QSize(0, 0)) -> QRect:
    """``wanted`` (the window without its frame) made small enough for ``available`` and moved inside it;
    never below ``minimum``, the size the window's layout will insist on."""
    room = available.marginsRemoved(frame)
    size = wanted.size().expandedTo(minimum).boundedTo(room.size())
    left = min(max(wanted.left(), room.left()), room.right() - size.width() + 1)
    top = min(max(wanted.top(), room.top()), room.bottom() - size.height() + 1)
    return QRect(QPoint(left, top), size)


def centered_rect(
    size: QSize, available: QRect, frame: QMargins = FRAME_ALLOWANCE, minimum: QSize = QSize(0, 0)
) -> QRect:
    """A window of ``size`` (or less, if the screen is smaller) in the middle of ``available``."""
    rect = QRect(QPoint(0, 0), size.expandedTo(minimum).boundedTo(available.marginsRemoved(frame).size()))
    rect.moveCenter(available.center())
    return fit_rect(rect, available, frame, minimum)


def screen_for(rect: QRect | None) -> QScreen:
    """The connected screen that shows the middle of ``rect``, or the primary screen."""
    screen = QGuiApplication.screenAt(rect.center()) if rect is not None and rect.isValid() else None
    return screen or QGuiApplication.primaryScreen()


def initial_geometry(remembered: QRect | None, minimum: QSize = QSize(0, 0)) -> QRect:
    """Where the window opens: the remembered place clamped to a connected screen, else centred."""
    available = screen_for(remembered).availableGeometry()
    if remembered is None or not remembered.isValid():
        return centered_rect(DEFAULT_SIZE, available, minimum=minimum)
    return fit_rect(remembered, available, minimum=minimum)
