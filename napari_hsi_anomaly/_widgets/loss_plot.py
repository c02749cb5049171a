"""Live training-loss curve on the shared themed canvas (``plots.ThemedCanvas``), updated in place
and throttled; hidden until the first training starts (no empty placeholder plot)."""

from __future__ import annotations

import math
import time
from typing import Any

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from qtpy.QtCore import QTimer

from napari_hsi_anomaly._widgets.plots import ThemedCanvas

TRAIN_COLOR = "#4fc3f7"
VAL_COLOR = "#ffb000"


class LossPlot(ThemedCanvas):
    """Training loss (epoch running mean) per step and validation loss per epoch, x in epochs."""

    def __init__(
        self, theme: str | None = "dark", min_interval_s: float = 0.25, height_px: int = 160
    ) -> None:
        super().__init__(height_px, theme)
        ax = self.ax
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (MSE)")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        self.margins = (60, 10, 10, 34)  # room for "0.02"-style ticks and the axis labels
        (self.train_line,) = ax.plot([], [], color=TRAIN_COLOR, lw=1.2, label="train")
        (self.val_line,) = ax.plot([], [], color=VAL_COLOR, lw=1.0, marker="o", ms=3, label="validation")
        self.style_legend(ax.legend(fontsize=7, loc="upper right"))
        self._min_interval = min_interval_s
        self._last_draw = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)
        self.epochs: int | None = None
        self._span: tuple = ()
        self.reset()

    def draw(self) -> None:
        """Full draw; nothing when the dock was closed before a scheduled draw ran."""
        try:
            super().draw()
        except RuntimeError as exc:  # "wrapped C/C++ object ... has been deleted"
            if "deleted" not in str(exc):
                raise

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

    def redraw(self, *_: Any) -> None:
        """Push the data to the lines, rescale and ``draw_idle``."""
        self._timer.stop()
        self.train_line.set_data(self.xs, self.losses)
        self.val_line.set_data(self.val_xs, self.val_losses)
        label = "validation" if self.val_xs else "_validation"  # no legend entry without points
        if self.val_line.get_label() != label:
            self.val_line.set_label(label)
            self.style_legend(self.ax.legend(fontsize=7, loc="upper right"))
        ax = self.ax
        ys = self.losses + self.val_losses
        span: tuple = ()
        if ys:
            lo, hi = min(ys), max(ys)
            ax.set_ylim(lo / 1.3, hi * 1.3 if hi > lo else lo * 2)
            xs = self.xs + self.val_xs
            ax.set_xlim(0, max(1.0, max(xs), self.epochs or 0))
            span = (math.floor(math.log10(lo)), math.ceil(math.log10(hi)))
        else:
            ax.set_xlim(0, self.epochs or 1)
            ax.set_ylim(1e-3, 1)
        self._last_draw = time.monotonic()
        self.draws += 1
        if span != self._span:  # tick labels changed width: recompute the layout once
            self._span = span
            self.relayout()
        else:
            self.draw_idle()
