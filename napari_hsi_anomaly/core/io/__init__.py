"""Reading and writing cubes and maps (ENVI, NumPy, TIFF, Sentinel-2 SAFE)."""

from napari_hsi_anomaly.core.io.describe import describe
from napari_hsi_anomaly.core.io.readers import CUBE_SUFFIXES, LAYOUTS, read_cube, read_map
from napari_hsi_anomaly.core.io.writers import WriteError, write_cube, write_map

__all__ = [
    "CUBE_SUFFIXES",
    "LAYOUTS",
    "WriteError",
    "describe",
    "read_cube",
    "read_map",
    "write_cube",
    "write_map",
]
