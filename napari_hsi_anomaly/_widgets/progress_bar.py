"""A progress bar that never repaints synchronously.

``QProgressBar.setValue`` calls ``repaint()``, which flushes every pending paint of the window at once,
the napari canvas (an OpenGL widget) included: 100+ ms of GUI-thread time per progress step with
software OpenGL. This bar stores the value and asks for a paint at the next event-loop turn (``update``).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import QSizePolicy, QWidget


class LightProgressBar(QWidget):
    """Determinate (``setRange(0, n)``) or busy (``setRange(0, 0)``) bar with a line of text."""

    def __init__(self, parent: QWidget | None = None, height: int = 16) -> None:
        super().__init__(parent)
        self._min, self._max, self._value, self._text = 0, 1, 0, ""
        self.setFixedHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def setRange(self, lo: int, hi: int) -> None:  # noqa: N802 - QProgressBar's API
        self._min, self._max = int(lo), int(hi)
        self.update()

    def setValue(self, value: int) -> None:  # noqa: N802
        self._value = int(value)
        self.update()

    def setFormat(self, text: str) -> None:  # noqa: N802
        self._text = str(text)
        self.update()

    def value(self) -> int:
        return self._value

    def maximum(self) -> int:
        return self._max

    def format(self) -> str:
        return self._text

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(pal.mid().color())
        p.setBrush(pal.base().color())
        p.drawRoundedRect(rect, 3, 3)
        span = self._max - self._min
        if span > 0:
            frac = min(1.0, max(0.0, (self._value - self._min) / span))
            fill = QRectF(rect.x(), rect.y(), rect.width() * frac, rect.height())
        elif self._text:  # busy: a full, dimmed bar
            fill = QRectF(rect)
        else:
            fill = QRectF()
        if fill.width() > 0:
            color = QColor(pal.highlight().color())
            if span <= 0:
                color.setAlpha(90)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(fill, 3, 3)
        if self._text:
            p.setPen(pal.text().color())
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), self._text)
        p.end()
