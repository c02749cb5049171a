"""No-data beyond the header's value: border fill detection, and refusing constant cubes.

Tiles cut from a mosaic and rotated flight lines are padded with a fill value (often 0 in every
band) that the file does not always declare (ENVI ``data ignore value``, GeoTIFF nodata). Left in,
tens of thousands of identical pixels become one huge "anomaly" (or distort every statistic). Rule:
pixels **exactly equal in every band** to a spectrum that repeats along the image border, forming a
4-connected area that **touches the border** and covers at least ``FILL_MIN_FRACTION`` of the image
(and ``FILL_MIN_PIXELS``), are fill: ``mark_fill`` sets ``Cube.fill`` so that ``valid_mask`` and
``as_float32`` treat them as no-data. Off with ``--no-fill-detect`` (CLI) or by not calling it.
"""

from __future__ import annotations

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError

FILL_MIN_FRACTION = 0.01  # of the image's pixels
FILL_MIN_PIXELS = 64
MAX_CANDIDATES = 4  # distinct border spectra tried, most frequent first
SAMPLE_PIXELS = 20_000  # strided sample for the quick checks
FULL_PASS_BYTES_PER_PIXEL = 16  # bool maps, int32 labels, their bincount (beside one band read)


def _border(data: np.ndarray) -> np.ndarray:
    """``(n, bands)`` spectra of the border pixels."""
    parts = [data[:, 0, :], data[:, -1, :], data[:, 1:-1, 0], data[:, 1:-1, -1]]
    return np.concatenate([np.asarray(p) for p in parts], axis=1).T


def _equal_map(data: np.ndarray, spectrum: np.ndarray, rows=slice(None), cols=slice(None)) -> np.ndarray:
    """``(rows, cols)`` bool: pixels exactly equal to ``spectrum`` in every band (band by band)."""
    eq = None
    for b in range(data.shape[0]):
        band = np.asarray(data[b, rows, cols]) == spectrum[b]
        eq = band if eq is None else (eq & band)
    return eq


def _stride(rows: int, cols: int, n: int = SAMPLE_PIXELS) -> int:
    return max(1, int(np.ceil(np.sqrt(rows * cols / n))))


def detect_fill(
    cube: Cube,
    *,
    min_fraction: float = FILL_MIN_FRACTION,
    min_pixels: int = FILL_MIN_PIXELS,
    max_candidates: int = MAX_CANDIDATES,
) -> np.ndarray | None:
    """``(rows, cols)`` bool mask of border fill (see the module docstring), or None if there is none."""
    data, rows, cols = cube.data, cube.rows, cube.cols
    n = rows * cols
    need = max(int(min_pixels), int(np.ceil(min_fraction * n)))
    if rows < 3 or cols < 3 or n < 2 * need:
        return None
    border = _border(data)
    values, counts = np.unique(border, axis=0, return_counts=True)
    order = np.argsort(counts)[::-1][:max_candidates]
    step = _stride(rows, cols)
    from napari_hsi_anomaly.core.guards import human_bytes, memory_budget

    # full-size maps of one pass: the equality map, one band and its comparison, labels, their counts
    full_bytes = float(n) * (FULL_PASS_BYTES_PER_PIXEL + np.dtype(data.dtype).itemsize)
    fits = full_bytes <= memory_budget()
    fill = None
    for i in order:
        spectrum = values[i]
        if counts[i] < 4 or (spectrum.dtype.kind in "fc" and not np.all(np.isfinite(spectrum))):
            continue  # NaN is no-data already
        if cube.nodata is not None and np.all(spectrum == cube.nodata):
            continue
        sample = _equal_map(data, spectrum, slice(None, None, step), slice(None, None, step))
        if sample.sum() * step * step < 0.5 * need:
            continue  # cannot be a large area: skip the full pass
        if not fits:  # decided before any full-size map: the budget, not the machine, says no
            cube.metadata.setdefault("notes", []).append(
                f"border fill was not looked for: the full-size maps it needs ({human_bytes(full_bytes)}) "
                "exceed the memory budget; a fill area (if any) is scored as data")
            return None
        eq = _equal_map(data, spectrum)
        part = _border_components(eq, need)
        if part is not None:
            fill = part if fill is None else (fill | part)
    if fill is None or not fill.any():
        return None
    if fill.all():
        return None  # the whole image: a constant cube, refused elsewhere with its own message
    return fill


