"""Headless core: no Qt import anywhere below this package. A cube is ``(bands, rows, cols)``."""

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import (
    CancelledError,
    CubeReadError,
    HsiAnomalyError,
    ModelError,
    ShapeError,
)

__all__ = [
    "CancelledError",
    "Cube",
    "CubeReadError",
    "HsiAnomalyError",
    "ModelError",
    "ShapeError",
]
