"""``read_cube``: one entry point for ENVI, NumPy, TIFF and Sentinel-2 SAFE cubes; ``read_map`` for 2-D
maps (scores, masks, ground truth) in every format ``write_map`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.bands import take_as_sentinel2
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.io.envi import DATA_SUFFIXES, read_envi
from napari_hsi_anomaly.core.io.geotiff import envi_georef
from napari_hsi_anomaly.core.io.numpy_io import LAYOUTS, read_npy, read_npz
from napari_hsi_anomaly.core.io.safe import DEFAULT_RESOLUTION, is_safe, read_safe
from napari_hsi_anomaly.core.io.tiff import read_tiff

CUBE_SUFFIXES = (".hdr", ".npy", ".npz", ".tif", ".tiff", ".SAFE", ".zip") + tuple(
    s for s in DATA_SUFFIXES if s
)

__all__ = ["CUBE_SUFFIXES", "LAYOUTS", "read_cube", "read_map"]


def read_cube(
    path: str | Path,
    *,
    layout: str | None = None,
    key: str = "cube",
    resolution: int = DEFAULT_RESOLUTION,
    date: int | None = None,
) -> Cube:
    """Open a cube as ``(bands, rows, cols)`` (memory-mapped where the format allows).

    ``layout`` applies to arrays without a header (``.npy``, ``.npz``, TIFF); ENVI files follow their
    header. ``key`` is the ``.npz`` array to read. ``resolution`` (10, 20 or 60 m) is the grid of a
    Sentinel-2 ``.SAFE`` folder or its ``.zip``. Georeferencing goes to ``Cube.georef`` (GeoTIFF CRS
    and transform, ENVI ``map info``). ``date``: date K of a 4-D stack ``(dates, rows, cols, bands)``
    (``core.stack.read_stack``). Raises ``CubeReadError``.
    """
    path = Path(path).expanduser()
    if date is not None:
        from napari_hsi_anomaly.core.stack import read_stack

        return read_stack(path, layout=layout, key=key).cube(date)
    if not path.exists():
        raise CubeReadError(f"{path} does not exist.")
    if path.is_dir():
        if is_safe(path):
            return read_safe(path, resolution)
        raise CubeReadError(f"{path} is a folder, not a cube file (nor a Sentinel-2 .SAFE folder).")
    suffix = path.suffix.lower()
    try:
        if suffix in (".npy", ".npz"):  # header-less: 13 unnamed bands are Sentinel-2 as in a stack
            cube = read_npy(path, layout) if suffix == ".npy" else read_npz(path, layout, key)
            take_as_sentinel2(cube)
            return cube
        if suffix in (".tif", ".tiff"):
            cube = read_tiff(path, layout)
            take_as_sentinel2(cube)
            return cube
        if suffix == ".zip":
            if not is_safe(path):
                raise CubeReadError(f"{path.name} is a zip file but not a Sentinel-2 .SAFE product.")
            return read_safe(path, resolution)
        if suffix == ".hdr" or suffix in DATA_SUFFIXES:
            cube = read_envi(path)
            cube.georef = {**envi_georef(cube.metadata.get("envi", {})), **cube.georef}
            return cube
    except (UnicodeDecodeError, MemoryError) as exc:
        raise CubeReadError(f"Cannot read {path.name}: {exc}.") from exc
    known = ", ".join(s for s in CUBE_SUFFIXES)
    raise CubeReadError(f"{path.name}: unknown cube format '{path.suffix}' (known: {known}).")


def read_map(path: str | Path, key: str | None = None, *, role: str | None = None) -> np.ndarray:
    """A ``(rows, cols)`` map (scores, mask or ground truth) from ``.npy``, ``.npz``, ``.tif``/``.tiff``
    or ENVI: what ``write_map`` and napari's *Save scores.../Save mask...* write (one implementation:
    ``core.io.map_reader.read_map``; ``key`` names the ``.npz`` array, else the one named for ``role``)."""
    from napari_hsi_anomaly.core.io.map_reader import read_map as _read_map

    return _read_map(path, role or "map", key)


def is_map_file(path: str | Path) -> bool:
    """Whether ``path`` holds a 2-D map (cheap: headers only); used by the napari reader."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False).squeeze().ndim == 2
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape
                return len(shape) == 2 or (len(shape) == 3 and 1 in (shape[0], shape[-1]))
        if suffix == ".hdr":
            from napari_hsi_anomaly.core.io.envi_header import looks_like_envi_header, read_header

            return looks_like_envi_header(path) and str(read_header(path).get("bands", "")).strip() == "1"
    except Exception:  # a probe: anything unreadable is "not a map"
        return False
    return False
