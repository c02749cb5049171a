"""``read_cube``: one entry point for ENVI, NumPy and TIFF cubes, dispatching on the extension."""

from __future__ import annotations

from pathlib import Path

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.io.envi import DATA_SUFFIXES, read_envi
from napari_hsi_anomaly.core.io.numpy_io import LAYOUTS, read_npy, read_npz
from napari_hsi_anomaly.core.io.tiff import read_tiff

CUBE_SUFFIXES = (".hdr", ".npy", ".npz", ".tif", ".tiff") + tuple(s for s in DATA_SUFFIXES if s)

__all__ = ["CUBE_SUFFIXES", "LAYOUTS", "read_cube"]


def read_cube(path: str | Path, *, layout: str | None = None, key: str = "cube") -> Cube:
    """Open a cube as ``(bands, rows, cols)`` (memory-mapped where the format allows).

    ``layout`` applies to arrays without a header (``.npy``, ``.npz``, TIFF): ``bands-last``
    (default for NumPy, SPy's ``(rows, cols, bands)``), ``bands-first`` or ``auto``; ENVI files
    follow their header. ``key`` is the ``.npz`` array to read. Raises ``CubeReadError``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CubeReadError(f"{path} does not exist.")
    if path.is_dir():
        raise CubeReadError(f"{path} is a folder, not a cube file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return read_npy(path, layout)
        if suffix == ".npz":
            return read_npz(path, layout, key)
        if suffix in (".tif", ".tiff"):
            return read_tiff(path, layout)
        if suffix == ".hdr" or suffix in DATA_SUFFIXES:
            return read_envi(path)
    except (UnicodeDecodeError, MemoryError) as exc:
        raise CubeReadError(f"Cannot read {path.name}: {exc}.") from exc
    known = ", ".join(s for s in CUBE_SUFFIXES)
    raise CubeReadError(f"{path.name}: unknown cube format '{path.suffix}' (known: {known}).")
