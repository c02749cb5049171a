"""Reading and writing cubes and maps (ENVI, NumPy, TIFF)."""

from napari_hsi_anomaly.core.io.writers import WriteError, write_cube, write_map

__all__ = ["WriteError", "write_cube", "write_map"]
