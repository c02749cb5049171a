"""``RasterBands``: a lazy ``(bands, rows, cols)`` array over a raster that GDAL decodes (compressed or
tiled GeoTIFF, COG, BigTIFF): indexing reads only the bands and window asked for, through rasterio.

Memory-mapping is impossible for compressed pixels; reading a whole file on opening would spend the
memory budget before the user chose bands or a region. Every read is checked against the budget.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _open(path: Path):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def _norm_axis(key: Any, n: int) -> tuple[np.ndarray | slice, bool]:
    """(indices or a unit-step slice, whether the axis is dropped) for one axis key."""
    if isinstance(key, (int, np.integer)):
        k = int(key) + (n if key < 0 else 0)
        if not 0 <= k < n:
            raise IndexError(f"index {key} is out of bounds for an axis of size {n}")
        return slice(k, k + 1), True
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step == 1:
            return slice(start, max(start, stop)), False
        return np.arange(start, stop, step), False
    idx = np.asarray(key)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx.astype(np.int64).ravel()
    return np.where(idx < 0, idx + n, idx), False


class RasterBands:
    """A read-only, lazy ``(bands, rows, cols)`` view of a GDAL raster's bands (``band_index``: the
    0-based file bands it shows, all by default). Picklable (it holds the path, not an open file)."""

    ndim = 3

    def __init__(self, path: str | Path, shape: tuple[int, int, int], dtype: Any,
                 band_index: np.ndarray | None = None) -> None:
        self.path = Path(path)
        self._file_shape = tuple(int(s) for s in shape)
        self._dtype = np.dtype(dtype)
        self.band_index = (np.arange(self._file_shape[0]) if band_index is None
                           else np.asarray(band_index, dtype=np.int64))

    @classmethod
    def open(cls, path: str | Path) -> RasterBands:
        with _open(Path(path)) as ds:
            return cls(path, (ds.count, ds.height, ds.width), ds.dtypes[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.band_index.size), self._file_shape[1], self._file_shape[2])

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"RasterBands({self.path.name!r}, shape={self.shape}, dtype={self._dtype.name})"

    def _read(self, bands: np.ndarray, rows: slice | np.ndarray, cols: slice | np.ndarray) -> np.ndarray:
        from rasterio.windows import Window

        from napari_hsi_anomaly.core.guards import check_allocation

        r = rows if isinstance(rows, slice) else slice(int(rows.min()), int(rows.max()) + 1) \
            if rows.size else slice(0, 0)
        c = cols if isinstance(cols, slice) else slice(int(cols.min()), int(cols.max()) + 1) \
            if cols.size else slice(0, 0)
        nbytes = float(bands.size) * (r.stop - r.start) * (c.stop - c.start) * self._dtype.itemsize
        check_allocation(nbytes, f"{self.path.name} (compressed: decoded on reading)",
                         hint="read fewer bands or a smaller region, or save it uncompressed")
        if bands.size == 0 or r.stop == r.start or c.stop == c.start:
            out = np.empty((bands.size, r.stop - r.start, c.stop - c.start), dtype=self._dtype)
        else:
            window = Window(c.start, r.start, c.stop - c.start, r.stop - r.start)
            with _open(self.path) as ds:
                out = ds.read([int(b) + 1 for b in bands], window=window)
        if not isinstance(rows, slice):
            out = out[:, rows - r.start]
        if not isinstance(cols, slice):
            out = out[:, :, cols - c.start]
        return out

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (3 - len(key))
        if len(key) != 3:
            raise IndexError(f"too many indices for a 3-D array: {len(key)}")
        bkey, rkey, ckey = key
        n = self.shape[0]
        if isinstance(bkey, slice) and all(isinstance(k, slice) and k == slice(None) for k in (rkey, ckey)):
            # bands only: another lazy view (what ``Cube.select_bands`` takes)
            return RasterBands(self.path, self._file_shape, self._dtype, self.band_index[bkey])
        b, drop_b = _norm_axis(bkey, n)
        r, drop_r = _norm_axis(rkey, self.shape[1])
        c, drop_c = _norm_axis(ckey, self.shape[2])
        bands = self.band_index[b]
        out = self._read(np.atleast_1d(bands), r, c)
        index = tuple(0 if drop else slice(None) for drop in (drop_b, drop_r, drop_c))
        return out[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read(self.band_index, slice(0, self.shape[1]), slice(0, self.shape[2]))
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: Any, **_: Any) -> np.ndarray:
        return np.asarray(self, dtype=dtype)
