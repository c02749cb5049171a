"""npe2 reader: ENVI, NumPy and TIFF cubes as a band stack plus an RGB composite."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.io import read_cube

LayerData = tuple[Any, dict, str]
READER_SUFFIXES = (".hdr", ".npy", ".npz", ".tif", ".tiff")
SAMPLE_PIXELS = 256 * 256  # per band, for contrast limits
SAMPLE_BANDS = 8


def _npz_member_ndim(path: Path, key: str = "cube") -> int | None:
    """``ndim`` of ``key`` in an ``.npz`` from its header only; None when absent or unreadable."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape = np.lib.format.read_array_header_1_0(f)[0]
            else:
                shape = np.lib.format.read_array_header_2_0(f)[0]
            return len(shape)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None


def _is_cube_like(path: Path) -> bool:
    """Whether ``path`` looks like a 3-D cube (cheap: headers only)."""
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        from napari_hsi_anomaly.core.io.envi_header import looks_like_envi_header

        return looks_like_envi_header(path)  # not e.g. an Analyze 7.5 header
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 3
        except (ValueError, OSError, EOFError):
            return False
    if suffix == ".npz":
        ndim = _npz_member_ndim(path)
        return ndim is None or ndim == 3  # None: let read_cube say which keys it has
    if suffix in (".tif", ".tiff"):
        from napari_hsi_anomaly.core.io.tiff import tiff_shape

        try:
            shape, axes, photometric = tiff_shape(path)
        except HsiAnomalyError:
            return False
        photo = photometric.upper() in ("RGB", "YCBCR", "PALETTE")
        return len(shape) == 3 and not (photo and shape[-1] in (3, 4))
    return False


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader for ``path`` if it is a cube file we handle, else None (napari tries others)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        return None
    for p in paths:
        p = Path(p)
        if p.suffix.lower() not in READER_SUFFIXES or not p.is_file() or not _is_cube_like(p):
            return None
    return read_layers


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Layer data for each file: the band stack then its RGB composite."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        layers.extend(cube_layers(read_cube(p)))
    return layers


def contrast_limits(cube: Cube) -> tuple[float, float]:
    """1st-99th percentile of a strided subsample (a few bands, at most ~65k pixels each)."""
    step = max(1, int(np.ceil(np.sqrt(cube.rows * cube.cols / SAMPLE_PIXELS))))
    bands = np.unique(np.linspace(0, cube.bands - 1, min(cube.bands, SAMPLE_BANDS)).astype(int))
    sample = np.stack([np.asarray(cube.data[b, ::step, ::step]) for b in bands]).astype(np.float64)
    if np.iscomplexobj(sample):
        sample = np.abs(sample)
    ok = np.isfinite(sample)
    if cube.nodata is not None:
        ok &= sample != cube.nodata
    if not ok.any():
        return (0.0, 1.0)
    lo, hi = np.percentile(sample[ok], (1, 99))
    if not hi > lo:
        lo, hi = float(sample[ok].min()), float(sample[ok].max())
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def cube_layers(cube: Cube) -> list[LayerData]:
    """An Image layer for the bands (lazy: memmaps stay memmaps) and an RGB composite layer."""
    meta = {
        "cube": cube,
        "wavelengths": cube.wavelengths,
        "band_names": cube.band_names,
        "band_labels": [cube.band_label(i) for i in range(cube.bands)],
        "source": str(cube.source) if cube.source is not None else None,
    }
    stack = (
        cube.data,
        {
            "name": cube.name,
            "metadata": meta,
            "contrast_limits": contrast_limits(cube),
            "axis_labels": ("band", "row", "col"),
            "colormap": "gray",
        },
        "image",
    )
    rgb_bands = cube.rgb_bands()
    rgb = (
        cube.rgb(rgb_bands),
        {
            "name": f"{cube.name} RGB",
            "rgb": True,
            "metadata": {"cube": cube, "rgb_bands": rgb_bands},
            "visible": True,
        },
        "image",
    )
    return [stack, rgb]
