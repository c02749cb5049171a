"""Stacks of dates: a 4-D array ``(dates, rows, cols, bands)`` on disk, one ``Cube`` per date.

The layout of the Sentinel-2 stack in ``shared/data/sentinel2`` (eo-learn's ``REFERENCE_SCENES.npy``).
``.npy`` files are memory-mapped (a date is read only when used); ``.npz`` files are read from the key
``stack`` (or the only 4-D array) with ``wavelengths`` and ``band_names`` when present.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.bands import take_as_sentinel2
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, ShapeError

STACK_LAYOUTS = ("bands-last", "bands-first", "auto")


@dataclass
class Stack:
    """``data``: ``(dates, rows, cols, bands)`` (``bands-last``) or ``(dates, bands, rows, cols)``."""

    data: np.ndarray
    wavelengths: np.ndarray | None = None
    band_names: list[str] | None = None
    source: Path | None = None
    layout: str = "bands-last"
    metadata: dict = field(default_factory=dict)

    @property
    def n_dates(self) -> int:
        return int(self.data.shape[0])

    @property
    def bands(self) -> int:
        return int(self.data.shape[3] if self.layout == "bands-last" else self.data.shape[1])

    @property
    def name(self) -> str:
        return self.source.stem if self.source is not None else "stack"

    def check_date(self, k: int) -> int:
        """``k`` as an index into the dates (negative counts from the end); ``ShapeError`` if out of range."""
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise ShapeError(f"{self.name}: --date must be an integer; got {k!r}.") from None
        if not -self.n_dates <= k < self.n_dates:
            raise ShapeError(f"{self.name} has {self.n_dates} dates (0-{self.n_dates - 1}); "
                             f"--date {k} is out of range.")
        return k % self.n_dates

    def cube(self, k: int) -> Cube:
        """Date ``k`` as a ``(bands, rows, cols)`` cube (a view; nothing is read until used)."""
        k = self.check_date(k)
        arr = self.data[k]
        data = np.moveaxis(arr, -1, 0) if self.layout == "bands-last" else arr
        meta = {"date": k, "n_dates": self.n_dates, **self.metadata}
        return Cube(data=data, wavelengths=self.wavelengths, band_names=self.band_names,
                    source=self.source, interleave="bip" if self.layout == "bands-last" else "bsq",
                    metadata=meta)

    def cubes(self) -> list[Cube]:
        return [self.cube(k) for k in range(self.n_dates)]


def _check_array(arr: np.ndarray, name: str, layout: str | None) -> str:
    from napari_hsi_anomaly.core.io.numpy_io import check_numbers, guess_layout

    check_numbers(arr.dtype, name)
    if arr.ndim != 4:
        raise ShapeError(f"{name} is a {arr.ndim}-D array {arr.shape}; a stack of dates is 4-D "
                         "(dates, rows, cols, bands).")
    if 0 in arr.shape:
        raise ShapeError(f"{name} is an empty array of shape {arr.shape}.")
    layout = layout or "bands-last"
    if layout not in STACK_LAYOUTS:
        raise CubeReadError(f"Unknown layout '{layout}' (use one of {', '.join(STACK_LAYOUTS)}).")
    if layout == "auto":
        layout, _ = guess_layout(tuple(arr.shape[1:]), name)
    return layout


def is_stack_file(path: str | Path, key: str | None = None) -> bool:
    """Whether ``path`` is an ``.npy`` / ``.npz`` holding a 4-D array (headers only; never raises)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 4
        if path.suffix.lower() == ".npz":
            return _npz_key(path, key) is not None
    except Exception:  # a probe: anything unreadable is "not a stack"
        return False
    return False


def _npz_key(path: Path, key: str | None) -> str | None:
    from napari_hsi_anomaly.core.io.numpy_io import npz_member_info, npz_members

    with zipfile.ZipFile(path) as z:
        four = [k for k in npz_members(z) if len(npz_member_info(z, k, path.name)[0]) == 4]
    if key is not None and key in four:
        return key
    if "stack" in four:
        return "stack"
    return four[0] if len(four) == 1 else None


def _check_npz_budget(path: Path, keys: list[str]) -> None:
    """Refuse (before decompressing anything) members of a stack ``.npz`` above the memory budget."""
    from napari_hsi_anomaly.core.guards import check_allocation
    from napari_hsi_anomaly.core.io.numpy_io import npz_member_bytes, npz_members

    with zipfile.ZipFile(path) as z:
        members = npz_members(z)
        total = sum(npz_member_bytes(z, k, path.name) for k in keys if k in members)
    check_allocation(total, f"{path.name} (its stack of dates decompressed)",
                     hint="save the stack as an uncompressed 4-D .npy, which is memory-mapped")


def read_stack(path: str | Path, *, layout: str | None = None, key: str | None = None) -> Stack:
    """A 4-D ``.npy`` (memory-mapped) or ``.npz`` stack of dates; ``CubeReadError``/``ShapeError``.

    ``layout``: ``bands-last`` (default, ``(dates, rows, cols, bands)``) or ``bands-first``
    (``(dates, bands, rows, cols)``).
    """
    from napari_hsi_anomaly.core.io.numpy_io import check_regular_file
    from napari_hsi_anomaly.core.io.wavelengths import to_nanometres

    path = Path(path).expanduser()
    if not path.exists():
        raise CubeReadError(f"{path} does not exist.")
    check_regular_file(path)
    suffix = path.suffix.lower()
    wl = names = None
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CubeReadError(f"{path.name} is not a readable NumPy .npy file ({exc}).") from exc
    elif suffix == ".npz":
        try:
            k = _npz_key(path, key if key not in (None, "cube") else None)
            if k is None:
                raise ShapeError(f"{path.name} holds no 4-D array (a stack of dates); "
                                 "read it without --date.")
            _check_npz_budget(path, [k, "wavelengths", "band_names"])
            with np.load(path, allow_pickle=False) as z:
                arr = z[k]
                wl = z["wavelengths"] if "wavelengths" in z.files else None
                names = z["band_names"] if "band_names" in z.files else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise CubeReadError(f"{path.name} is not a readable NumPy .npz file ({exc}).") from exc
    else:
        raise CubeReadError(f"{path.name}: a stack of dates must be a 4-D .npy or .npz; got '{path.suffix}'.")
    if arr.ndim == 3:
        raise ShapeError(f"{path.name} is a single cube {arr.shape}, not a stack of dates: "
                         "read it without --date.")
    layout = _check_array(arr, path.name, layout)
    stack = Stack(arr, source=path, layout=layout)
    if wl is not None and wl.shape == (stack.bands,) and wl.dtype.kind in "iuf":
        stack.wavelengths = to_nanometres(wl, None)
    if names is not None and names.shape == (stack.bands,):
        stack.band_names = [str(n) for n in names]
    take_as_sentinel2(stack)  # eo-learn / Sentinel Hub write L1C stacks without band metadata
    return stack
