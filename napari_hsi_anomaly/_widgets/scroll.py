"""Docks that scroll inside themselves, so the window's minimum height stays small (fits 1080 px)."""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


def scroll_dock(widget: QWidget, parts: Sequence[QWidget], margins: int = 0) -> QWidget:
    """Lay ``parts`` out top to bottom inside a vertical scroll area that fills ``widget``.

    The dock then asks for little height (the scroll area's minimum) and its content scrolls when the
    dock is shorter than it; no horizontal scroll bar (the content follows the dock's width).
    Returns the content widget.
    """
    content = QWidget()
    inner = QVBoxLayout(content)
    inner.setContentsMargins(margins, margins, margins, margins)
    inner.setSpacing(4)
    for part in parts:
        inner.addWidget(part)
    inner.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    scroll.setMinimumHeight(120)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return content


def fit_label_height(label: QWidget, width: int = 0) -> None:
    """Give a word-wrapped label the height its text needs at ``width`` (or its own width): a scroll
    area's content does not ask its labels for height-for-width, so they would be squeezed."""
    w = max(width or label.width(), 200)
    h = label.heightForWidth(w)
    label.setMinimumHeight(max(h, 0))
