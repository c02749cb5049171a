"""npe2 writers: a 2-D Image (score map) or Labels (mask) layer to .npy, .tif or ENVI, georeferenced like
the cube in the layer's ``metadata["like"]`` or ``metadata["cube"]`` (GeoTIFF CRS and transform, ENVI
map info)."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.io import write_map


def _like(meta: dict) -> Cube | None:
    """The cube whose georeferencing a saved layer gets: its metadata's ``like`` (a result layer's
    scene, e.g. the Detect dock's heatmap and mask) or ``cube``."""
    md = (meta or {}).get("metadata") or {}
    for key in ("like", "cube"):
        if isinstance(md.get(key), Cube):
            return md[key]
    return None


def _write(path: str, data: Any, meta: dict, kind: str) -> list[str]:
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise ShapeError(
            f"Only 2-D {kind} layers (rows, cols) can be saved this way; "
            f"'{(meta or {}).get('name', 'layer')}' has shape {arr.shape}."
        )
    return [str(write_map(path, arr, like=_like(meta)))]


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Save a 2-D score map (float32 kept as is)."""
    return _write(path, data, meta, "image")


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save a 2-D mask / label image (uint8 when the labels fit)."""
    arr = np.asarray(data)
    if arr.size and arr.dtype.kind in "iub" and arr.min() >= 0 and arr.max() <= 255:
        arr = arr.astype(np.uint8)
    return _write(path, arr, meta, "labels")
