"""The detectors on ``xarray.DataArray`` cubes (rioxarray's ``open_rasterio``, stackstac, ...).

``detect_xarray(da, method=..., **params)`` takes a DataArray with a band dimension and two spatial
ones, and returns the score map as a DataArray on the same spatial coordinates, with the CRS and
transform kept (``rio`` accessor where rioxarray is installed, and the ``crs``/``spatial_ref``
coordinate and attributes as they were). Needs the ``[xarray]`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError

BAND_DIMS = ("band", "bands", "wavelength", "spectral", "channel")


def _band_dim(da: Any, band_dim: str | None) -> str:
    if band_dim is not None:
        if band_dim not in da.dims:
            raise ShapeError(f"The DataArray has no dimension '{band_dim}' (its dimensions: {da.dims}).")
        return band_dim
    found = [d for d in da.dims if str(d).lower() in BAND_DIMS]
    if len(found) != 1:
        raise ShapeError(
            f"Cannot tell the band dimension of a DataArray with dimensions {da.dims}; pass band_dim=."
        )
    return found[0]


def _georef(da: Any) -> dict:
    """``Cube.georef`` from rioxarray's accessor when it is installed and the array has a CRS."""
    try:
        import rioxarray  # noqa: F401

        crs = da.rio.crs
        transform = da.rio.transform()
    except Exception:  # noqa: BLE001 - rioxarray absent or no spatial metadata: no georef
        return {}
    geo: dict = {"transform": tuple(float(v) for v in tuple(transform)[:6])}
    if crs is not None:
        geo["crs"] = crs.to_wkt()
    return geo


def dataarray_to_cube(da: Any, *, band_dim: str | None = None) -> Cube:
    """A ``Cube`` viewing ``da`` as ``(bands, rows, cols)``: band names from the band coordinate's
    labels (text) or wavelengths (numbers >= 300, taken as nm), no-data from ``_FillValue``/``nodata``."""
    bdim = _band_dim(da, band_dim)
    if da.ndim != 3:
        raise ShapeError(f"A cube DataArray needs 3 dimensions (band and two spatial); got {da.dims}.")
    da = da.transpose(bdim, *[d for d in da.dims if d != bdim])
    names, wavelengths = None, None
    if bdim in da.coords:
        labels = np.asarray(da.coords[bdim].values)
        if labels.dtype.kind in "US O":
            names = [str(v) for v in labels]
        elif labels.dtype.kind in "fiu" and labels.size and np.all(labels >= 300):
            wavelengths = labels.astype(np.float64)
    long_names = da.attrs.get("long_name")
    if names is None and isinstance(long_names, (list, tuple)) and len(long_names) == da.shape[0]:
        names = [str(v) for v in long_names]
    nodata = da.attrs.get("_FillValue", da.attrs.get("nodata"))
    return Cube(data=da.data,  # numpy, or dask (read by block like a memory map)
                wavelengths=wavelengths, band_names=names,
                nodata=float(nodata) if nodata is not None else None,
                scale_factor=da.attrs.get("scale_factor"), georef=_georef(da))


def detect_xarray(da: Any, method: str | None = None, *, band_dim: str | None = None,
                  reference: Any = None, **params: Any) -> Any:
    """Score ``da`` (a DataArray with a band dimension) with detector ``method`` (default: the
    registry's) fitted on ``reference`` (another DataArray; default ``da`` itself). Returns a float32
    DataArray of the spatial dimensions, coordinates, attributes and CRS kept, named
    ``"anomaly_score"`` with ``attrs["method"]``."""
    import xarray as xr

    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD, get_detector

    method = method or DEFAULT_METHOD
    cube = dataarray_to_cube(da, band_dim=band_dim)
    ref = cube if reference is None else dataarray_to_cube(reference, band_dim=band_dim)
    scores = get_detector(method)(**params).fit([ref]).score(cube).score_map
    bdim = _band_dim(da, band_dim)
    template = da.isel({bdim: 0}, drop=True)
    out = xr.DataArray(np.asarray(scores, dtype=np.float32), dims=template.dims, coords=template.coords,
                       attrs={k: v for k, v in da.attrs.items() if k not in ("long_name", "scale_factor",
                                                                          "add_offset", "_FillValue")},
                       name="anomaly_score")
    out.attrs.update(method=method, long_name="anomaly score", _FillValue=np.float32(np.nan))
    if cube.georef.get("crs"):
        from contextlib import suppress

        with suppress(Exception):  # rioxarray: keep the CRS where the accessor exists
            out = out.rio.write_crs(cube.georef["crs"])
    return out
