"""Light and dark themes that follow the system, and the app's style sheet.

The Fusion style with a palette picked from the system's colour scheme looks the same on every
platform; the style sheet (``resources/style/app.qss``) refers to palette roles, so it suits both.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from chroma_studio.base.paths import resources_dir

logger = logging.getLogger(__name__)

ACCENT = QColor(124, 77, 255)


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def make_palette(dark: bool) -> QPalette:
    palette = QPalette()
    role = QPalette.ColorRole
    if dark:
        colors = {
            role.Window: QColor(37, 38, 43),
            role.WindowText: QColor(230, 230, 235),
            role.Base: QColor(28, 29, 33),
            role.AlternateBase: QColor(44, 45, 51),
            role.ToolTipBase: QColor(50, 51, 58),
            role.ToolTipText: QColor(235, 235, 240),
            role.Text: QColor(230, 230, 235),
            role.PlaceholderText: QColor(140, 140, 150),
            role.Button: QColor(50, 51, 58),
            role.ButtonText: QColor(230, 230, 235),
            role.BrightText: QColor(255, 90, 90),
            role.Mid: QColor(70, 71, 80),
            role.Light: QColor(70, 72, 80),
            role.Midlight: QColor(58, 60, 67),
            role.Dark: QColor(20, 20, 24),
            role.Shadow: QColor(0, 0, 0),
            role.Link: QColor(170, 145, 255),
        }
    else:
        colors = {
            role.Window: QColor(246, 246, 249),
            role.WindowText: QColor(28, 28, 33),
            role.Base: QColor(255, 255, 255),
            role.AlternateBase: QColor(240, 240, 245),
            role.ToolTipBase: QColor(255, 255, 240),
            role.ToolTipText: QColor(28, 28, 33),
            role.Text: QColor(28, 28, 33),
            role.PlaceholderText: QColor(130, 130, 140),
            role.Button: QColor(236, 236, 241),
            role.ButtonText: QColor(28, 28, 33),
            role.BrightText: QColor(200, 30, 30),
            role.Mid: QColor(200, 200, 208),
            role.Light: QColor(255, 255, 255),
            role.Midlight: QColor(230, 230, 236),
            role.Dark: QColor(160, 160, 170),
            role.Shadow: QColor(90, 90, 100),
            role.Link: QColor(98, 56, 220),
        }
    for key, color in colors.items():
        palette.setColor(key, color)
    palette.setColor(role.Highlight, ACCENT)
    palette.setColor(role.HighlightedText, QColor(255, 255, 255))
    disabled = QPalette.ColorGroup.Disabled
    muted = QColor(120, 120, 128) if dark else QColor(150, 150, 158)
    for key in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(disabled, key, muted)
    return palette


def style_sheet() -> str:
    path = resources_dir() / "style" / "app.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        logger.warning("style sheet not loaded: %s", exc)
        return ""


def apply_theme(app: QApplication, dark: bool | None = None) -> bool:
    """Apply the light or dark palette (the system's choice by default); returns whether it is dark."""
    dark = system_prefers_dark() if dark is None else dark
    app.setPalette(make_palette(dark))
    app.setProperty("darkTheme", dark)
    return dark


def follow_system_theme(app: QApplication) -> None:
    """Switch palettes when the system switches between light and dark."""
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda scheme: apply_theme(app))
