"""Small matplotlib canvases themed like napari: score histogram, ROC curve, spectra, band bars.

Each canvas keeps its artists and updates them in place (``set_data`` + ``draw_idle``) so that slider
moves cost only a line move, never a full re-plot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from qtpy.QtWidgets import QSizePolicy

PIN_COLORS = ("#ffb000", "#3ddc84", "#ff5cae", "#9d8cff", "#ffe066", "#ff7a45", "#7fd1ff")
PIXEL_COLOR = "#4fc3f7"
SCENE_COLOR = "#c0c4cc"
T_COLOR = "#ff4d4d"


def theme_colors(theme: str | None = "dark") -> dict[str, str]:
    """Background, axes face, text and grid colours from napari's theme (``dark`` by default)."""
    try:
        from napari.utils.theme import get_theme

        t = get_theme(theme or "dark")
        bg, fg, text = str(t.background), str(t.foreground), str(t.text)
        kind = str(t.type)
    except Exception:  # pragma: no cover - napari absent or unknown theme
        bg, fg, text, kind = "#23242b", "#2e333e", "#f0f1f2", "dark"
    grid = "#4a5060" if kind == "dark" else "#c8c8c8"
    return {"bg": bg, "face": fg, "text": text, "grid": grid}


_DRAW_QUEUE: list = []  # canvases waiting for a full draw, one per event-loop turn
_DRAW_TIMER: Any = None


def _draw_next() -> None:
    """Draw the next queued canvas; the next one waits for another turn of the event loop."""
    while _DRAW_QUEUE:
        canvas = _DRAW_QUEUE.pop(0)
        try:
            if not canvas.isVisible():  # drawn by its paint event when it is shown
                continue
            canvas._draw_pending = True
            canvas._draw_idle()
        except RuntimeError:  # deleted with its dock
            continue
        break
    if _DRAW_QUEUE:
        _DRAW_TIMER.start()


