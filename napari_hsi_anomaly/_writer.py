"""npe2 writers: a 2-D Image (score map) or Labels (mask) layer to .npy, .tif or ENVI, georeferenced like
the cube in the layer's ``metadata["like"]`` or ``metadata["cube"]``, or the ``metadata["georef"]`` of a
map the reader opened (GeoTIFF CRS and transform, ENVI map info); a 3-D layer (a cube's band stack, an
RGB) as a cube (``write_cube``: GeoTIFF with band names, ENVI or ``.npy``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.io import write_cube, write_map


def _like(meta: dict, shape: tuple[int, int] | None = None) -> Cube | None:
    """The cube whose georeferencing a saved layer gets: its metadata's ``like`` (a result layer's
    scene, e.g. the Detect dock's heatmap and mask) or ``cube``; else, for a map the reader opened,
    its own ``georef`` (so a re-opened score map saved again keeps its CRS)."""
    md = (meta or {}).get("metadata") or {}
    for key in ("like", "cube"):
        if isinstance(md.get(key), Cube):
            return md[key]
    georef = md.get("georef")
    if isinstance(georef, dict) and georef and shape is not None:
        # a zero-cost stand-in cube of the map's grid that carries the georeferencing
        return Cube(np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (1, *shape)), georef=dict(georef))
    return None


def _write(path: str, data: Any, meta: dict, kind: str) -> list[str]:
    md = (meta or {}).get("metadata") or {}
    name = (meta or {}).get("name", "layer")
    if getattr(data, "ndim", np.ndim(data)) == 3 and isinstance(md.get("cube"), Cube) \
            and md["cube"].shape == tuple(data.shape):
        return [str(write_cube(path, md["cube"]))]  # the band stack: the cube, lazily, with its bands
    arr = np.asarray(data)
    if arr.ndim == 3 and (meta or {}).get("rgb") and arr.shape[-1] in (3, 4):
        arr = np.moveaxis(arr, -1, 0)  # an RGB(A) image: colour channels as bands
    if arr.ndim == 3:
        like = _like(meta, arr.shape[1:])
        georef = like.georef if like is not None and (like.rows, like.cols) == arr.shape[1:] else {}
        cube = Cube(arr, georef=dict(georef), band_names=_names(md, arr.shape[0]))
        return [str(write_cube(path, cube))]
    if arr.ndim != 2:
        raise ShapeError(
            f"Only 2-D maps or 3-D (bands, rows, cols) {kind} layers can be saved this way; "
            f"'{name}' has shape {arr.shape}."
        )
    return [str(write_map(path, arr, like=_like(meta, arr.shape)))]


def _names(md: dict, n: int) -> list[str] | None:
    names = md.get("band_names")
    return list(names) if isinstance(names, (list, tuple)) and len(names) == n else None


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Save a 2-D score map (float32 kept as is)."""
    return _write(path, data, meta, "image")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save a 2-D mask / label image (uint8 when the labels fit)."""
    arr = np.asarray(data)
    if arr.size and arr.dtype.kind in "iub" and arr.min() >= 0 and arr.max() <= 255:
        arr = arr.astype(np.uint8)
    return _write(path, arr, meta, "labels")
