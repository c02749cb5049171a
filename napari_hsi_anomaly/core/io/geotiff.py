"""Georeferencing (``Cube.georef``) from and to GeoTIFF (through rasterio) and ENVI ``map info``.

``georef`` is a dict: ``"crs"`` (WKT text or None), ``"transform"`` (the affine ``(a, b, c, d, e, f)``
of rasterio: x = a*col + b*row + c, y = d*col + e*row + f, at the pixels' outer corner) and, for ENVI
sources, ``"envi"`` (the header's ``map info``, ``coordinate system string``, ... as read).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

ENVI_GEO_KEYS = ("map info", "coordinate system string", "projection info", "pixel size")
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def tiff_georef(path: Path) -> tuple[dict, float | None]:
    """(georef, nodata) of a (Geo)TIFF read through rasterio; ``({}, None)`` when it has neither."""
    try:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioError
    except ImportError:  # pragma: no cover - rasterio is a dependency
        return {}, None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                crs = ds.crs.to_wkt() if ds.crs else None
                transform = tuple(float(v) for v in tuple(ds.transform)[:6])
                nodata = ds.nodata
    except (RasterioError, OSError):
        return {}, None
    geo: dict = {}
    if crs:
        geo["crs"] = crs
    if crs or not np.allclose(transform, IDENTITY):
        geo["transform"] = transform
    return geo, (float(nodata) if nodata is not None else None)


def _num(v: object) -> float | None:
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def envi_georef(header: dict) -> dict:
    """``georef`` from an ENVI header's ``map info`` (transform) and ``coordinate system string`` or UTM
    zone (CRS); ``{}`` without a usable ``map info``."""
    kept = {k: header[k] for k in ENVI_GEO_KEYS if k in header}
    info = header.get("map info")
    if not isinstance(info, list) or len(info) < 7:
        return {"envi": kept} if kept else {}
    vals = [_num(v) for v in info[1:7]]
    if any(v is None for v in vals):
        return {"envi": kept}
    rx, ry, east, north, dx, dy = vals  # type: ignore[misc]
    rot = next((_num(v.split("=", 1)[1]) for v in info if str(v).strip().lower().startswith("rotation")), 0)
    geo: dict = {"envi": kept}
    if rot:  # a rotated grid: keep the header keys only
        return geo
    geo["transform"] = (dx, 0.0, east - (rx - 1) * dx, 0.0, -dy, north + (ry - 1) * dy)
    crs = header.get("coordinate system string")
    if isinstance(crs, list):  # the parser split the WKT on its commas
        crs = ",".join(crs)
    if crs:
        geo["crs"] = str(crs).strip() or None
    elif str(info[0]).strip().upper() == "UTM" and len(info) >= 9:
        zone = _num(info[7])
        south = str(info[8]).strip().lower().startswith("s")
        datum = str(info[9]).strip().upper() if len(info) > 9 else "WGS-84"
        if zone and datum in ("WGS-84", "WGS84"):
            geo["crs"] = _epsg_wkt(int((32700 if south else 32600) + zone))
    return geo


def _epsg_wkt(code: int) -> str | None:
    with contextlib.suppress(Exception):
        from rasterio.crs import CRS

        return CRS.from_epsg(code).to_wkt()
    return None


def georef_to_envi(georef: dict) -> dict[str, object]:
    """ENVI header keys for ``georef``: the source's own keys when it was ENVI, else ``map info``
    (tie point at pixel 1, 1) and ``coordinate system string`` (ESRI WKT) from the CRS and transform."""
    if not georef:
        return {}
    if georef.get("envi"):
        return dict(georef["envi"])
    t = georef.get("transform")
    if t is None or t[1] != 0 or t[3] != 0:
        return {}  # a rotated or absent grid is not written as map info
    a, _, c, _, e, f = t
    name, extra, wkt_esri = "Arbitrary", [], None
    crs_text = georef.get("crs")
    if crs_text:
        with contextlib.suppress(Exception):
            from rasterio.crs import CRS

            crs = CRS.from_user_input(crs_text)
            epsg = crs.to_epsg()
            if epsg and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
                name = "UTM"
                extra = [epsg % 100, "North" if epsg < 32700 else "South", "WGS-84"]
            wkt_esri = crs.to_wkt(version="WKT1_ESRI")
    info = [name, 1.0, 1.0, float(c), float(f), float(a), float(-e), *extra, "units=Meters"]
    out: dict[str, object] = {"map info": info}
    if wkt_esri:  # as a list: the header writer keeps commas only between list items
        out["coordinate system string"] = [part.strip() for part in wkt_esri.split(",")]
    return out


def write_geotiff(path: Path, arr: np.ndarray, georef: dict, nodata: float | None = None) -> None:
    """Write a 2-D array as a single-band GeoTIFF with ``georef``'s CRS and transform (rasterio)."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    t = georef.get("transform")
    crs_text = georef.get("crs")
    profile = {
        "driver": "GTiff",
        "width": arr.shape[1],
        "height": arr.shape[0],
        "count": 1,
        "dtype": arr.dtype.name,
        "crs": CRS.from_user_input(crs_text) if crs_text else None,
        "transform": Affine(*t) if t is not None else Affine.identity(),
        "compress": "deflate",
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr, 1)
