"""(Geo)TIFF reader: multi-page or multi-sample TIFFs as cubes, GeoTIFF tags kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, ShapeError
from napari_hsi_anomaly.core.io.geotiff import tiff_header
from napari_hsi_anomaly.core.io.numpy_io import (
    check_layout,
    check_numbers,
    check_regular_file,
    to_bands_first,
)
from napari_hsi_anomaly.core.io.writers import GEOTIFF_TAGS

GDAL_NODATA = 42113


def tiff_shape(path: Path) -> tuple[tuple[int, ...], str, str]:
    """(shape, axes, photometric name) of the first series, without reading pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            s = tif.series[0]
            photometric = getattr(tif.pages[0], "photometric", None)
            return tuple(s.shape), s.axes, getattr(photometric, "name", str(photometric))
    except (tifffile.TiffFileError, ValueError, IndexError, OSError) as exc:
        raise CubeReadError(f"{path.name} is not a readable TIFF file ({exc}).") from exc


def _band_axis(shape: tuple[int, ...], axes: str) -> int | None:
    """Index of the band axis of a 3-D series from its axes ('YXS', 'SYX', 'IYX', ...)."""
    if len(shape) != 3 or "Y" not in axes or "X" not in axes:
        return None
    rest = [i for i, a in enumerate(axes) if a not in "YX"]
    return rest[0] if len(rest) == 1 else None


def _geotags(page) -> tuple[dict, float | None]:
    geo = {}
    for name, (code, _) in GEOTIFF_TAGS.items():
        tag = page.tags.get(code)
        if tag is not None:
            value = tag.value
            geo[name] = value if isinstance(value, str) else tuple(np.ravel(value).tolist())
    nodata = None
    tag = page.tags.get(GDAL_NODATA)
    if tag is not None:
        try:
            nodata = float(str(tag.value).strip("\x00 "))
        except ValueError:
            nodata = None
    return geo, nodata


def read_tiff(path: Path, layout: str | None = None) -> Cube:
    """A cube from a TIFF: memory-mapped when uncompressed and contiguous; otherwise (compressed,
    tiled, COG, BigTIFF, ...) a lazy ``RasterBands`` that GDAL decodes band by band and window by
    window on access. Band descriptions become ``band_names``."""
    import tifffile

    if layout is not None:
        check_layout(layout)
    check_regular_file(path)
    head = tiff_header(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = tuple(series.shape), series.axes
            if not shape or min(shape) < 1:
                raise CubeReadError(f"{path.name}: the TIFF declares an empty image (shape {shape}).")
            check_numbers(series.dtype, path.name, complex_ok=True)
            geo, nodata = _geotags(tif.pages[0])
            try:
                arr = tifffile.memmap(path, mode="r")
            except (ValueError, OSError):
                arr = None
    except (tifffile.TiffFileError, ValueError, IndexError, OSError, ZeroDivisionError, KeyError,
            TypeError, OverflowError) as exc:  # a malformed header (e.g. ImageWidth 0) in tifffile
        if head is None:
            raise CubeReadError(f"{path.name} is not a readable TIFF file ({type(exc).__name__}: "
                                f"{exc}).") from exc
        arr, shape, axes, geo, nodata = None, None, "", {}, None
    if arr is None and head is not None and _gdal_matches(head, shape, layout):
        return _lazy_cube(path, head, geo)
    if arr is None:
        arr = _read_whole(path, shape)
    if arr.shape != shape:
        arr = arr.reshape(shape)
    if layout in (None, "auto"):
        axis = _band_axis(shape, axes)
        if arr.ndim == 3 and axis is None:
            raise ShapeError(
                f"{path.name}: cannot tell which axis of {shape} (axes {axes}) holds the bands; "
                "pass a layout (bands-first or bands-last)."
            )
        if axis is not None:
            arr = np.moveaxis(arr, axis, 0)
        data, _ = to_bands_first(arr, "bands-first", path.name)
        interleave = "bip" if axis == 2 else "bsq"
    else:
        data, interleave = to_bands_first(arr, layout, path.name)
    meta = {"tiff_axes": axes}
    if geo:
        meta["geotiff"] = geo
    names = head.get("descriptions") if head else None
    band_names = names if names is not None and len(names) == data.shape[0] else None
    if nodata is None and head is not None:
        nodata = head["nodata"]
    return Cube(data=data, nodata=nodata, source=path, interleave=interleave, metadata=meta,
                band_names=_fill_names(band_names), georef=dict(head["georef"]) if head else {})


def _fill_names(names: list[str] | None) -> list[str] | None:
    """Band descriptions with the empty ones named by their 1-based number (GDAL: ``"Band 3"``)."""
    if names is None:
        return None
    return [n if n and n != "None" else f"Band {i + 1}" for i, n in enumerate(names)]


def _gdal_matches(head: dict, shape: tuple[int, ...] | None, layout: str | None) -> bool:
    """Whether GDAL's bands are the cube's bands: the same pixel count as tifffile's first series
    (a multi-page TIFF whose pages are bands is not one GDAL dataset) and no layout that says otherwise."""
    if layout == "bands-last" and head["count"] > 1:
        return False
    if shape is None:
        return True
    return head["count"] * head["height"] * head["width"] == int(np.prod(shape))


def _lazy_cube(path: Path, head: dict, geo: dict) -> Cube:
    from napari_hsi_anomaly.core.io.raster import RasterBands

    check_numbers(np.dtype(head["dtype"]), path.name, complex_ok=True)
    data = RasterBands(path, (head["count"], head["height"], head["width"]), head["dtype"])
    meta: dict = {"tiff": {k: head[k] for k in ("compression", "tiled", "overviews", "layout")}}
    if geo:
        meta["geotiff"] = geo
    names = head.get("descriptions")
    return Cube(data=data, nodata=head["nodata"], source=path, interleave="bsq", metadata=meta,
                band_names=_fill_names(names), georef=dict(head["georef"]))


def _read_whole(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A TIFF GDAL cannot split into bands (e.g. compressed pages), decoded whole by tifffile."""
    import tifffile

    from napari_hsi_anomaly.core.guards import check_allocation

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            nbytes = float(np.prod(shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize
            check_allocation(nbytes, f"{path.name} (compressed pages: read whole, decompressed)",
                             hint="save it uncompressed (then it is memory-mapped)")
            return series.asarray()
    except (tifffile.TiffFileError, ValueError, IndexError, OSError) as exc:
        raise CubeReadError(f"{path.name} is not a readable TIFF file ({exc}).") from exc
