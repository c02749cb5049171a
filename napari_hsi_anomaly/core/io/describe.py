"""``describe``: the text ``hsi-anomaly info`` prints about a cube."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube

INVALID_SCAN_LIMIT = 256 * 1024**2  # bytes: larger cubes skip the invalid-pixel count


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _files(cube: Cube) -> list[Path]:
    files = [cube.source] if cube.source is not None else []
    data_file = cube.metadata.get("data_file")
    if data_file:
        files.append(Path(data_file))
    return [f for f in files if f.is_file()]


def _wavelength_line(wl: np.ndarray) -> str:
    ok = wl[np.isfinite(wl)]
    if ok.size == 0:
        return "none usable"
    d = np.diff(ok)
    if ok.size < 2 or np.all(d > 0):
        order = "monotonic increasing"
    elif np.all(d < 0):
        order = "monotonic decreasing"
    else:
        order = f"not monotonic: {int(np.sum(d <= 0))} step(s) back, file order kept"
    return f"{ok.min():.1f} - {ok.max():.1f} nm ({order})"


def _georef_line(georef: dict) -> str:
    """``"EPSG:32633, pixel 60 x 60, origin (600000, 5000040)"`` or ``"none"``."""
    if not georef:
        return "none"
    parts = []
    crs = georef.get("crs")
    if crs:
        name = crs.split('"')[1] if crs.count('"') >= 2 else crs[:40]
        try:
            from rasterio.crs import CRS

            epsg = CRS.from_user_input(crs).to_epsg()
            name = f"EPSG:{epsg}" if epsg else name
        except Exception:  # rasterio missing or a CRS it cannot parse: its name is enough
            pass
        parts.append(name)
    t = georef.get("transform")
    if t is not None:
        parts.append(f"pixel {abs(t[0]):g} x {abs(t[4]):g}, origin ({t[2]:.10g}, {t[5]:.10g})")
    if not parts and georef.get("envi"):
        parts.append("ENVI map info kept (not parsed)")
    return ", ".join(parts) or "none"


def describe(cube: Cube, *, invalid_limit: int = INVALID_SCAN_LIMIT) -> str:
    """A few lines: shape, type, layout, bands, wavelengths, scaling, no-data, size, invalid pixels
    (counted only in memory-mapped cubes: a compressed file's pixels are never decoded here)."""
    lines = [f"{cube.name}" + (f"  ({cube.source})" if cube.source is not None else "")]
    add = lines.append
    add(f"shape:        {cube.bands} bands x {cube.rows} rows x {cube.cols} cols")
    add(f"dtype:        {np.dtype(cube.dtype).name}")
    add(f"interleave:   {cube.interleave or 'unknown'}")
    band_line = f"bands:        {cube.bands}"
    if cube.band_names:
        shown = ", ".join(cube.band_names[:4]) + (", ..." if cube.bands > 4 else "")
        band_line += f" ({shown})"
    add(band_line)
    wl = "none" if cube.wavelengths is None else _wavelength_line(cube.wavelengths)
    add(f"wavelengths:  {wl}")
    if cube.default_bands is not None:
        add(f"default RGB:  bands {', '.join(str(b + 1) for b in cube.default_bands)} (1-based)")
    scale = cube.scale_factor
    add(f"scale factor: {'none' if scale is None else f'{scale:g} (physical = value / {scale:g})'}")
    add(f"no-data:      {'none' if cube.nodata is None else f'{cube.nodata:g}'}")
    add(f"values:       {cube.value_label(scaled=False)}")
    add(f"georef:       {_georef_line(cube.georef)}")
    safe = cube.metadata.get("safe")
    if safe:
        add(f"sentinel-2:   {safe['spacecraft']} {safe['level']} at {safe['resolution']} m")
    files = _files(cube)
    if files:
        add(f"file size:    {_size(sum(f.stat().st_size for f in files))}")
    tiff = cube.metadata.get("tiff")
    if tiff:
        parts = [tiff.get("compression") or "uncompressed", "tiled" if tiff.get("tiled") else "strips"]
        if tiff.get("layout"):
            parts.append(str(tiff["layout"]))
        if tiff.get("overviews"):
            parts.append(f"{tiff['overviews']} overviews")
        add(f"storage:      {', '.join(parts)}")
    nbytes = cube.bands * cube.rows * cube.cols * np.dtype(cube.dtype).itemsize
    if not isinstance(cube.data, np.ndarray):
        add("invalid px:   not counted (compressed: info reads headers only)")
    elif nbytes <= invalid_limit:
        n = cube.rows * cube.cols
        bad = n - int(cube.valid_mask().sum())
        add(f"invalid px:   {bad / n:.2%} ({bad:,} of {n:,}: non-finite or no-data in some band)")
    else:
        add(f"invalid px:   not counted (cube is {_size(nbytes)}; limit {_size(invalid_limit)})")
    for warning in cube.metadata.get("warnings", []):
        add(f"warning:      {warning}")
    return "\n".join(lines)
