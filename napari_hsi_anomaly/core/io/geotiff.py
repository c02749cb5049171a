"""Georeferencing (``Cube.georef``) from and to GeoTIFF (through rasterio) and ENVI ``map info``.

``georef`` is a dict: ``"crs"`` (WKT text or None), ``"transform"`` (the affine ``(a, b, c, d, e, f)``
of rasterio: x = a*col + b*row + c, y = d*col + e*row + f, at the pixels' outer corner) and, for ENVI
sources, ``"envi"`` (the header's ``map info``, ``coordinate system string``, ... as read).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np

ENVI_GEO_KEYS = ("map info", "coordinate system string", "projection info", "pixel size")
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def tiff_header(path: Path) -> dict | None:
    """What GDAL says about a (Geo)TIFF without decoding pixels: ``count``, ``height``, ``width``,
    ``dtype``, ``compression`` (None when uncompressed), ``tiled``, ``overviews``, ``descriptions``
    (band names or None), ``nodata``, ``georef``; None when rasterio cannot open it."""
    try:
        import rasterio  # noqa: F401
        from rasterio.errors import NotGeoreferencedWarning, RasterioError
    except ImportError:  # pragma: no cover - rasterio is a dependency
        return None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                crs = ds.crs.to_wkt() if ds.crs else None
                transform = tuple(float(v) for v in tuple(ds.transform)[:6])
                comp = ds.compression
                desc = list(ds.descriptions)
                tags = ds.tags(ns="IMAGE_STRUCTURE")
                head = {
                    "count": ds.count,
                    "height": ds.height,
                    "width": ds.width,
                    "dtype": ds.dtypes[0] if ds.count else None,
                    "compression": comp.name.lower() if comp is not None else None,
                    "tiled": bool(ds.profile.get("tiled", False)),
                    "overviews": len(ds.overviews(1)) if ds.count else 0,
                    "layout": tags.get("LAYOUT"),
                    "descriptions": [str(d) for d in desc] if any(desc) else None,
                    "nodata": float(ds.nodata) if ds.nodata is not None else None,
                }
    except (RasterioError, OSError):
        return None
    geo: dict = {}
    if crs:
        geo["crs"] = crs
    if crs or not np.allclose(transform, IDENTITY):
        geo["transform"] = transform
    head["georef"] = geo
    return head


def tiff_georef(path: Path) -> tuple[dict, float | None]:
    """(georef, nodata) of a (Geo)TIFF read through rasterio; ``({}, None)`` when it has neither."""
    head = tiff_header(path)
    return ({}, None) if head is None else (head["georef"], head["nodata"])


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


TIFF_FORMATS = ("tif", "cog")
COMPRESSIONS = ("deflate", "lzw", "zstd", "none")


def write_geotiff(path: Path, arr: np.ndarray, georef: dict, nodata: float | None = None, *,
                  descriptions: list[str] | None = None, fmt: str = "tif",
                  compress: str = "deflate") -> None:
    """Write ``arr`` (``(rows, cols)`` or ``(bands, rows, cols)``) as a tiled, compressed GeoTIFF
    with ``georef``'s CRS and transform, the ``nodata`` tag and band ``descriptions`` (rasterio);
    ``fmt="cog"``: a Cloud-Optimized GeoTIFF (GDAL's COG driver: tiles, overviews, header first).
    Written through ``core.atomic.atomic_file``: ``path`` is whole or as it was, never truncated."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.transform import Affine

    data = arr[None] if arr.ndim == 2 else arr
    bands, rows, cols = data.shape
    t = georef.get("transform")
    crs_text = georef.get("crs")
    compress = "none" if compress in (None, "none") else compress
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": bands,
        "dtype": np.dtype(data.dtype).name,
    }
    if crs_text:
        profile["crs"] = CRS.from_user_input(crs_text)
    if t is not None:
        profile["transform"] = Affine(*t)
    if compress != "none":
        profile["compress"] = compress
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if bands > 1:
        profile["interleave"] = "band"
    if nodata is not None:
        profile["nodata"] = nodata

    def fill(ds) -> None:
        for b in range(bands):
            ds.write(np.asarray(data[b]), b + 1)
            if descriptions and b < len(descriptions) and descriptions[b]:
                ds.set_band_description(b + 1, str(descriptions[b]))

    from napari_hsi_anomaly.core.atomic import atomic_file

    with warnings.catch_warnings(), atomic_file(path) as tmp:  # a temporary file, fsync, rename
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a plain TIFF is fine
        if fmt != "cog":
            with rasterio.open(tmp, "w", **profile) as ds:
                fill(ds)
        else:
            _write_cog(tmp, profile, fill, compress)


def _write_cog(path: Path, profile: dict, fill, compress: str) -> None:
    """GDAL's COG driver copies a finished dataset (it cannot be written band by band)."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    for key in ("tiled", "blockxsize", "blockysize"):
        profile.pop(key, None)
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            fill(ds)
        with mem.open() as src:
            cog_opts = {"compress": compress.upper() if compress != "none" else "NONE",
                        "blocksize": 256, "overviews": "AUTO", "bigtiff": "IF_SAFER"}
            rasterio.shutil.copy(src, path, driver="COG", **cog_opts)
