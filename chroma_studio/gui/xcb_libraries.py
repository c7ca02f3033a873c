"""Before the app starts on an X11 desktop: are the system libraries Qt's xcb platform plugin needs there?

Without them Qt aborts with "Could not load the Qt platform plugin "xcb" … no Qt platform plugin could be
initialized", which names neither the cause nor the cure. These libraries come from the desktop, not with
Qt; a minimal install (a server image, WSL, some slim distributions) lacks a few of them. The list is the
xcb plugin's dependencies (``ldd plugins/platforms/libqxcb.so`` and ``lib/libQt6XcbQpa.so.6``).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Mapping
from typing import NamedTuple


class XcbLibrary(NamedTuple):
    soname: str
    apt: str  # Debian, Ubuntu, Mint
    dnf: str  # Fedora, RHEL, openSUSE names differ a little but are close


XCB_LIBRARIES = (
    XcbLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    XcbLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    XcbLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    XcbLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    XcbLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    XcbLibrary("libxcb-util.so.1", "libxcb-util1", "xcb-util"),
    XcbLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    XcbLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    XcbLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    XcbLibrary("libxcb-shm.so.0", "libxcb-shm0", "libxcb"),
    XcbLibrary("libxcb-sync.so.1", "libxcb-sync1", "libxcb"),
    XcbLibrary("libxcb-xfixes.so.0", "libxcb-xfixes0", "libxcb"),
    XcbLibrary("libxcb-render.so.0", "libxcb-render0", "libxcb"),
    XcbLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    XcbLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    XcbLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    XcbLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    XcbLibrary("libX11.so.6", "libx11-6", "libX11"),
)


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will pick its xcb plugin: Linux, an X display, no Wayland one, no other platform asked for."""
    if not platform.startswith("linux"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if asked:
        return asked == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def can_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(load: Callable[[str], bool] = can_load) -> list[XcbLibrary]:
    return [library for library in XCB_LIBRARIES if not load(library.soname)]


def install_message(missing: list[XcbLibrary]) -> str:
    """What to tell the user: the missing libraries and the commands that install them."""
    apt = " ".join(dict.fromkeys(library.apt for library in missing))
    dnf = " ".join(dict.fromkeys(library.dnf for library in missing))
    names = ", ".join(library.soname for library in missing)
    return (
        "Chroma Studio cannot open its window: this X11 desktop lacks libraries Qt needs to draw on it "
        f"({names}).\n"
        "Install them, then start Chroma Studio again:\n"
        f"  Debian, Ubuntu, Mint:  sudo apt install {apt}\n"
        f"  Fedora, RHEL:          sudo dnf install {dnf}\n"
    )


def check_xcb_libraries(
    environ: Mapping[str, str], load: Callable[[str], bool] = can_load, platform: str = sys.platform
) -> str | None:
    """The message to show instead of starting, or None when the window can open (or xcb is not used)."""
    if not uses_xcb(environ, platform):
        return None
    missing = missing_libraries(load)
    return install_message(missing) if missing else None