class ThemedCanvas(FigureCanvasQTAgg):
    """A compact figure canvas with napari's colours, a fixed preferred height and fixed margins.

    The one plot base of the plugin (histogram, ROC, spectra, band bars, loss curve). Margins are in
    pixels and applied on resize (``subplots_adjust``): no constrained layout, whose solver cost the
    GUI thread 0.2-0.5 s per draw. ``margins`` = (left, right, top, bottom) pixels.
    """

    MARGINS = (46, 10, 18, 32)

    def __init__(self, height_px: int = 200, theme: str | None = "dark", nrows: int = 1,
                 margins: tuple[int, int, int, int] | None = None) -> None:
        fig = Figure(figsize=(3.5, height_px / 100), dpi=100)
        super().__init__(fig)
        self.colors = theme_colors(theme)
        self.margins = tuple(margins or self.MARGINS)
        fig.set_facecolor(self.colors["bg"])
        self.axes_list = [fig.add_subplot(nrows, 1, i + 1) for i in range(nrows)]
        for ax in self.axes_list:
            self.style_axes(ax)
        self._animated: list[Any] = []  # artists redrawn alone (blit) on slider moves
        self._background: Any = None
        self._bg_size: tuple = ()
        self.mpl_connect("draw_event", self._on_draw)
        self.setMinimumHeight(int(height_px * 0.8))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._height = height_px
        self._apply_margins()

    def _apply_margins(self) -> None:
        w, h = self.figure.bbox.width, self.figure.bbox.height
        if w < 60 or h < 40:
            return
        left, right, top, bottom = self.margins
        n = len(self.axes_list)
        gap = (top + bottom) / max(1.0, (h - top - bottom) / n)
        self.figure.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h,
                                    bottom=bottom / h, hspace=gap)

    def draw_idle(self) -> None:
        """Queue a full draw: one canvas per event-loop turn (a draw is 25-50 ms of GUI time here;
        several in one turn would be one long pause), input and repaints in between."""
        global _DRAW_TIMER
        self._draw_pending = True  # a paint event before our turn draws it (matplotlib's rule)
        if self not in _DRAW_QUEUE:
            _DRAW_QUEUE.append(self)
        if _DRAW_TIMER is None:
            from qtpy.QtCore import QTimer

            _DRAW_TIMER = QTimer()
            _DRAW_TIMER.setSingleShot(True)
            _DRAW_TIMER.setInterval(1)  # a real timer: other events run between two draws
            _DRAW_TIMER.timeout.connect(_draw_next)
        if not _DRAW_TIMER.isActive():
            _DRAW_TIMER.start()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Paint the last rendered image; a pending full draw waits for its own turn (``draw_idle``)."""
        if not self._draw_pending:
            super().paintEvent(event)
            return
        self.draw_idle()
        self._draw_pending = False  # matplotlib's paintEvent would draw now, inside this paint pass
        try:
            super().paintEvent(event)
        finally:
            self._draw_pending = True

    def relayout(self) -> None:
        """Re-apply the margins and redraw (kept for callers of the former constrained layout)."""
        self._apply_margins()
        self.draw_idle()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._apply_margins()

    @property
    def ax(self) -> Any:
        return self.axes_list[0]

    def sizeHint(self):  # noqa: N802 - Qt API
        hint = super().sizeHint()
        hint.setHeight(self._height)
        return hint

    def style_axes(self, ax: Any) -> None:
        c = self.colors
        ax.set_facecolor(c["face"])
        for spine in ax.spines.values():
            spine.set_color(c["grid"])
        ax.tick_params(colors=c["text"], labelsize=7, length=3)
        ax.xaxis.label.set_color(c["text"])
        ax.yaxis.label.set_color(c["text"])
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
        ax.title.set_color(c["text"])
        ax.title.set_fontsize(8)
        ax.grid(True, color=c["grid"], linewidth=0.5, alpha=0.6)

    def animate(self, artist: Any) -> Any:
        """Mark ``artist`` as moving: full draws skip it, ``update_animated`` blits it alone."""
        artist.set_animated(True)
        self._animated.append(artist)
        return artist

    def _on_draw(self, event: Any) -> None:
        """After a full draw: keep the background, then paint the moving artists over it."""
        if not self._animated:
            return
        self._background = self.copy_from_bbox(self.figure.bbox)
        self._bg_size = tuple(self.figure.bbox.size)
        for artist in self._animated:
            artist.axes.draw_artist(artist)

    def update_animated(self) -> None:
        """Redraw only the moving artists (a few ms) instead of the whole figure (100+ ms)."""
        if self._background is None or self._bg_size != tuple(self.figure.bbox.size):
            self.draw_idle()
            return
        self.restore_region(self._background)
        for artist in self._animated:
            artist.axes.draw_artist(artist)
        self.update()  # paint the renderer's buffer at the next event-loop turn (not repaint())

    def set_title(self, text: str, ax: Any = None) -> None:
        """A small title in the theme's text colour (matplotlib resets both on ``set_title``)."""
        (ax or self.ax).set_title(text, fontsize=8, color=self.colors["text"], pad=3)

    def style_legend(self, legend: Any) -> None:
        if legend is None:
            return
        legend.get_frame().set_facecolor(self.colors["bg"])
        legend.get_frame().set_edgecolor(self.colors["grid"])
        for text in legend.get_texts():
            text.set_color(self.colors["text"])


