"""``read_map``: a 2-D score map or ground truth from any format the writers and the viewer write
(``.npy``, ``.npz``, ``.tif``/``.tiff``, ENVI ``.hdr``/``.img``), read by its role."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.errors import CubeReadError, HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.guards import check_allocation, check_input_path
from napari_hsi_anomaly.core.io.numpy_io import (
    check_numbers,
    check_regular_file,
    npz_member_bytes,
    npz_members,
)

ROLES = {"scores": "scores", "gt": "ground truth", "mask": "mask", "map": "map"}
KEYS = {  # .npz keys tried, in order, for each role
    "scores": ("scores", "score", "score_map"),
    "gt": ("gt", "ground_truth", "labels", "mask"),
    "mask": ("mask", "labels"),
    "map": (),
}
MAP_READ_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".hdr", ".img")


def _squeeze2d(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    shape = arr.shape
    if arr.ndim > 2:
        arr = arr.reshape([s for s in shape if s != 1] or [1])
    if arr.ndim != 2:
        raise ShapeError(
            f"{path.name}: {what} must be one 2-D (rows, cols) map; got shape {shape}"
            + (" (a cube: score it first with hsi-anomaly score)" if len(shape) == 3 else "") + "."
        )
    return arr


def _from_npz(path: Path, role: str, key: str | None, what: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as z:
            keys = list(npz_members(z))  # members with or without the .npy suffix
            if key is None:
                wanted = [k for k in KEYS[role] if k in keys]
                if wanted:
                    key = wanted[0]
                elif len(keys) == 1:
                    key = keys[0]
                else:
                    has = ", ".join(keys) or "nothing"
                    if role in ("scores", "gt"):
                        raise HsiAnomalyError(f"{path.name} has no array '{role}' for the {what} (it has: "
                                              f"{has}); name the one to use with --{role}-key.")
                    raise HsiAnomalyError(f"{path.name}: which array is the {what}? It has {has}; "
                                          "name the one to use with a key.")
            elif key not in keys:
                raise HsiAnomalyError(
                    f"{path.name} has no array '{key}' (it has: {', '.join(keys) or 'nothing'})."
                )
            nbytes = npz_member_bytes(z, key, path.name)
    except zipfile.BadZipFile as exc:
        raise CubeReadError(f"{path.name} is not a readable .npz file ({exc}).") from exc
    check_allocation(nbytes, f"{path.name}:{key}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z[key])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CubeReadError(f"{path.name}: cannot read '{key}' ({exc}).") from exc


def _from_tiff(path: Path, what: str) -> np.ndarray:
    """A TIFF map through rasterio/GDAL (LZW, DEFLATE, ZSTD, LERC, tiled, COG, BigTIFF): the header
    first (one band, one image, the budget), then the pixels of band 1 only. A TIFF GDAL cannot open
    falls back to tifffile (uncompressed or zlib pages)."""
    from napari_hsi_anomaly.core.io.geotiff import tiff_header

    head = tiff_header(path)
    if head is None:
        return _from_tifffile(path)
    shape = (head["count"], head["height"], head["width"])
    if min(shape) < 1:
        raise CubeReadError(f"{path.name}: the TIFF declares an empty image (shape {shape}).")
    pages = _tiff_images(path, head["height"] * head["width"])
    if head["count"] != 1 or pages > 1:
        got = shape if head["count"] != 1 else (pages, *shape[1:])
        raise ShapeError(f"{path.name}: {what} must be one 2-D (rows, cols) map; got shape {got} (a cube: "
                         "score it first with hsi-anomaly score).")
    dtype = np.dtype(head["dtype"])
    check_numbers(dtype, path.name)
    check_allocation(float(head["height"]) * float(head["width"]) * dtype.itemsize,
                     f"{path.name} (decompressed)")
    from rasterio.errors import RasterioError

    from napari_hsi_anomaly.core.io.raster import _open

    try:
        with _open(path) as ds:
            return ds.read(1)
    except (RasterioError, OSError) as exc:
        raise CubeReadError(f"{path.name} is not a readable TIFF file ({exc}).") from exc


def _tiff_images(path: Path, pixels: int) -> int:
    """How many full-resolution images (pages) the TIFF holds, overviews and masks left out: GDAL shows
    only the first of a multi-page file, which must not pass for a whole map."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return max(1, int(np.prod(series.shape, dtype=np.int64)) // max(1, pixels))
    except Exception:  # noqa: BLE001 - a header tifffile cannot parse: GDAL's view stands
        return 1


