"""What the Cube dock knows about layers and cubes: which layers are cubes, short texts about them."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube


def layer_cube(layer: Any) -> Cube | None:
    """The ``Cube`` behind an Image layer: its metadata's, or the layer's 3-D data wrapped (cached)."""
    cube = layer.metadata.get("cube") if hasattr(layer, "metadata") else None
    if isinstance(cube, Cube):
        return cube
    if getattr(layer, "rgb", False) or getattr(layer, "ndim", 0) != 3:
        return None
    cube = Cube(np.asarray(layer.data))
    layer.metadata["cube"] = cube
    return cube


def is_cube_layer(layer: Any) -> bool:
    """An Image layer that is, or can be wrapped as, a ``(bands, rows, cols)`` cube."""
    from napari.layers import Image

    if not isinstance(layer, Image) or layer.rgb:
        return False
    return isinstance(layer.metadata.get("cube"), Cube) or layer.ndim == 3


def band_text(cube: Cube, i: int) -> str:
    """``"B04 665 nm"`` (or ``"band 4 · 665 nm"`` without band names)."""
    label = cube.band_label(i)
    if cube.band_names is None and cube.wavelengths is not None:
        return f"band {i + 1} · {label}"
    return label


def describe_cube(cube: Cube) -> str:
    """A few short lines about the cube for the dock."""
    lines = [f"{cube.bands} bands × {cube.rows} × {cube.cols} px · {cube.dtype}"]
    wl = cube.wavelengths
    span = f"{np.nanmin(wl):.0f}–{np.nanmax(wl):.0f} nm" if wl is not None and np.isfinite(wl).any() else ""
    lines.append(" · ".join(x for x in (span or "no wavelengths", cube.value_label(False)) if x))
    lines.append(f"no-data {cube.nodata:g}" if cube.nodata is not None else "no no-data value")
    return "\n".join(lines)


def read_layers(path: str) -> list[tuple[Any, dict, str]]:
    """The reader's layer data (band stack, RGB composite, ground truth), off the GUI thread;
    ``HsiAnomalyError`` for a file that holds no cube (a 2-D map)."""
    from pathlib import Path

    from napari_hsi_anomaly._reader import read_layers
    from napari_hsi_anomaly.core.errors import CubeReadError

    layers = read_layers(path)
    if not any(isinstance((kw or {}).get("metadata", {}).get("cube"), Cube) for _, kw, _ in layers):
        raise CubeReadError(
            f"{Path(path).name} holds a 2-D map, not a cube (bands, rows, cols): open it with "
            "File > Open to add it as a layer, or choose a cube file."
        )
    return layers


def date_cube(viewer: Any, layer: Any) -> Cube | None:
    """For a stack-of-dates layer (reader metadata ``stack``, ``date_axis``): the cube of the date the
    date slider is on (one ``Cube`` per date, cached on the layer so it stays the same object);
    None for other layers."""
    stack = layer.metadata.get("stack")
    if stack is None:
        return None
    axis = viewer.dims.ndim - layer.ndim + int(layer.metadata.get("date_axis", 0))
    k = int(viewer.dims.current_step[axis]) if 0 <= axis < viewer.dims.ndim else 0
    k = min(max(k, 0), stack.n_dates - 1)
    cache = layer.metadata.setdefault("date_cubes", {})
    if k not in cache:
        first = layer.metadata.get("cube")
        cache[k] = first if k == 0 and isinstance(first, Cube) else stack.cube(k)
    return cache[k]