def _count_label(value: float, _pos: Any = None) -> str:
    """1, 10, 100, 1k, 10k, 1M: short plain labels for a log count axis."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:g}{unit}"
    return f"{value:g}"


class ScoreHistogram(ThemedCanvas):
    """Histogram of scores in [0, 1] (log counts) with a movable threshold line.

    ``set_colorbar(rgba)`` adds the heatmap's colour bar as a strip under the score axis (the colours
    as they look over a dark scene: each RGBA composited on the theme's background).
    """

    STRIP_PX = 9

    def __init__(self, height_px: int = 170, theme: str | None = "dark", bins: int = 100) -> None:
        super().__init__(height_px, theme, margins=(46, 10, 8, 36 + self.STRIP_PX))
        self.bins = np.linspace(0.0, 1.0, bins + 1)
        self.ax.set_xlim(0, 1)
        self.ax.set_yscale("log")
        # plain tick text (log axes default to mathtext, several ms per label per draw)
        self.ax.yaxis.set_major_formatter(FuncFormatter(_count_label))
        self.ax.yaxis.set_minor_locator(NullLocator())
        self.ax.xaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
        self.ax.set_ylabel("pixels")
        self.ax.set_xlabel("anomaly score")
        self._bars: Any = None
        self.cbar_ax: Any = None
        self.t_line = self.animate(self.ax.axvline(0.7, color=T_COLOR, linewidth=1.5))
        self.counts = np.zeros(bins, dtype=np.int64)

    def set_colorbar(self, rgba: np.ndarray) -> None:
        """The heatmap's colours at scores linspace(0, 1, len(rgba)) as a strip under the x axis."""
        rgba = np.asarray(rgba, dtype=np.float64)
        from matplotlib.colors import to_rgb

        bg = np.array(to_rgb(self.colors["bg"]))
        rgb = rgba[:, :3] * rgba[:, 3:4] + bg * (1 - rgba[:, 3:4])
        if self.cbar_ax is None:
            self.cbar_ax = self.figure.add_axes((0, 0, 1, 0.05))
            self.style_axes(self.cbar_ax)
            self.cbar_ax.grid(False)
            self.cbar_ax.set_yticks([])
            self.ax.tick_params(labelbottom=False)
            self.ax.set_xlabel("")
            self.cbar_ax.set_xlabel("anomaly score (heatmap colour)")
        self.cbar_ax.imshow(rgb[None], aspect="auto", extent=(0, 1, 0, 1), interpolation="bilinear")
        self.cbar_ax.set_xlim(0, 1)
        self._apply_margins()
        self.draw_idle()

    def _apply_margins(self) -> None:
        super()._apply_margins()
        cb = getattr(self, "cbar_ax", None)
        w, h = self.figure.bbox.width, self.figure.bbox.height
        if cb is None or w < 60 or h < 40:
            return
        pos = self.ax.get_position()
        strip = self.STRIP_PX / h
        cb.set_position((pos.x0, pos.y0 - strip - 1 / h, pos.width, strip))

    def set_scores(self, scores: np.ndarray | None) -> None:
        """Re-bin the scores (once per detection or p_min change)."""
        if self._bars is not None:
            self._bars.remove()
            self._bars = None
        if scores is None:
            self.counts[:] = 0
        else:
            v = np.asarray(scores, dtype=np.float32).ravel()
            v = v[np.isfinite(v)]
            n = self.bins.size - 1  # equal bins on [0, 1]: bincount is ~10x faster than histogram
            idx = np.clip((v * n).astype(np.int32), 0, n - 1)
            self.counts = np.bincount(idx, minlength=n)
            # bars from 0.5 so that counts of 1 show on the log axis
            self._bars = self.ax.stairs(
                np.maximum(self.counts, 0.5), self.bins, baseline=0.5, fill=True,
                color="#e8a33a", alpha=0.85,
            )
            self.ax.set_ylim(0.5, max(10.0, float(self.counts.max()) * 2))
        self.draw_idle()

    def set_threshold(self, t: float) -> None:
        """Move the threshold line only (blitted)."""
        self.t_line.set_xdata([t, t])
        self.update_animated()


