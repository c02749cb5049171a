"""The Inspect dock's "Why is this flagged" section: per part of the detector, the bands that carry the
score of the selected pixel or region (``core.explain``), as bars over the wavelength axis.

Each part's bars are its share per band (RX and local RX: the contributions to d^2 over their sum; GLOSH
and the attribute filters: the separating components spread over their loadings; a CAE part: the input
bands that drive its encoder maps, and its reconstruction residual per band), so the parts share
one axis; the text under the plot names the components, the object size and RX's d^2. The explanation
runs in a worker; Export CSV writes ``Explanation.to_csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_hsi_anomaly._widgets.plots import ThemedCanvas
from napari_hsi_anomaly._widgets.workers import Generation, notify_error, start_function_worker

PART_COLORS = {"rx": "#4fc3f7", "rx-local": "#ffb74d", "glosh-spectral": "#81c784", "attribute": "#ba68c8",
               "encoder": "#f06292", "residual": "#fff176"}
PART_NAMES = {"rx": "RX", "rx-local": "local RX", "glosh-spectral": "GLOSH spectra",
              "attribute": "attribute filters", "glosh": "CAE + GLOSH", "recon": "CAE reconstruction",
              "ssim-recon": "CAE SSIM", "iforest-cae": "CAE + Isolation Forest"}


def part_name(part: str) -> str:
    """Display name: ``"glosh: encoder"`` -> ``"CAE + GLOSH: encoder"``."""
    head, _, tail = part.partition(": ")
    return PART_NAMES.get(head, head) + (f": {tail}" if tail else "")


def part_color(part: str) -> str:
    """CAE parts are coloured by what they show (encoder drive, residual), the others by part."""
    return PART_COLORS.get(part.rpartition(": ")[2], "#c0c4cc")


class PartBars(ThemedCanvas):
    """Grouped bars: one group per band (labelled by wavelength), one bar per part."""

    def __init__(self, height_px: int = 170, theme: str | None = "dark") -> None:
        super().__init__(height_px, theme, margins=(40, 10, 18, 40))
        self._artists: list[Any] = []
        self.shares: dict[str, np.ndarray] = {}
        self.ax.set_ylabel("share of the part")

    def set_parts(self, shares: dict[str, np.ndarray], labels: list[str], title: str) -> None:
        for a in self._artists:
            a.remove()
        self._artists, self.shares = [], dict(shares)
        n = max(1, len(shares))
        width = 0.8 / n
        pos = np.arange(len(labels))
        for i, (name, v) in enumerate(shares.items()):
            bars = self.ax.bar(pos - 0.4 + width * (i + 0.5), np.nan_to_num(v), width=width,
                               color=part_color(name), label=part_name(name))
            self._artists.append(bars)
        self.ax.set_xticks(pos)
        step = max(1, int(np.ceil(len(labels) / 12)))
        self.ax.set_xticklabels([lab if i % step == 0 else "" for i, lab in enumerate(labels)],
                                rotation=60, fontsize=6, ha="right")
        if shares:
            legend = self.ax.legend(fontsize=6, loc="upper left", framealpha=0.8)
            self.style_legend(legend)
            self._artists.append(legend)
        self.set_title(title)
        self.ax.relim()
        self.ax.autoscale_view()
        self.draw_idle()


def part_shares(explanation: Any) -> dict[str, np.ndarray]:
    """Each part's per-band values as shares of its total (absolute values; parts without bands out)."""
    out = {}
    for p in explanation.parts:
        if p.bands is None:
            continue
        v = np.abs(np.asarray(p.bands, dtype=np.float64))
        total = float(np.nansum(v))
        out[p.part] = v / total if total > 0 else v
    return out


def _band_label(explanation: Any, b: int) -> str:
    wl = explanation.wavelengths
    if wl is not None and np.isfinite(wl[b]):
        return f"{float(wl[b]):.0f} nm"
    return str(explanation.band_names[b])


