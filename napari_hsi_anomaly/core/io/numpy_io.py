"""NumPy readers: ``.npy`` (memory-mapped) and ``.npz`` (key ``cube``, optional band metadata)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, ShapeError
from napari_hsi_anomaly.core.io.wavelengths import to_nanometres

LAYOUTS = ("bands-last", "bands-first", "auto")
EXTRA_KEYS = ("wavelengths", "band_names", "gt")  # small .npz members read along with the cube


def check_layout(layout: str | None) -> str:
    """Normalise ``layout`` (None = ``bands-last``, SPy's ``(rows, cols, bands)``)."""
    layout = layout or "bands-last"
    if layout not in LAYOUTS:
        raise CubeReadError(f"Unknown layout '{layout}' (use one of {', '.join(LAYOUTS)}).")
    return layout


def to_bands_first(arr: np.ndarray, layout: str | None, name: str) -> tuple[np.ndarray, str]:
    """A ``(bands, rows, cols)`` view of a 3-D array stored in ``layout``, and its interleave."""
    layout = check_layout(layout)
    if arr.dtype.kind not in "biufc":
        raise CubeReadError(f"{name} holds {arr.dtype} data, not numbers.")
    if arr.ndim == 2:
        raise ShapeError(
            f"{name} is a 2-D array {arr.shape}: a single band or a map, not a cube "
            "(a cube needs 3 dimensions: rows, cols, bands)."
        )
    if arr.ndim == 4:
        raise ShapeError(
            f"{name} is a 4-D array {arr.shape} (e.g. a time series of cubes); a cube is 3-D. "
            f"Select one date and save it, e.g. np.save('date0.npy', np.load('{name}')[0])."
        )
    if arr.ndim != 3:
        raise ShapeError(f"{name} is a {arr.ndim}-D array {arr.shape}; a cube needs 3 dimensions.")
    if 0 in arr.shape:
        raise ShapeError(f"{name} is an empty array of shape {arr.shape}.")
    if layout == "auto":
        layout = "bands-first" if arr.shape[0] < min(arr.shape[1:]) else "bands-last"
    if layout == "bands-first":
        return arr, "bsq"
    return np.moveaxis(arr, -1, 0), "bip"


def _check_magic(path: Path, magic: bytes, what: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic))
    except OSError as exc:
        raise CubeReadError(f"Cannot read {path.name}: {exc.strerror or exc}.") from exc
    if head != magic:
        raise CubeReadError(f"{path.name} is not a {what} file (its first bytes are not {what}'s).")


def read_npy(path: Path, layout: str | None = None) -> Cube:
    """A ``.npy`` cube, memory-mapped read-only."""
    check_layout(layout)
    _check_magic(path, b"\x93NUMPY", "NumPy .npy")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CubeReadError(f"{path.name} is not a readable NumPy .npy file ({exc}).") from exc
    data, interleave = to_bands_first(arr, layout, path.name)
    return Cube(data=data, source=path, interleave=interleave)


def read_npz(path: Path, layout: str | None = None, key: str = "cube") -> Cube:
    """A cube from key ``key`` of an ``.npz``; ``wavelengths``, ``band_names``, ``gt`` if present."""
    check_layout(layout)
    _check_magic(path, b"PK", "NumPy .npz")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CubeReadError(f"{path.name} is not a readable NumPy .npz file ({exc}).") from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise CubeReadError(f"{path.name} is a single array, not an .npz archive.")
    with z:
        if key not in z.files:
            raise CubeReadError(
                f"{path.name} has no array '{key}' (it has: {', '.join(z.files) or 'nothing'})."
            )
        try:
            arr = z[key]
            extra = {k: z[k] for k in z.files if k != key and (k in EXTRA_KEYS or k.startswith("source"))}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise CubeReadError(f"{path.name}: cannot read '{key}' ({exc}).") from exc
    data, interleave = to_bands_first(arr, layout, path.name)
    bands = data.shape[0]
    meta: dict = {"npz_key": key}
    wl = extra.get("wavelengths")
    wavelengths = None
    if wl is not None and wl.shape == (bands,) and wl.dtype.kind in "iuf":
        wavelengths = to_nanometres(wl, None)
    names = extra.get("band_names")
    band_names = [str(n) for n in names] if names is not None and names.shape == (bands,) else None
    gt = extra.get("gt")
    if gt is not None and gt.shape == data.shape[1:]:
        meta["gt"] = gt
    for k, v in extra.items():
        if v.ndim == 0 and v.dtype.kind in "U":
            meta[k] = str(v)
    return Cube(
        data=data,
        wavelengths=wavelengths,
        band_names=band_names,
        source=path,
        interleave=interleave,
        metadata=meta,
    )