class RocPlot(ThemedCanvas):
    """ROC curve with the operating point of the current threshold."""

    def __init__(self, height_px: int = 190, theme: str | None = "dark") -> None:
        super().__init__(height_px, theme)
        ax = self.ax
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.plot([0, 1], [0, 1], color=self.colors["grid"], linewidth=0.8, linestyle="--")
        (self.curve,) = ax.plot([], [], color=PIXEL_COLOR, linewidth=1.5, label="ROC")
        (self.point,) = ax.plot([], [], "o", color=T_COLOR, markersize=6, label="t_anom")
        self.animate(self.point)

    def set_curve(self, fpr: np.ndarray, tpr: np.ndarray, auc: float | None = None) -> None:
        """The curve, decimated to at most ~2000 vertices (a full-scene ROC has millions)."""
        fpr, tpr = np.asarray(fpr), np.asarray(tpr)
        if fpr.size > 2000:
            keep = np.unique(np.r_[np.linspace(0, fpr.size - 1, 1000).astype(np.int64),
                                   np.searchsorted(fpr, np.linspace(0, 1, 1000)).clip(0, fpr.size - 1)])
            fpr, tpr = fpr[keep], tpr[keep]
        self.curve.set_data(fpr, tpr)
        self.set_title(f"ROC  (AUC {auc:.3f})" if auc is not None else "ROC")
        self.draw_idle()

    def set_point(self, fpr: float, tpr: float) -> None:
        self.point.set_data([fpr], [tpr])
        self.update_animated()

    def clear(self) -> None:
        self.curve.set_data([], [])
        self.point.set_data([], [])
        self.set_title("ROC")
        self.draw_idle()


class SpectrumPlot(ThemedCanvas):
    """A spectrum against the scene median and inter-quartile band, with pinned spectra."""

    def __init__(self, height_px: int = 210, theme: str | None = "dark") -> None:
        super().__init__(height_px, theme)
        self.x = np.zeros(0)
        self.order = np.zeros(0, dtype=np.int64)
        self._band_fill: Any = None
        (self.median_line,) = self.ax.plot([], [], color=SCENE_COLOR, linewidth=1.0,
                                           linestyle="--", label="scene median, IQR")
        (self.line,) = self.ax.plot([], [], color=PIXEL_COLOR, linewidth=1.8, marker=".",
                                    markersize=4, label="pixel")
        self.band_line = self.ax.axvline(0, color="#8891a0", linewidth=0.8, linestyle=":")
        self.band_line.set_visible(False)
        self.pins: list[Any] = []
        self.current: np.ndarray | None = None
        self.current_label = ""
        self._legend()

    def set_axis(self, x: np.ndarray, xlabel: str) -> None:
        """Band positions (wavelengths or indices); lines are drawn in increasing ``x``."""
        self.x = np.asarray(x, dtype=np.float64)
        self.order = np.argsort(self.x, kind="stable")
        self.ax.set_xlabel(xlabel)
        self.clear_pins()
        self.line.set_data([], [])
        self.current = None
        self.ax.set_xlim(*self._xlim())

    def _xlim(self) -> tuple[float, float]:
        if self.x.size == 0:
            return (0.0, 1.0)
        lo, hi = float(np.nanmin(self.x)), float(np.nanmax(self.x))
        pad = max((hi - lo) * 0.03, 0.5)
        return lo - pad, hi + pad

    def set_scene(self, median: np.ndarray, q25: np.ndarray, q75: np.ndarray) -> None:
        o = self.order
        self.median_line.set_data(self.x[o], np.asarray(median)[o])
        if self._band_fill is not None:
            self._band_fill.remove()
        self._band_fill = self.ax.fill_between(
            self.x[o], np.asarray(q25)[o], np.asarray(q75)[o], color=SCENE_COLOR, alpha=0.22,
            linewidth=0, label="scene IQR",
        )
        self._legend()
        self._autoscale()

    def set_spectrum(self, y: np.ndarray, label: str, title: str | None = None) -> None:
        """Show the current spectrum (the one a click or a region selection picked)."""
        self.current = np.asarray(y, dtype=np.float64)
        self.current_label = label
        self.line.set_data(self.x[self.order], self.current[self.order])
        self.line.set_label(label)
        self.set_title(title or "")
        self._legend()
        self._autoscale()

    def pin(self) -> bool:
        """Keep the current spectrum as a pinned line; False when there is none."""
        if self.current is None:
            return False
        color = PIN_COLORS[len(self.pins) % len(PIN_COLORS)]
        (pinned,) = self.ax.plot(self.x[self.order], self.current[self.order], color=color,
                                 linewidth=1.2, label=f"pin {self.current_label}")
        self.pins.append(pinned)
        self._legend()
        self.draw_idle()
        return True

    def clear_pins(self) -> None:
        for p in self.pins:
            p.remove()
        self.pins = []
        self._legend()
        self.draw_idle()

    def set_band(self, band: int | None) -> None:
        """Vertical marker at band ``band`` (None hides it)."""
        if band is None or not 0 <= band < self.x.size:
            self.band_line.set_visible(False)
        else:
            self.band_line.set_xdata([self.x[band], self.x[band]])
            self.band_line.set_visible(True)
        self.draw_idle()

    def _legend(self) -> None:
        handles = [h for h in (self.median_line, self.line, *self.pins)
                   if h is not None and (not hasattr(h, "get_xdata") or len(h.get_xdata()))]
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        if handles:
            leg = self.ax.legend(handles=handles, fontsize=6, loc="best", framealpha=0.6,
                                 handlelength=1.2, borderpad=0.25, labelspacing=0.2)
            self.style_legend(leg)

    def _autoscale(self) -> None:
        ys = [np.asarray(a.get_ydata(), dtype=np.float64) for a in (self.median_line, self.line,
                                                                    *self.pins)]
        if self._band_fill is not None:
            paths = self._band_fill.get_paths()
            if paths:
                ys.append(paths[0].vertices[:, 1])
        vals = np.concatenate([y[np.isfinite(y)] for y in ys if y.size] or [np.zeros(0)])
        if vals.size:
            lo, hi = float(vals.min()), float(vals.max())
            pad = (hi - lo) * 0.06 or max(abs(hi) * 0.1, 1e-3)
            self.ax.set_ylim(lo - pad, hi + pad)
        self.ax.set_xlim(*self._xlim())
        self.draw_idle()


