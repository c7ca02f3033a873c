"""On an X11 desktop that lacks Qt's xcb libraries the app says what to install, instead of letting Qt abort."""

from __future__ import annotations

import pytest

from chroma_studio.gui import app
from chroma_studio.gui.xcb_libraries import XCB_LIBRARIES, check_xcb_libraries, uses_xcb

X11 = {"DISPLAY": ":0"}
LACKING = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"}


def load_all_but(missing: set[str]):
    return lambda soname: soname not in missing


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        (X11, "linux", True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux", True),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
        ({}, "linux", False),
        (X11, "darwin", False),
        (X11, "win32", False),
    ],
)
def test_only_an_x11_start_on_linux_is_checked(environ, platform, expected):
    assert uses_xcb(environ, platform) is expected


def test_missing_libraries_are_named_with_the_packages_that_bring_them():
    message = check_xcb_libraries(X11, load_all_but(LACKING), "linux")
    assert message is not None
    assert "libxcb-icccm.so.4" in message and "libxcb-keysyms.so.1" in message
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n" in message
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms\n" in message
    assert "libxcb-image" not in message


def test_a_package_that_brings_several_libraries_is_named_once():
    message = check_xcb_libraries(X11, load_all_but({"libxcb-shape.so.0", "libxcb-xkb.so.1"}), "linux")
    assert "sudo dnf install libxcb\n" in message


def test_nothing_to_say_when_every_library_loads_or_xcb_is_not_used():
    assert check_xcb_libraries(X11, load_all_but(set()), "linux") is None
    nothing_loads = load_all_but({library.soname for library in XCB_LIBRARIES})
    assert check_xcb_libraries({"QT_QPA_PLATFORM": "offscreen"}, nothing_loads, "linux") is None


def test_the_app_exits_with_the_message_before_qt_starts(monkeypatch, capsys):
    monkeypatch.setattr(app, "check_xcb_libraries", lambda environ: "install libxcb-icccm4\n")
    monkeypatch.setattr(app, "create_application", lambda argv: pytest.fail("Qt must not start"))
    assert app.main(["chroma-studio"]) == 1
    assert capsys.readouterr().err == "install libxcb-icccm4\n"
