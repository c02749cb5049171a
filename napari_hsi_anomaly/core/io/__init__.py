"""Reading and writing cubes and maps (ENVI, NumPy, TIFF)."""

from napari_hsi_anomaly.core.io.describe import describe
from napari_hsi_anomaly.core.io.readers import CUBE_SUFFIXES, LAYOUTS, read_cube
from napari_hsi_anomaly.core.io.writers import WriteError, write_cube, write_map

__all__ = [
    "CUBE_SUFFIXES",
    "LAYOUTS",
    "WriteError",
    "describe",
    "read_cube",
    "write_cube",
    "write_map",
]
