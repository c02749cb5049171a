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
    """Normalise ``layout`` (None = ``auto``: guessed only where the shape leaves no doubt)."""
    layout = layout or "auto"
    if layout not in LAYOUTS:
        raise CubeReadError(f"Unknown layout '{layout}' (use one of {', '.join(LAYOUTS)}).")
    return layout


def guess_layout(shape: tuple[int, ...], name: str) -> tuple[str, str]:
    """(layout, note) for a 3-D shape when no layout was given, only where the shape leaves no doubt:
    of (rows, cols, bands) and (bands, rows, cols), exactly one has fewer bands than either image side
    or a square image. Otherwise ``ShapeError`` asking for ``--layout``."""
    a, b, c = shape

    def plausible(bands: int, rows: int, cols: int) -> bool:
        return bands < min(rows, cols) or rows == cols

    last, first = plausible(c, a, b), plausible(a, b, c)
    if last != first:
        layout = "bands-last" if last else "bands-first"
        dims = f"{a} rows x {b} cols x {c} bands" if last else f"{a} bands x {b} rows x {c} cols"
        return layout, f"no layout given: read {shape} as {layout} ({dims}); pass --layout to change it"
    raise ShapeError(
        f"{name}: cannot tell from the shape {shape} whether the bands are the first or the last axis; "
        "pass --layout bands-last for (rows, cols, bands) or --layout bands-first for (bands, rows, cols)."
    )


COMPLEX_WARNING = (
    "complex values: detectors and training refuse them; save the magnitude (np.abs) or the real part"
)


def check_numbers(dtype: np.dtype, name: str, *, complex_ok: bool = False) -> None:
    """Refuse arrays that are not numbers (strings, objects; complex unless ``complex_ok``)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c" and not complex_ok:
        raise CubeReadError(
            f"{name} holds complex numbers ({dtype}); a cube needs real values: save the magnitude "
            "(np.abs) or the real part first."
        )
    if dtype.kind not in ("biufc" if complex_ok else "biuf"):
        raise CubeReadError(f"{name} holds {dtype} data, not numbers.")


def check_regular_file(path: Path) -> None:
    """Refuse a FIFO, device or socket named like a cube (reading it would block or never end)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise CubeReadError(f"Cannot read {path.name}: {exc.strerror or exc}.") from exc
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise CubeReadError(f"{path.name} is {kind}; give a regular file.")


def to_bands_first(
    arr: np.ndarray, layout: str | None, name: str, notes: list | None = None
) -> tuple[np.ndarray, str]:
    """A ``(bands, rows, cols)`` view of a 3-D array stored in ``layout``, and its interleave.

    ``layout`` None or ``auto``: guessed where the shape leaves no doubt (``guess_layout``), the
    reason appended to ``notes``."""
    layout = check_layout(layout) if layout is not None else "auto"
    check_numbers(arr.dtype, name, complex_ok=True)  # readable; refused by Cube.as_float32 with a message
    if arr.ndim == 2:
        raise ShapeError(
            f"{name} is a 2-D array {arr.shape}: a single band or a map, not a cube "
            "(a cube needs 3 dimensions: rows, cols, bands)."
        )
    if arr.ndim == 4:
        raise ShapeError(
            f"{name} is a 4-D array {arr.shape}: a stack of {arr.shape[0]} dates; pick one with "
            f"--date K (1-{arr.shape[0]}; dates count from 1), or read_cube(path, date=K - 1) / "
            "core.stack.read_stack."
        )
    if arr.ndim != 3:
        raise ShapeError(f"{name} is a {arr.ndim}-D array {arr.shape}; a cube needs 3 dimensions.")
    if 0 in arr.shape:
        raise ShapeError(f"{name} is an empty array of shape {arr.shape}.")
    if layout == "auto":
        layout, note = guess_layout(arr.shape, name)
        if notes is not None:
            notes.append(note)
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
    check_regular_file(path)
    _check_magic(path, b"\x93NUMPY", "NumPy .npy")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CubeReadError(f"{path.name} is not a readable NumPy .npy file ({exc}).") from exc
    notes: list[str] = []
    data, interleave = to_bands_first(arr, layout, path.name, notes)
    meta: dict = {"notes": notes} if notes else {}
    if data.dtype.kind == "c":
        meta["warnings"] = [COMPLEX_WARNING]
    return Cube(data=data, source=path, interleave=interleave, metadata=meta)


def npz_members(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The members of an open ``.npz`` by the key NumPy gives them (``.npy`` stripped where present:
    a member without the suffix is read under its own name too)."""
    out: dict[str, zipfile.ZipInfo] = {}
    for info in z.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        out.setdefault(key, info)
    return out


def npz_member_bytes(z: zipfile.ZipFile, key: str, name: str) -> float:
    """Bytes reading ``key`` may allocate: the larger of its header's array size and the member's
    decompressed size in the archive directory (a lying header cannot hide a large member)."""
    info = npz_members(z).get(key)
    if info is None:
        return 0.0
    shape, dtype = npz_member_info(z, key, name)
    return max(float(np.prod(shape, dtype=np.float64)) * dtype.itemsize, float(info.file_size))


def npz_member_info(z: zipfile.ZipFile, key: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of ``key`` in an open ``.npz`` from its .npy header, without decompressing it."""
    info = npz_members(z).get(key)
    try:
        with z.open(info.filename if info is not None else f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise CubeReadError(f"{name}: cannot read the header of '{key}' ({exc}).") from exc
    return tuple(shape), np.dtype(dtype)


def read_npz(path: Path, layout: str | None = None, key: str = "cube") -> Cube:
    """A cube from key ``key`` of an ``.npz``; ``wavelengths``, ``band_names``, ``gt`` if present."""
    check_layout(layout)
    check_regular_file(path)
    _check_magic(path, b"PK", "NumPy .npz")
    _check_npz_size(path, key)
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
    notes: list[str] = []
    data, interleave = to_bands_first(arr, layout, path.name, notes)
    bands = data.shape[0]
    meta: dict = {"npz_key": key}
    if notes:
        meta["notes"] = notes
    if data.dtype.kind == "c":
        meta["warnings"] = [COMPLEX_WARNING]
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


def _check_npz_size(path: Path, key: str) -> None:
    """Refuse (before decompressing anything) an ``.npz`` whose arrays exceed the memory budget."""
    from napari_hsi_anomaly.core.guards import check_allocation

    try:
        with zipfile.ZipFile(path) as z:
            total = 0.0
            for k in npz_members(z):  # every member read, with or without the .npy suffix
                if k != key and k not in EXTRA_KEYS and not k.startswith("source"):
                    continue
                total += npz_member_bytes(z, k, path.name)
    except zipfile.BadZipFile as exc:
        raise CubeReadError(f"{path.name} is not a readable NumPy .npz file ({exc}).") from exc
    check_allocation(total, f"{path.name} (its arrays decompressed)",
                     hint="convert it to an uncompressed .npy, which is memory-mapped")
