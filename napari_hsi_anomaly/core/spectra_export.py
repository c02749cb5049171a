"""Spectra to CSV: the Inspect dock's pinned spectra, the selected region's mean and the scene's median
and quartiles, one row per band, so the curves the plot shows can be compared in another tool.

No Qt here. Values are what the plot shows (``Cube.as_float32``: scale applied, see ``Cube.value_label``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError

BAND_COLUMNS = ("band", "band_name", "wavelength_nm")


def pixel_spectrum(cube: Cube, row: int, col: int) -> np.ndarray:
    """The spectrum of pixel (row, col) in ``as_float32`` units (what the plot shows)."""
    return cube.as_float32(slice(row, row + 1), slice(col, col + 1))[:, 0, 0]


def pixel_label(row: int, col: int, pin: int | None = None) -> str:
    """A column name for a pixel's spectrum, with its row and column (0-based, as the dock shows)."""
    head = f"pin {pin}: " if pin is not None else ""
    return f"{head}pixel row {row} col {col}"


def scene_columns(stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> list[tuple[str, np.ndarray]]:
    """The scene's ``(median, q25, q75)`` (``regions.scene_spectrum_stats``) as named columns."""
    if stats is None:
        return []
    return list(zip(("scene median", "scene q25", "scene q75"), stats, strict=True))


def spectra_csv_text(cube: Cube, columns: Sequence[tuple[str, np.ndarray]]) -> str:
    """CSV text: one row per band (1-based ``band``, ``band_name``, ``wavelength_nm``; empty when the
    cube has none) and one column per named spectrum (the shortest float32 text that reads back
    exactly; empty for NaN)."""
    n = cube.bands
    names = [str(name) for name, _ in columns]
    if len(set(names)) != len(names):
        raise HsiAnomalyError(f"Export spectra: two columns share a name ({', '.join(names)}).")
    values = []
    for name, y in columns:
        y = np.asarray(y, dtype=np.float32).ravel()
        if y.shape != (n,):
            raise HsiAnomalyError(f"Export spectra: '{name}' has {y.size} values for {n} bands.")
        values.append(y)
    wl = cube.wavelengths
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*BAND_COLUMNS, *names])
    for b in range(n):
        name = "" if cube.band_names is None else str(cube.band_names[b])
        w = "" if wl is None or not np.isfinite(wl[b]) else f"{float(wl[b]):g}"
        cells = ["" if not np.isfinite(y[b]) else str(y[b]) for y in values]  # float32, round-trips
        writer.writerow([b + 1, name, w, *cells])
    return out.getvalue()


def spectra_to_csv(
    cube: Cube,
    columns: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    what: str = "Export spectra",
) -> Path:
    """Check ``path`` (a ``.csv``, not one of ``inputs``, in a writable folder), then write the CSV
    atomically (a crash leaves no half file); returns the path written."""
    from napari_hsi_anomaly.core import atomic
    from napari_hsi_anomaly.core.guards import check_output_path

    real = check_output_path(path, inputs=inputs, exts=(".csv",), what=what)
    if not columns:
        raise HsiAnomalyError(f"{what}: no spectrum to export; pin a spectrum or select a region first.")
    text = spectra_csv_text(cube, columns)
    return atomic.write_text(real, text)


__all__ = ["BAND_COLUMNS", "pixel_spectrum", "pixel_label", "scene_columns", "spectra_csv_text",
           "spectra_to_csv"]
