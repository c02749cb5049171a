"""The precision-recall curve beside the ROC: what a threshold buys in precision for its recall."""

from __future__ import annotations

import numpy as np

from napari_hsi_anomaly._widgets.plots import PIXEL_COLOR, T_COLOR, ThemedCanvas


class PrPlot(ThemedCanvas):
    """Precision against recall (a point per distinct score) with the operating point at t_anom."""

    def __init__(self, height_px: int = 170, theme: str | None = "dark") -> None:
        super().__init__(height_px, theme)
        ax = self.ax
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        (self.curve,) = ax.plot([], [], color=PIXEL_COLOR, linewidth=1.5, drawstyle="steps-post")
        (self.point,) = ax.plot([], [], "o", color=T_COLOR, markersize=6)
        self.animate(self.point)
        self.set_title("precision-recall")

    def set_curve(self, precision: np.ndarray, recall: np.ndarray, ap: float | None = None) -> None:
        """The curve (at most ~2000 vertices) and the average precision in the title."""
        p, r = np.asarray(precision), np.asarray(recall)
        if p.size > 2000:
            keep = np.unique(np.linspace(0, p.size - 1, 2000).astype(np.int64))
            p, r = p[keep], r[keep]
        self.curve.set_data(np.r_[0.0, r], np.r_[p[:1] if p.size else [1.0], p])
        self.set_title("precision-recall" + (f"  (AP {ap:.3f})" if ap is not None else ""))
        self.draw_idle()

    def set_point(self, recall: float, precision: float) -> None:
        self.point.set_data([recall], [precision])
        self.update_animated()

    def clear(self) -> None:
        self.curve.set_data([], [])
        self.point.set_data([], [])
        self.set_title("precision-recall")
        self.draw_idle()
