"""Live training-loss curve: a napari-themed matplotlib canvas, updated in place and throttled."""

from __future__ import annotations

import math
import time
from typing import Any

from napari_matplotlib.base import BaseNapariMPLWidget
from qtpy.QtCore import QTimer

TRAIN_COLOR = "#4fc3f7"
VAL_COLOR = "#ffb000"


class LossPlot(BaseNapariMPLWidget):
    """Training loss (epoch running mean) per step and validation loss per epoch, x in epochs."""

    def __init__(self, napari_viewer: Any, min_interval_s: float = 0.25, height_px: int = 170) -> None:
        super().__init__(napari_viewer)
        self.toolbar.hide()  # zoom/pan is not worth the dock space here
        self.layout().setContentsMargins(0, 0, 0, 0)
        self.canvas.setFixedHeight(height_px)
        self.add_single_axes()
        ax = self.axes
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("loss (MSE)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.25)
        (self.train_line,) = ax.plot([], [], color=TRAIN_COLOR, lw=1.2, label="train")
        (self.val_line,) = ax.plot([], [], color=VAL_COLOR, lw=1.0, marker="o", ms=3, label="validation")
        self._legend = ax.legend(fontsize=7, loc="upper right", frameon=False)
        self._min_interval = min_interval_s
        self._last_draw = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self.epochs: int | None = None
        self.reset()

    def reset(self, epochs: int | None = None) -> None:
        """Clear both curves (before a new training run); ``epochs`` fixes the x range."""
        self.epochs = epochs
        self.xs: list[float] = []
        self.losses: list[float] = []
        self.val_xs: list[float] = []
        self.val_losses: list[float] = []
        self.draws = 0
        self.train_line.set_data([], [])
        self.val_line.set_data([], [])
        self.redraw()

    def add(self, x: float, loss: float | None, val_loss: float | None = None) -> None:
        """Append a point (``val_loss`` at epoch ends) and schedule a throttled redraw."""
        if loss is not None and math.isfinite(loss) and loss > 0:
            self.xs.append(float(x))
            self.losses.append(float(loss))
        if val_loss is not None and math.isfinite(val_loss) and val_loss > 0:
            self.val_xs.append(float(x))
            self.val_losses.append(float(val_loss))
        self.request_draw()

    def request_draw(self) -> None:
        """Redraw now if the last draw is old enough, else once when the interval has passed."""
        wait = self._min_interval - (time.monotonic() - self._last_draw)
        if wait <= 0:
            self.redraw()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def redraw(self) -> None:
        """Push the data to the lines, rescale and ``draw_idle``."""
        self._timer.stop()
        self.train_line.set_data(self.xs, self.losses)
        self.val_line.set_data(self.val_xs, self.val_losses)
        ax = self.axes
        ys = self.losses + self.val_losses
        if ys:
            lo, hi = min(ys), max(ys)
            ax.set_ylim(lo / 1.3, hi * 1.3 if hi > lo else lo * 2)
            xs = self.xs + self.val_xs
            ax.set_xlim(0, max(1.0, max(xs), self.epochs or 0))
        else:
            ax.set_xlim(0, self.epochs or 1)
            ax.set_ylim(1e-3, 1)
        self._last_draw = time.monotonic()
        self.draws += 1
        self.canvas.draw_idle()
