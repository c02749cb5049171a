"""ENVI reader: our tolerant header parsing and fix-ups (key case, missing ``byte order`` for 1-byte data,
units, ``bbl``, data ignore value, offsets, strict size checks) in front of Spectral Python's
``BsqFile``/``BilFile``/``BipFile``, which gives the memory-mapped ``(bands, rows, cols)`` view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.file_kinds import DATA_SUFFIXES, find_pair  # noqa: F401  (re-exported)
from napari_hsi_anomaly.core.io.envi_header import ENVI_DTYPES, read_header
from napari_hsi_anomaly.core.io.numpy_io import COMPLEX_WARNING, check_regular_file
from napari_hsi_anomaly.core.io.wavelengths import to_nanometres

# Axis order of the file for each interleave, and the transpose that gives (bands, rows, cols).
_INTERLEAVE = {
    "bsq": (("bands", "lines", "samples"), (0, 1, 2)),
    "bil": (("lines", "bands", "samples"), (1, 0, 2)),
    "bip": (("lines", "samples", "bands"), (2, 0, 1)),
}


def _int(h: dict, key: str, hdr: Path, default: int | None = None) -> int:
    val = h.get(key)
    if val is None or val == "":
        if default is not None:
            return default
        raise CubeReadError(f"{hdr.name}: the header has no '{key}' (required).")
    try:
        number = float(str(val).strip())
    except ValueError:
        raise CubeReadError(f"{hdr.name}: '{key} = {val}' is not a number.") from None
    if not np.isfinite(number) or number != int(number):
        raise CubeReadError(f"{hdr.name}: '{key} = {val}' must be a whole number; fix the header.")
    out = int(number)
    if out < 0 or (key != "header offset" and out == 0):
        raise CubeReadError(f"{hdr.name}: '{key} = {val}' must be positive.")
    return out


def _float(val: object) -> float | None:
    try:
        return float(str(val).strip())
    except (TypeError, ValueError):
        return None


def _dtype(h: dict, hdr: Path) -> np.dtype:
    code = _int(h, "data type", hdr)
    if code not in ENVI_DTYPES:
        known = ", ".join(str(k) for k in ENVI_DTYPES)
        raise CubeReadError(f"{hdr.name}: unknown ENVI data type {code} (known: {known}).")
    dt = np.dtype(ENVI_DTYPES[code])
    order = h.get("byte order")
    if dt.itemsize == 1:
        return dt  # byte order means nothing for 1-byte data; may be absent
    if order is None or str(order).strip() == "":
        raise CubeReadError(
            f"{hdr.name}: the header has no 'byte order' (needed for {dt.itemsize}-byte data)."
        )
    if str(order).strip() not in ("0", "1"):
        raise CubeReadError(f"{hdr.name}: 'byte order = {order}' must be 0 or 1.")
    return dt.newbyteorder(">" if str(order).strip() == "1" else "<")


def _size_error(img: Path, actual: int, need: int, dims: tuple[int, int, int], dt, off) -> str:
    lines, samples, bands = dims
    what = "is truncated" if actual < need else "is longer than the header says"
    extra = f" + {off:,} header bytes" if off else ""
    return (
        f"{img.name} is {actual:,} bytes but the header ({lines} lines x {samples} samples x "
        f"{bands} bands, {np.dtype(dt).name}{extra}) needs {need:,}: the data file {what}."
    )


def read_envi(path: Path) -> Cube:
    """Open an ENVI cube (header or data path) as a read-only memory map."""
    hdr, img = find_pair(path)
    check_regular_file(hdr)
    check_regular_file(img)
    h = read_header(hdr)
    samples, lines, bands = (_int(h, k, hdr) for k in ("samples", "lines", "bands"))
    offset = _int(h, "header offset", hdr, default=0)
    dt = _dtype(h, hdr)
    interleave = str(h.get("interleave", "")).strip().lower()
    if interleave not in _INTERLEAVE:
        if bands == 1 or not interleave:
            if bands > 1:
                raise CubeReadError(f"{hdr.name}: the header has no 'interleave' (bsq, bil or bip).")
            interleave = "bsq"
        else:
            raise CubeReadError(
                f"{hdr.name}: unknown interleave '{h.get('interleave')}' (expected bsq, bil or bip)."
            )
    need = offset + lines * samples * bands * dt.itemsize
    actual = img.stat().st_size
    if actual != need:
        raise CubeReadError(_size_error(img, actual, need, (lines, samples, bands), dt, offset))
    fixed = {"samples": samples, "lines": lines, "bands": bands, "header offset": offset,
             "interleave": interleave, "data type": _int(h, "data type", hdr),
             "byte order": 1 if dt.byteorder == ">" else 0}
    try:
        data, mm = _spectral_memmap(img, fixed, dt)
    except (OSError, ValueError) as exc:
        raise CubeReadError(f"Cannot map {img.name}: {exc}.") from exc
    meta: dict = {"envi": h, "header": str(hdr), "data_file": str(img)}
    hint = byte_order_hint(mm, hdr.name)
    if hint:
        meta.setdefault("warnings", []).append(hint)
    if dt.kind == "c":
        meta.setdefault("warnings", []).append(COMPLEX_WARNING)
    wavelengths = _wavelengths(h, bands, meta)
    names = h.get("band names")
    band_names = [str(n) for n in names] if isinstance(names, list) and len(names) == bands else None
    if names is not None and band_names is None:
        meta.setdefault("warnings", []).append(f"ignored {len(names)} band names for {bands} bands")
    nodata = _float(h.get("data ignore value")) if "data ignore value" in h else None
    scale = _float(h.get("reflectance scale factor")) if "reflectance scale factor" in h else None
    return Cube(
        data=data,
        wavelengths=wavelengths,
        band_names=band_names,
        units=str(h["data units"]) if "data units" in h else None,
        nodata=nodata,
        scale_factor=scale if scale not in (None, 0.0) and np.isfinite(scale) else None,
        source=hdr,
        default_bands=_default_bands(h, bands, meta),
        interleave=interleave,
        metadata=meta,
    )


def _spectral_memmap(img: Path, fixed: dict, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``((bands, rows, cols) view, memmap in file order)`` through Spectral Python's
    ``BsqFile``/``BilFile``/``BipFile``, built from the checked and fixed header (``fixed``: byte order
    set for 1-byte data, numbers validated) rather than ``spectral.envi.open``, which refuses headers
    without ``byte order`` and re-parses keys we have already normalised."""
    from spectral.io import envi
    from spectral.io.bilfile import BilFile
    from spectral.io.bipfile import BipFile
    from spectral.io.bsqfile import BsqFile

    params = envi.gen_params({k: str(v) for k, v in fixed.items()})
    params.filename = str(img)
    cls = {"bsq": BsqFile, "bil": BilFile, "bip": BipFile}[fixed["interleave"]]
    image = cls(params, {})
    try:
        source = image.open_memmap(interleave="source")
    finally:
        fid = getattr(image, "fid", None)
        if fid is not None:
            fid.close()
    if source is None or np.dtype(source.dtype) != dt:
        raise ValueError(f"Spectral Python could not map it as {dt}")
    return source.transpose(_INTERLEAVE[fixed["interleave"]][1]), source  # a view, no copy


