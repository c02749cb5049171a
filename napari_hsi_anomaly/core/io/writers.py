"""Writers: score maps / masks and whole cubes, every file through ``core.atomic`` (a temporary file
beside the target, ``fsync``, then a rename: a crash or a full disk never leaves a truncated file)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.atomic import atomic_file
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.io.envi_header import _clean, _fmt_scalar, envi_dtype_code
from napari_hsi_anomaly.core.io.geotiff import georef_to_envi, write_geotiff

MAP_SUFFIXES = (".npy", ".tif", ".tiff", ".hdr")
CUBE_SUFFIXES = (".hdr", ".img", ".npy", ".tif", ".tiff")
# GeoTIFF tags kept in ``Cube.metadata["geotiff"]``: name -> (code, tifffile dtype).
GEOTIFF_TAGS = {
    "ModelPixelScaleTag": (33550, "d"),
    "ModelTiepointTag": (33922, "d"),
    "ModelTransformationTag": (34264, "d"),
    "GeoKeyDirectoryTag": (34735, "H"),
    "GeoDoubleParamsTag": (34736, "d"),
    "GeoAsciiParamsTag": (34737, "s"),
}
# ENVI header keys copied from ``Cube.metadata["envi"]`` onto maps written ``like`` a cube.
ENVI_GEO_KEYS = ("map info", "coordinate system string", "projection info", "pixel size")


class WriteError(HsiAnomalyError):
    """A file could not be written (names the file and why)."""


def _why(exc: OSError, where: Path) -> str:
    """Why a write failed; a full disk (``ENOSPC``, or NumPy's "requested and written") says how much
    is free there."""
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (None, errno.ENOSPC):
        from napari_hsi_anomaly.core.guards import free_space, human_bytes

        text += f" ({human_bytes(free_space(where.parent))} free in {where.parent})"
    return text


def _check_space(path: Path, nbytes: float) -> None:
    """An uncompressed output that cannot fit on its disk is refused before anything is written."""
    from napari_hsi_anomaly.core.guards import check_free_space

    check_free_space(path.parent, nbytes, f"Writing {path.name}")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """``core.atomic.atomic_file``: a temporary name beside ``path``, ``fsync``-ed and renamed into
    place only if the block succeeds; an ``OSError`` (a full disk) becomes one ``WriteError`` line and
    leaves ``path`` as it was."""
    try:
        with atomic_file(path) as tmp:
            yield tmp
    except OSError as exc:
        raise WriteError(f"Cannot write {path.name}: {_why(exc, path)}.") from exc


def _envi_pair(path: Path) -> tuple[Path, Path]:
    """(header, data) paths for an ENVI target given as ``x.hdr`` or ``x.img``."""
    if path.suffix.lower() == ".hdr":
        return path, path.with_suffix(".img")
    return path.with_suffix(".hdr"), path


MAP_FORMATS = ("npy", "tif", "cog", "hdr")


def map_suffix(fmt: str) -> str:
    """The file extension of an output format (``cog`` is a ``.tif``)."""
    return {"npy": ".npy", "tif": ".tif", "cog": ".tif", "hdr": ".hdr"}[fmt]


def write_map(path: str | Path, array2d: np.ndarray, *, like: Cube | None = None,
              fmt: str | None = None, description: str | None = None) -> Path:
    """Write a ``(rows, cols)`` score map or mask to ``.npy``, ``.tif``/``.tiff`` or ENVI ``.hdr``.

    ``like`` copies georeferencing from the cube it was computed from: ``like.georef`` (CRS and
    transform) to a GeoTIFF through rasterio, or ENVI ``map info`` / ``coordinate system string`` to
    ``.hdr`` (the source's own keys, or made from the CRS and transform); a cube with only raw GeoTIFF
    tags gets them copied. GeoTIFFs are tiled and deflate-compressed, with a band ``description``
    (default "anomaly score" for floats, "mask" for integers) and, for floats, the nodata tag NaN.
    ``fmt="cog"`` writes a Cloud-Optimized GeoTIFF (``fmt`` None: by extension). Returns the path
    written (the header for ENVI).
    """
    path = Path(path)
    arr = np.asarray(array2d)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim != 2:
        raise ShapeError(f"A map must be 2-D (rows, cols); got shape {arr.shape} for {path.name}.")
    if like is not None and (like.rows, like.cols) != arr.shape:
        like = None  # georeferencing of a different grid would be wrong
    if fmt is not None and fmt not in MAP_FORMATS:
        raise WriteError(f"Unknown output format '{fmt}' (use one of {', '.join(MAP_FORMATS)}).")
    suffix = path.suffix.lower()
    if fmt == "cog" and suffix not in (".tif", ".tiff"):
        raise WriteError(f"Cannot write {path.name} as a COG: use a .tif name.")
    if suffix in (".npy", ".hdr", ".img"):
        _check_space(path, arr.nbytes)
    if suffix == ".npy":
        with _atomic(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
    elif suffix in (".tif", ".tiff"):
        if description is None:
            description = "anomaly score" if arr.dtype.kind == "f" else "mask"
        _write_tiff(path, arr, like, fmt=fmt or "tif", description=description)
    elif suffix in (".hdr", ".img"):
        hdr, img = _envi_pair(path)
        fields: dict[str, object] = {"description": "hsi-anomaly map"}
        if description:
            fields["band names"] = [description]
        if like is not None:
            fields.update(_envi_geo(like))
        _write_envi(hdr, img, arr[None], fields)
        return hdr
    else:
        raise WriteError(
            f"Cannot write {path.name}: unknown extension (use one of {', '.join(MAP_SUFFIXES)})."
        )
    return path


def _envi_geo(cube: Cube) -> dict[str, object]:
    """ENVI georeferencing keys for ``cube``: from ``georef``, else its ENVI header's."""
    if cube.georef:
        return georef_to_envi(cube.georef)
    envi_meta = cube.metadata.get("envi", {})
    return {k: envi_meta[k] for k in ENVI_GEO_KEYS if k in envi_meta}


def _write_tiff(path: Path, arr: np.ndarray, like: Cube | None, *, fmt: str = "tif",
                description: str | None = None) -> None:
    """A 2-D map as a GeoTIFF through rasterio; a cube with only raw GeoTIFF tags (no ``georef``)
    gets them copied through tifffile."""
    georef = like.georef if like is not None else {}
    raw = (like.metadata.get("geotiff") or {}) if like is not None else {}
    if raw and not (georef.get("crs") or georef.get("transform")) and fmt != "cog":
        _write_raw_tags(path, arr, raw)
        return
    nodata = float("nan") if arr.dtype.kind == "f" else None
    _rasterio_write(path, arr, georef, nodata, [description] if description else None, fmt)


def _rasterio_write(path: Path, data: np.ndarray, georef: dict, nodata: float | None,
                    descriptions: list[str] | None, fmt: str) -> None:
    from rasterio.errors import RasterioError

    try:
        write_geotiff(path, data, georef, nodata, descriptions=descriptions, fmt=fmt)  # atomic itself
    except (RasterioError, ValueError, TypeError) as exc:
        raise WriteError(f"Cannot write {path.name} as a GeoTIFF: {exc}.") from exc
    except OSError as exc:
        raise WriteError(f"Cannot write {path.name}: {_why(exc, path)}.") from exc


def _write_raw_tags(path: Path, arr: np.ndarray, geo: dict) -> None:
    import tifffile

    extratags = []
    for name, (code, dtype) in GEOTIFF_TAGS.items():
        if name in geo and geo[name] is not None:
            value = geo[name]
            if dtype == "s":
                extratags.append((code, "s", 0, str(value), True))
            else:
                value = tuple(np.ravel(value).tolist())
                extratags.append((code, dtype, len(value), value, True))
    with _atomic(path) as tmp:
        tifffile.imwrite(tmp, arr, extratags=extratags, photometric="minisblack")


def _envi_fields(cube: Cube) -> dict[str, object]:
    fields: dict[str, object] = {"description": f"hsi-anomaly cube from {cube.name}"}
    if cube.wavelengths is not None:
        fields["wavelength units"] = "Nanometers"
        fields["wavelength"] = [float(w) for w in cube.wavelengths]
    if cube.band_names is not None:
        fields["band names"] = list(cube.band_names)
    if cube.default_bands is not None:
        fields["default bands"] = [int(b) + 1 for b in cube.default_bands]
    if cube.nodata is not None:
        fields["data ignore value"] = float(cube.nodata)
    if cube.scale_factor is not None:
        fields["reflectance scale factor"] = float(cube.scale_factor)
    fields.update(_envi_geo(cube))
    return fields


def _write_envi(hdr: Path, img: Path, data: np.ndarray, fields: dict[str, object]) -> None:
    """Write ``data (bands, rows, cols)`` as BSQ little-endian plus its header through Spectral
    Python (``spectral.envi.create_image``), band by band into its memory map (bounded memory for
    memory-mapped cubes), in a temporary folder beside the target renamed into place."""
    import tempfile

    from spectral.io import envi

    try:
        code, dt = envi_dtype_code(data.dtype)
    except ValueError as exc:
        raise WriteError(f"Cannot write {hdr.name}: {exc}") from exc
    bands, rows, cols = data.shape
    head: dict[str, object] = {
        "description": _clean(fields.pop("description", "") or ""),
        "samples": cols, "lines": rows, "bands": bands, "header offset": 0,
        "file type": "ENVI Standard", "data type": code, "interleave": "bsq", "byte order": 0,
    }
    for key, val in fields.items():
        if val is None:
            continue
        seq = isinstance(val, (list, tuple, np.ndarray))
        head[key] = [_fmt_scalar(v) for v in val] if seq else _fmt_scalar(val)
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{hdr.stem}.", dir=hdr.parent))
    except OSError as exc:
        raise WriteError(f"Cannot write {hdr.name}: {_why(exc, hdr)}.") from exc
    try:
        t_hdr = tmp_dir / hdr.name
        image = envi.create_image(str(t_hdr), head, dtype=dt, ext=img.suffix or "", force=True)
        out = image.open_memmap(interleave="bsq", writable=True)
        for b in range(bands):  # band by band: bounded memory for memory-mapped cubes
            out[b] = np.asarray(data[b], dtype=dt)
        out.flush()
        del out, image
        created = next(p for p in tmp_dir.iterdir() if p.name != t_hdr.name)
        # each file through core.atomic (fsync, rename); the data first, so a header found is whole
        with _atomic(img) as tmp:
            os.replace(created, tmp)
        with _atomic(hdr) as tmp:
            os.replace(t_hdr, tmp)
    except OSError as exc:
        raise WriteError(f"Cannot write {img.name} / {hdr.name}: {_why(exc, hdr)}.") from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_cube(path: str | Path, cube: Cube, *, fmt: str = "tif") -> Path:
    """Write a cube to ENVI (``.hdr`` + ``.img``, BSQ, with wavelengths in nm), ``.npy`` or a GeoTIFF
    (``.tif``: tiled, deflate, band names as descriptions, nodata, CRS; ``fmt="cog"``: a COG).

    ``.npy`` holds ``(rows, cols, bands)`` as read back by default. Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".hdr", ".img"):
        _check_space(path, float(cube.bands) * cube.rows * cube.cols * np.dtype(cube.dtype).itemsize)
    if suffix == ".npy":
        with _atomic(path) as tmp:
            out = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=cube.dtype, shape=(cube.rows, cube.cols, cube.bands)
            )
            for b in range(cube.bands):
                out[:, :, b] = cube.data[b]
            out.flush()
            del out
        return path
    if suffix in (".hdr", ".img"):
        hdr, img = _envi_pair(path)
        _write_envi(hdr, img, cube.data, _envi_fields(cube))
        return hdr
    if suffix in (".tif", ".tiff"):
        from napari_hsi_anomaly.core.guards import check_allocation

        check_allocation(float(cube.data.nbytes) if hasattr(cube.data, "nbytes") else 0.0,
                         f"{path.name} (the cube, written as a GeoTIFF)")
        names = list(cube.band_names) if cube.band_names is not None else None
        _rasterio_write(path, np.asarray(cube.data), cube.georef, cube.nodata, names, fmt)
        return path
    raise WriteError(f"Cannot write {path.name}: unknown extension (use one of {', '.join(CUBE_SUFFIXES)}).")
