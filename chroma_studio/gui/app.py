"""``chroma-studio`` with no arguments: the desktop app.

Only Qt and the app's own light modules load here; torch and diffusers wait until a run starts.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from chroma_studio.gui import theme
from chroma_studio.gui.xcb_libraries import check_xcb_libraries

logger = logging.getLogger(__name__)

APP_NAME = "Chroma Studio"
ORGANIZATION = "Chroma Studio"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chroma-studio")
    except PackageNotFoundError:
        return "dev"


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with the app's names (for QSettings), style, theme and style sheet."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        QCoreApplication.setOrganizationName(ORGANIZATION)
        QCoreApplication.setApplicationName(APP_NAME)
        QCoreApplication.setApplicationVersion(_version())
        QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv) if argv else [sys.argv[0] if sys.argv else "chroma-studio"])
    app.setStyle("Fusion")
    theme.apply_theme(app)
    theme.follow_system_theme(app)
    app.setStyleSheet(theme.style_sheet())
    return app


def _show_unexpected_error(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """Log an exception raised in a slot and show it; Qt would otherwise only print it."""
    text = "".join(traceback.format_exception(kind, error, trace))
    logger.error("unexpected error:\n%s", text)
    if QApplication.instance() is None or issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    box = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error", f"{kind.__name__}: {error}")
    box.setInformativeText("Your projects, captions and checkpoints are saved. The details below help to report it.")
    box.setDetailedText(text)
    box.open()


def main(argv: list[str] | None = None) -> int:
    problem = check_xcb_libraries(os.environ)
    if problem is not None:  # Qt would abort with a message that names neither the cause nor the cure
        sys.stderr.write(problem)
        return 1
    app = create_application(argv)
    sys.excepthook = _show_unexpected_error
    from chroma_studio.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