def _wavelengths(h: dict, bands: int, meta: dict) -> np.ndarray | None:
    raw = h.get("wavelength")
    if not isinstance(raw, list) or not raw:
        return None
    vals = np.array([_float(v) if _float(v) is not None else np.nan for v in raw], dtype=np.float64)
    if vals.size != bands:
        meta.setdefault("warnings", []).append(f"ignored {vals.size} wavelengths for {bands} bands")
        return None
    from napari_hsi_anomaly.core.io.wavelengths import units_known

    if not units_known(h.get("wavelength units")):
        meta.setdefault("warnings", []).append(
            f"wavelength units '{h.get('wavelength units')}' are not a length this tool knows (nm, um, mm, "
            "wavenumber): the wavelengths are ignored, not guessed")
    return to_nanometres(vals, h.get("wavelength units"))


def _default_bands(h: dict, bands: int, meta: dict) -> tuple[int, int, int] | None:
    raw = h.get("default bands")
    if not isinstance(raw, list) or len(raw) not in (1, 3):
        return None
    vals = [_float(v) for v in raw]
    if any(v is None or not (1 <= v <= bands) for v in vals):
        meta.setdefault("warnings", []).append(f"ignored default bands {raw} (1..{bands})")
        return None
    idx = [int(v) - 1 for v in vals]  # ENVI is 1-based
    return (idx[0], idx[0], idx[0]) if len(idx) == 1 else (idx[0], idx[1], idx[2])


BYTE_ORDER_SAMPLE = 65536  # values looked at by ``byte_order_hint``


def _implausible_float(v: np.ndarray) -> float:
    """Fraction of values no sensor writes: non-finite, or magnitudes above 1e15 or (non-zero) below
    1e-15 -- what float data read with the wrong byte order mostly looks like."""
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.abs(v.astype(np.float64))
        bad = ~np.isfinite(a) | (a > 1e15) | ((a > 0) & (a < 1e-15))
    return float(bad.mean()) if v.size else 0.0


def byte_order_hint(mm: np.ndarray, name: str) -> str | None:
    """A warning when the values look byte-swapped (the header's ``byte order`` is probably wrong).

    Floats: most values implausible while the swapped ones are not. Integers: the high byte of the
    values varies far more than the low byte (real data vary most in the low byte)."""
    dt = mm.dtype
    if dt.itemsize == 1 or dt.kind not in "iuf":
        return None
    flat = np.asarray(mm.reshape(-1)[:: max(1, mm.size // BYTE_ORDER_SAMPLE)][:BYTE_ORDER_SAMPLE])
    if flat.size < 16:
        return None
    swapped = flat.byteswap()  # the same bytes read in the other order
    big = dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian)
    order = "1 (big-endian)" if big else "0 (little-endian)"
    other = "0" if order.startswith("1") else "1"
    if dt.kind == "f":
        if _implausible_float(flat) > 0.5 and _implausible_float(swapped) < 0.05:
            return (f"{name}: most values are implausible (e.g. {flat[np.argmax(np.abs(flat))]:.3g}) "
                    f"with 'byte order = {order}', and plausible with byte order {other}: the header's "
                    f"byte order is probably wrong; set 'byte order = {other}'.")
        return None
    native = np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("="))
    raw = native.view(np.uint8).reshape(-1, dt.itemsize)
    low, high = (raw[:, 0], raw[:, -1]) if np.little_endian else (raw[:, -1], raw[:, 0])
    n_low, n_high = np.unique(low).size, np.unique(high).size
    if n_high >= 64 and n_high > 4 * n_low:
        return (f"{name}: the values look byte-swapped with 'byte order = {order}' (their high byte varies "
                f"more than the low one: {n_high} against {n_low} distinct values); if the image looks like "
                f"noise, set 'byte order = {other}' in the header.")
    return None
