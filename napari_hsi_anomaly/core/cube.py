"""The ``Cube`` type: a ``(bands, rows, cols)`` array plus what is known about its bands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core import bands as _bands  # bands names Cube in type hints only
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError

RGB_TARGETS_NM = (640.0, 550.0, 470.0)


@dataclass
class Cube:
    """A spectral cube.

    ``data`` is ``(bands, rows, cols)``; it may be a read-only memory map (never read whole just to
    open a file). Values are in the file's units; multiply by ``scale_factor`` for physical units
    (e.g. reflectance). ``wavelengths`` are in nanometres, in file order (not necessarily monotonic).
    """

    data: np.ndarray
    wavelengths: np.ndarray | None = None
    band_names: list[str] | None = None
    units: str | None = None
    nodata: float | None = None
    scale_factor: float | None = None
    source: Path | None = None
    default_bands: tuple[int, int, int] | None = None
    interleave: str | None = None
    metadata: dict = field(default_factory=dict)
    # (rows, cols) bool: detected border fill (core.nodata.mark_fill), treated as no-data like ``nodata``.
    fill: np.ndarray | None = None
    georef: dict = field(default_factory=dict)  # "crs" WKT, "transform" (a, b, c, d, e, f), "envi"

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ShapeError(
                f"A cube needs 3 dimensions (bands, rows, cols); got an array of shape {self.data.shape}."
            )
        if self.wavelengths is not None:
            self.wavelengths = np.asarray(self.wavelengths, dtype=np.float64)
            if self.wavelengths.shape != (self.bands,):
                raise ShapeError(
                    f"{self.wavelengths.size} wavelengths given for a cube of {self.bands} bands."
                )
        if self.band_names is not None and len(self.band_names) != self.bands:
            raise ShapeError(f"{len(self.band_names)} band names for a cube of {self.bands} bands.")

    @property
    def bands(self) -> int:
        return int(self.data.shape[0])

    @property
    def rows(self) -> int:
        return int(self.data.shape[1])

    @property
    def cols(self) -> int:
        return int(self.data.shape[2])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.bands, self.rows, self.cols)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def name(self) -> str:
        return self.source.stem if self.source is not None else "cube"

    def band_label(self, i: int) -> str:
        """A short label for band ``i``: its name and/or wavelength."""
        parts = []
        if self.band_names is not None:
            parts.append(str(self.band_names[i]))
        if self.wavelengths is not None and np.isfinite(self.wavelengths[i]):
            parts.append(f"{self.wavelengths[i]:.0f} nm")
        return " ".join(parts) if parts else f"band {i + 1}"

    def select_bands(self, indices: Sequence[int] | np.ndarray) -> Cube:
        """The cube restricted to ``indices`` (0-based, file order kept as given): a view, no copy
        (a numpy slice for a regular step, else a lazy ``BandSubset``); wavelengths, names, units kept."""
        idx, data = _bands.band_subset(self.data, indices)
        keep = {int(b): k for k, b in enumerate(idx)}
        rgb = self.default_bands
        rgb = tuple(keep[b] for b in rgb) if rgb and all(b in keep for b in rgb) else None
        prev = self.metadata.get("band_selection")  # indices into the file's bands
        meta = {**self.metadata, "band_selection": idx if prev is None else np.asarray(prev)[idx]}
        if meta.get("add_offset") is not None:
            meta["add_offset"] = np.asarray(meta["add_offset"])[idx]
        return replace(
            self,
            data=data,
            wavelengths=None if self.wavelengths is None else self.wavelengths[idx],
            band_names=None if self.band_names is None else [self.band_names[b] for b in idx],
            default_bands=rgb,  # type: ignore[arg-type]
            metadata=meta,
        )

    def value_label(self, scaled: bool = True) -> str:
        """What a value means, for a plot axis: ``"reflectance (scale 10000 applied)"`` for
        ``as_float32`` values (``scaled``), ``"reflectance x 10000"`` for file values, ``"radiance
        (uW/cm^2/sr/nm)"``, ``"DN"`` for integers with no units, else ``"value"``."""
        return _bands.value_label(self, scaled)

    def as_float32(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """A float32 copy of a spatial block, scaled, with no-data and non-finite values set to NaN."""
        if np.dtype(self.data.dtype).kind == "c":
            raise HsiAnomalyError(
                f"{self.name} holds complex values; detectors and training need real ones: save the "
                "magnitude (np.abs) or the real part first."
            )
        block = np.array(self.data[:, rows, cols], dtype=np.float32)  # a copy: data may be read-only
        if self.nodata is not None:
            block[block == np.float32(self.nodata)] = np.nan
        if self.fill is not None:
            block[:, self.fill[rows, cols]] = np.nan
        offset = self.metadata.get("add_offset")  # per band, in file units (Sentinel-2 baseline 04.00+)
        if offset is not None:
            block += np.asarray(offset, dtype=np.float32)[:, None, None]
        if self.scale_factor not in (None, 0, 1):
            block /= np.float32(self.scale_factor)
        block[~np.isfinite(block)] = np.nan
        return block

    def valid_mask(self) -> np.ndarray:
        """``(rows, cols)`` bool: True where every band is finite and not the no-data value."""
        mask = np.ones((self.rows, self.cols), dtype=bool)
        for b in range(self.bands):  # band by band: bounded memory on a memory map
            band = np.asarray(self.data[b])
            mask &= np.isfinite(band) if band.dtype.kind == "f" else True
            if self.nodata is not None:
                mask &= band != self.nodata
        if self.fill is not None:
            mask &= ~self.fill
        return mask

    def rgb_bands(self) -> tuple[int, int, int]:
        """Band indices for an RGB composite: the header's default bands, else nearest 640/550/470 nm."""
        if self.default_bands is not None:
            return self.default_bands
        if self.wavelengths is not None and np.isfinite(self.wavelengths).any():
            wl = np.where(np.isfinite(self.wavelengths), self.wavelengths, np.inf)
            return tuple(int(np.argmin(np.abs(wl - t))) for t in RGB_TARGETS_NM)  # type: ignore[return-value]
        n = self.bands
        return (min(n - 1, 2 * n // 3), min(n - 1, n // 3), 0) if n >= 3 else (0, 0, 0)

    def rgb(
        self,
        bands: tuple[int, int, int] | None = None,
        percentiles: tuple[float, float] = (2, 99),
        gamma: float = 0.7,
    ) -> np.ndarray:
        """A ``(rows, cols, 3)`` float32 composite in [0, 1]: each channel percentile-stretched, then
        ``** gamma`` (< 1 lifts dark vegetation and water in scenes with bright snow or cloud)."""
        bands = bands or self.rgb_bands()
        out = np.zeros((self.rows, self.cols, 3), dtype=np.float32)
        for k, b in enumerate(bands):
            band = np.asarray(self.data[b], dtype=np.float32)
            ok = np.isfinite(band)
            if self.nodata is not None:
                ok &= band != np.float32(self.nodata)
            if not ok.any():
                continue
            lo, hi = np.percentile(band[ok], percentiles)
            scale = (hi - lo) if hi > lo else 1.0
            out[..., k] = np.where(ok, np.clip((band - lo) / scale, 0, 1) ** gamma, 0)
        return out


def rows_view(cube: Cube, r0: int, r1: int) -> Cube:
    """Rows ``[r0, r1)`` of ``cube`` as a cube (a view: a memory map stays on disk until read)."""
    fill = None if cube.fill is None else cube.fill[r0:r1]
    return replace(cube, data=cube.data[:, r0:r1], fill=fill, metadata=dict(cube.metadata))


def as_cube(cube_or_array: Cube | np.ndarray, what: str = "This step") -> Cube:
    """``cube_or_array`` as a ``Cube`` (a plain ``(bands, rows, cols)`` array is wrapped)."""
    if isinstance(cube_or_array, Cube):
        _check_usable_array(cube_or_array.shape, cube_or_array.dtype, what)
        return cube_or_array
    try:
        arr = np.asarray(cube_or_array)
    except (ValueError, TypeError) as exc:
        raise ShapeError(f"{what} needs a (bands, rows, cols) array of numbers; got {exc}.") from None
    if arr.ndim != 3:
        raise ShapeError(f"{what} needs a (bands, rows, cols) cube; got shape {arr.shape}.")
    _check_usable_array(arr.shape, arr.dtype, what)
    return Cube(arr)


def _check_usable_array(shape: tuple[int, ...], dtype: np.dtype, what: str) -> None:
    """The project's one-line errors for arrays no step can use: an empty axis, values not numbers."""
    if min(shape) < 1:
        raise ShapeError(f"{what} needs at least one band, row and column; got shape {tuple(shape)}.")
    if np.dtype(dtype).kind not in "biufc":
        raise HsiAnomalyError(f"{what} needs numbers; the cube holds {np.dtype(dtype)} values.")