class BandBars(ThemedCanvas):
    """Per-band bars: robust deviation (z) of a region, or its per-band reconstruction error."""

    def __init__(self, height_px: int = 150, theme: str | None = "dark") -> None:
        super().__init__(height_px, theme, margins=(46, 10, 18, 44))  # rotated band labels
        self._bars: Any = None
        self.values = np.zeros(0)
        self.ax.set_xlabel("band")

    def set_values(
        self, values: np.ndarray, labels: list[str], ylabel: str, title: str = "",
        highlight: float | None = 3.0,
    ) -> None:
        if self._bars is not None:
            self._bars.remove()
        self.values = np.asarray(values, dtype=np.float64)
        pos = np.arange(self.values.size)
        colors = [
            "#ff6b5a" if highlight is not None and abs(v) >= highlight else "#6c8ebf"
            for v in np.nan_to_num(self.values)
        ]
        self._bars = self.ax.bar(pos, np.nan_to_num(self.values), color=colors, width=0.8)
        self.ax.set_xticks(pos)
        step = max(1, int(np.ceil(len(labels) / 12)))
        self.ax.set_xticklabels([lab if i % step == 0 else "" for i, lab in enumerate(labels)],
                                rotation=60, fontsize=6, ha="right")
        self.ax.set_ylabel(ylabel)
        self.set_title(title)
        self.ax.relim()
        self.ax.autoscale_view()
        self.draw_idle()

    def clear(self) -> None:
        if self._bars is not None:
            self._bars.remove()
            self._bars = None
        self.values = np.zeros(0)
        self.set_title("")
        self.draw_idle()