def _cae_line(explanation: Any, p: Any, name: str) -> str:
    """One short line for a CAE part: its leading band group and maps, or its residual's top bands."""
    if p.part.endswith(": encoder"):
        groups = [c for c in p.components if c.get("kind") == "band group"]
        maps = [c for c in p.components if c.get("kind") == "map"][:2]
        text = ", ".join(f"{c['name']} {100 * c['share']:.0f} %" for c in groups[:2])
        zs = ", ".join(f"{c['name']} (z {c['z']:+.0f})" for c in maps)
        return f"{name}: band groups {text}; maps {zs}"
    v = np.nan_to_num(np.abs(np.asarray(p.bands, np.float64)))
    total = float(v.sum()) or 1.0
    top = ", ".join(f"{_band_label(explanation, int(b))} {100 * v[b] / total:.0f} %"
                    for b in np.argsort(-v)[:2])
    return f"{name}: {top}" + (f" (d\u00b2 {p.total:.1f})" if p.unit == "contribution to d^2" else "")


def describe(explanation: Any) -> str:
    """One line per part: what it weighed (components, object size, d^2, the CAE's band groups)."""
    lines = []
    for p in explanation.parts:
        name = part_name(p.part)
        if p.part.endswith((": encoder", ": residual")) and p.bands is not None:
            lines.append(_cae_line(explanation, p, name))
        elif p.unit == "contribution to d^2" and p.bands is not None:
            lines.append(f"{name}: d\u00b2 {p.total:.1f}")
        elif p.components:
            comps = ", ".join(
                f"{c['name']} {100 * c['share']:.0f} %" + (f" (z {c['z']:+.1f})" if "z" in c else "")
                + (f", object {c['object_px']} px" if "object_px" in c and i == 0 else "")
                for i, c in enumerate(p.components[:3]))
            lines.append(f"{name}: {comps}")
        if p.note and p.bands is None:
            lines.append(f"{name}: {p.note}")
    return "\n".join(lines)


class WhyPanel(QWidget):
    """Title, the per-part bars, their description and Export CSV."""

    def __init__(self, theme: str = "dark") -> None:
        super().__init__()
        self.title = QLabel("<b>Why is this flagged</b>: click a pixel or choose a region.")
        self.title.setWordWrap(True)
        self.bars = PartBars(theme=theme)
        self.bars.hide()
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.csv_btn = QPushButton("Export why CSV…")
        self.csv_btn.setEnabled(False)
        self.csv_btn.clicked.connect(self._export_dialog)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.csv_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.bars)
        layout.addLayout(row)
        self.explanation: Any = None
        self._gen = Generation()

    def clear(self, message: str = "click a pixel or choose a region.") -> None:
        self._gen.next()
        self.explanation = None
        self.title.setText(f"<b>Why is this flagged</b>: {message}")
        self.text.setText("")
        self.bars.hide()
        self.csv_btn.setEnabled(False)

    def explain(self, detection: Any, cube: Any, where: Any, what: str) -> Any:
        """Explain ``where`` (pixel or mask) of ``detection`` in a worker; returns the worker."""
        from napari_hsi_anomaly.core.explain import explain

        if detection is None or "scorer" not in getattr(detection, "extras", {}):
            self.clear("score first (the detection keeps its normal model).")
            return None
        token = self._gen.next()
        self.title.setText(f"<b>Why is this flagged</b>: {what}…")

        def done(ex: Any) -> None:
            if self._gen.is_current(token):
                self.show(ex, what)

        return start_function_worker(explain, detection, cube, where, on_returned=done,
                                     on_error=lambda exc: self.clear(str(exc)), notify=False,
                                     desc="Why is this flagged", progress_bar=False)

    def show(self, explanation: Any, what: str) -> None:
        self.explanation = explanation
        if explanation.wavelengths is not None and np.isfinite(explanation.wavelengths).all():
            labels = [f"{w:.0f}" for w in explanation.wavelengths]
        else:
            labels = list(explanation.band_names)
        self.title.setText(f"<b>Why is this flagged</b>: {what}")
        self.bars.set_parts(part_shares(explanation), labels, "bands that carry the score, per part")
        self.bars.show()
        self.text.setText(describe(explanation))
        self.csv_btn.setEnabled(True)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export why", "why_flagged.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path | None:
        from napari_hsi_anomaly.core.errors import HsiAnomalyError
        from napari_hsi_anomaly.core.guards import check_output_path

        if self.explanation is None:
            return None
        try:
            check_output_path(path, exts=(".csv",), what="Export CSV")
            return self.explanation.to_csv(path)
        except (HsiAnomalyError, OSError) as exc:
            notify_error(exc)
            return None
