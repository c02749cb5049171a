"""napari-hsi-anomaly: find what does not belong in hyperspectral and multispectral scenes."""

__version__ = "0.1.0"