def _border_components(eq: np.ndarray, need: int) -> np.ndarray | None:
    """Pixels of the 4-connected components of ``eq`` that touch the border and have >= ``need``."""
    from scipy import ndimage

    labels, count = ndimage.label(eq)
    if count == 0:
        return None
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    if edge.size == 0:
        return None
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = edge[sizes[edge] >= need]
    if keep.size == 0:
        return None
    return np.isin(labels, keep)


def mark_fill(cube: Cube, **kwargs) -> int:
    """Detect border fill and record it on ``cube.fill`` (pixels then count as no-data); returns the
    number of fill pixels (0 when there is none)."""
    fill = detect_fill(cube, **kwargs)
    if fill is None:
        return 0
    cube.fill = fill if cube.fill is None else (cube.fill | fill)
    n = int(fill.sum())
    cube.metadata["fill_pixels"] = n
    return n


def count_infinite(cube: Cube, block_bytes: int = 64 * 1024**2) -> int:
    """Pixels with an infinite value in any band (saturation), counted in row blocks (bounded memory).
    They are no-data for ``valid_mask`` and ``as_float32``; a count > 0 is recorded as
    ``metadata["inf_pixels"]`` with a note, so they are reported, never silently scored."""
    if np.dtype(cube.dtype).kind != "f":
        return 0
    per_row = max(1, cube.bands * cube.cols * np.dtype(cube.dtype).itemsize)
    step = max(1, int(block_bytes // per_row))
    n = 0
    for r0 in range(0, cube.rows, step):
        block = np.asarray(cube.data[:, r0 : r0 + step])
        n += int(np.isinf(block).any(axis=0).sum())
    if n:
        cube.metadata["inf_pixels"] = n
        note = (f"{n:,} pixel(s) hold an infinite value (saturation) in some band; they are treated as "
                "no-data (score 0, never flagged)")
        notes = cube.metadata.setdefault("notes", [])
        if note not in notes:
            notes.append(note)
    return n


CHECK_BLOCK_BYTES = 64 * 1024**2  # the constant check's full pass: one row block of the file at a time


def check_not_constant(cube: Cube, valid: np.ndarray | None = None) -> None:
    """``HsiAnomalyError`` if every valid pixel has the same spectrum (nothing to tell apart): a strided
    sample first, then every band's range over the valid pixels by row blocks (bounded memory)."""
    valid = cube.valid_mask() if valid is None else valid
    step = _stride(cube.rows, cube.cols)
    sub_valid = valid[::step, ::step]
    for b in range(cube.bands):  # quick: a strided sample usually shows variation at once
        v = np.asarray(cube.data[b, ::step, ::step])[sub_valid]
        if v.size and v.min() != v.max():
            return
    per_row = max(1, cube.bands * cube.cols * np.dtype(cube.dtype).itemsize)
    rows = max(1, int(CHECK_BLOCK_BYTES // per_row))
    lo = hi = None
    for r0 in range(0, cube.rows, rows):
        block = np.asarray(cube.data[:, r0 : r0 + rows])[:, valid[r0 : r0 + rows]]
        if block.size == 0:
            continue
        b_lo, b_hi = block.min(axis=1), block.max(axis=1)
        lo = b_lo if lo is None else np.minimum(lo, b_lo)
        hi = b_hi if hi is None else np.maximum(hi, b_hi)
        if np.any(lo != hi):
            return
    if lo is None:  # no valid pixel: another check says so
        return
    raise HsiAnomalyError(
        f"{cube.name}: every valid pixel has the same spectrum (a constant cube), so nothing can stand "
        "out; check that the file holds the scene (the right --key or --layout, the right band range)."
    )
