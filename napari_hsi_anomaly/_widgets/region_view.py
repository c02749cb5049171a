"""Showing a flagged region in the viewer: its outline (a Shapes layer) and the camera on it."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly._widgets.detect_layers import find_layer
from napari_hsi_anomaly._widgets.scene_view import camera
from napari_hsi_anomaly.core.regions import RegionInfo

SELECTION_LAYER = "selected region"


def highlight_region(viewer: Any, region: RegionInfo, reference: Any) -> Any:
    """Outline the region's bounding box: one yellow rectangle in the ``SELECTION_LAYER`` Shapes layer
    (made on ``reference``'s grid, the layer selection kept); returns the layer."""
    r0, r1, c0, c1 = region.bbox
    pad = 1.0
    rect = np.array([[r0 - 0.5 - pad, c0 - 0.5 - pad], [r1 - 0.5 + pad, c1 - 0.5 + pad]])
    width = max(0.4, max(r1 - r0, c1 - c0) / 25)
    layer = find_layer(viewer, SELECTION_LAYER)
    if layer is None:
        kw = ({"scale": tuple(reference.scale)[-2:], "translate": tuple(reference.translate)[-2:]}
              if reference is not None else {})
        selected = set(viewer.layers.selection)
        layer = viewer.add_shapes(
            [rect], shape_type="rectangle", edge_color="yellow", face_color="transparent",
            edge_width=width, name=SELECTION_LAYER, **kw,
        )
        if selected:
            viewer.layers.selection = selected
    else:
        layer.data = [rect]
        layer.shape_type = ["rectangle"]
        layer.edge_width = [width]
        layer.edge_color = "yellow"
        layer.face_color = "transparent"
    return layer


def go_to_region(viewer: Any, region: RegionInfo, reference: Any, shape: tuple[int, int]) -> None:
    """Centre the camera on the region's centroid and zoom to a few times its bounding box (never out
    beyond the whole ``shape`` (rows, cols) scene, never in beyond 16x)."""
    row, col = region.centroid
    r0, r1, c0, c1 = region.bbox
    if reference is not None:
        lead = [0.0] * (reference.ndim - 2)
        centre = np.asarray(reference.data_to_world([*lead, row, col]))[-2:]
        scale = np.abs(np.asarray(reference.scale)[-2:])
    else:
        centre, scale = np.array([row, col]), np.ones(2)
    camera(viewer).center = tuple(float(v) for v in centre)
    extent = max((r1 - r0) * scale[0], (c1 - c0) * scale[1], 16 * float(scale.min())) * 4
    size = getattr(getattr(viewer, "canvas", None), "size", None)  # napari >= 0.9 (rows, cols)
    if size is None or min(size) <= 1:
        size = (600, 800)
    whole = min(size[0] / (shape[0] * scale[0]), size[1] / (shape[1] * scale[1]))
    camera(viewer).zoom = float(np.clip(min(size) / extent, whole, max(whole, 16.0)))