def _from_tifffile(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_allocation(float(np.prod(series.shape, dtype=np.float64)) * series.dtype.itemsize,
                             f"{path.name} (decompressed)")
            return series.asarray()
    except (tifffile.TiffFileError, ValueError, IndexError, OSError, ZeroDivisionError, KeyError,
            TypeError, OverflowError) as exc:  # a malformed header (e.g. ImageWidth 0) in tifffile
        raise CubeReadError(f"{path.name} is not a readable TIFF file ({type(exc).__name__}: "
                            f"{exc}).") from exc


def read_map(path: str | Path, role: str = "map", key: str | None = None) -> np.ndarray:
    """The ``(rows, cols)`` map in ``path`` for ``role`` (``"scores"``, ``"gt"``, ``"mask"`` or ``"map"``).

    An ``.npz`` is read by role: key ``scores`` for scores, ``gt`` for ground truth (or ``key``; an
    archive with one array gives that one); anything else must hold exactly one 2-D map. Scores must
    be finite (NaN or inf refused, never dropped); ground truth finite and non-negative.
    """
    what = ROLES[role]
    path = check_input_path(path, f"{what} file")
    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CubeReadError(f"{path.name} is not a readable NumPy .npy file ({exc}).") from exc
    elif suffix == ".npz":
        arr = _from_npz(path, role, key, what)
    elif suffix in (".tif", ".tiff"):
        arr = _from_tiff(path, what)
    elif suffix in (".hdr", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip"):
        from napari_hsi_anomaly.core.io.envi import read_envi

        cube = read_envi(path)
        if cube.bands != 1:
            raise ShapeError(f"{path.name}: {what} must have one band; it has {cube.bands}.")
        arr = cube.data[0]
    else:
        raise CubeReadError(
            f"{path.name}: unknown {what} format '{path.suffix}' (use {', '.join(MAP_READ_SUFFIXES)})."
        )
    check_numbers(arr.dtype, path.name)
    check_allocation(float(np.prod(arr.shape, dtype=np.float64)) * arr.dtype.itemsize, f"{path.name}")
    arr = _squeeze2d(np.asarray(arr), path, what)
    if arr.dtype.kind == "f" and role in ("scores", "gt"):
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
            raise HsiAnomalyError(
                f"{path.name}: {n_nan:,} NaN and {n_inf:,} infinite {what} values of {arr.size:,}; "
                "they would be dropped silently and change the result: fix or replace them first "
                "(e.g. np.nan_to_num)."
            )
    if role == "gt" and arr.size and arr.min() < 0:
        raise HsiAnomalyError(
            f"{path.name}: ground truth has negative values; use 0 (normal) and 1 (anomaly)."
        )
    if role == "gt" and arr.size and arr.max() > 1:
        raise HsiAnomalyError(
            f"{path.name}: ground truth holds values up to {arr.max():g}, not only 0 (normal) and 1 "
            "(anomaly); its meaning is unknown: save it as 0/1 first (e.g. a 0/255 mask divided by 255)."
        )
    if role == "gt" and arr.dtype.kind == "f" and arr.size and not np.isin(arr, (0.0, 1.0)).all():
        raise HsiAnomalyError(f"{path.name}: ground truth holds fractional values; use 0 (normal) and 1 "
                              "(anomaly).")
    if role == "scores" and arr.size and (arr.min() < 0 or arr.max() > 1):
        raise HsiAnomalyError(
            f"{path.name}: scores range from {arr.min():g} to {arr.max():g}, outside [0, 1] where this "
            "tool's scores and --t-anom live; give a score map written by hsi-anomaly score, or scale "
            "it to [0, 1] first."
        )
    return arr
