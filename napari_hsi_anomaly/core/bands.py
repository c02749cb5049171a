"""Band selections ("1-100, 110-150", ENVI ``bbl``, Sentinel-2 atmospheric bands) and value labels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError

if TYPE_CHECKING:  # pragma: no cover
    from napari_hsi_anomaly.core.cube import Cube

CIRRUS_NAMES = {"B10", "B010"}  # Sentinel-2 band 10 (1375 nm): sees cirrus, not the ground
CIRRUS_NM = (1360.0, 1390.0)  # a band centred here is the cirrus band (S2A 1373.5, S2B 1376.9 nm)
VAPOUR_NAMES = {"B09", "B9"}  # Sentinel-2 band 9 (945 nm): the water-vapour column, not the ground
VAPOUR_NM = (935.0, 955.0)  # S2A 945.1, S2B 943.2 nm
MULTISPECTRAL_MAX = 16  # wavelength rules apply to multispectral cubes only (a hyperspectral 945 nm
# band is one of many and stays)
_RANGE = re.compile(r"^\s*(\d+)\s*(?:(?:-|–|\.\.|:)\s*(\d+))?\s*$")


def parse_band_spec(spec: str, n_bands: int) -> np.ndarray:
    """1-based inclusive ranges (``"1-100, 110-150"``, ``"3"``, ``"5..9"``) -> sorted unique 0-based
    indices. Raises ``HsiAnomalyError`` for text that is not ranges, empty or reversed ranges, or bands
    outside ``1..n_bands``."""
    text = str(spec).strip()
    if not text:
        raise HsiAnomalyError(f"Empty band selection: give ranges such as '1-{n_bands}'.")
    picked: list[int] = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        m = _RANGE.match(part)
        if m is None:
            raise HsiAnomalyError(
                f"Band selection '{part.strip()}' is not a band or a range (write e.g. '1-100, 110-150')."
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise HsiAnomalyError(f"Band range '{part.strip()}' runs backwards (write {hi}-{lo}).")
        if lo < 1 or hi > n_bands:
            raise HsiAnomalyError(
                f"Band range '{part.strip()}' is outside 1-{n_bands} (bands count from 1)."
            )
        picked.extend(range(lo - 1, hi))
    if not picked:
        raise HsiAnomalyError(f"Empty band selection: give ranges such as '1-{n_bands}'.")
    return np.unique(np.asarray(picked, dtype=np.int64))


def format_band_spec(indices: Sequence[int] | np.ndarray) -> str:
    """0-based indices -> the 1-based text ``parse_band_spec`` reads (``"1-100, 110-150"``)."""
    idx = np.unique(np.asarray(indices, dtype=np.int64))
    if idx.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]]
    return ", ".join(f"{s + 1}" if s == e else f"{s + 1}-{e + 1}" for s, e in zip(starts, ends))


def _bbl(cube: Cube) -> np.ndarray | None:
    """ENVI ``bbl`` as bools (1 = good; AVIRIS-NG writes floats such as ``1.0``); None if unusable."""
    raw = (cube.metadata.get("envi") or {}).get("bbl")
    if not isinstance(raw, list) or len(raw) != cube.bands:
        return None
    try:
        vals = np.array([float(str(v).strip()) for v in raw], dtype=np.float64)
    except ValueError:
        return None
    return np.isfinite(vals) & (vals > 0.5)


def _named_or_centred(cube: Cube, names: set[str], nm: tuple[float, float], any_count: bool) -> np.ndarray:
    out = np.zeros(cube.bands, dtype=bool)
    if cube.band_names is not None:
        out |= np.array([str(n).strip().upper() in names for n in cube.band_names])
    if cube.wavelengths is not None and (any_count or cube.bands <= MULTISPECTRAL_MAX):
        wl = cube.wavelengths
        out |= np.isfinite(wl) & (wl >= nm[0]) & (wl <= nm[1])
    return out


def is_cirrus(cube: Cube) -> np.ndarray:
    """``(bands,)`` bool: the Sentinel-2 cirrus band, by name (B10) or centre (1360-1390 nm)."""
    return _named_or_centred(cube, CIRRUS_NAMES, CIRRUS_NM, any_count=True)


def is_atmospheric(cube: Cube) -> np.ndarray:
    """``(bands,)`` bool: Sentinel-2's atmospheric bands, cirrus (B10) and water vapour (B09, by name,
    or a 935-955 nm centre in a multispectral cube)."""
    return is_cirrus(cube) | _named_or_centred(cube, VAPOUR_NAMES, VAPOUR_NM, any_count=False)


S2_NOTE = ("13 bands without names or wavelengths: taken as Sentinel-2 L1C (B01-B08, B8A, B09-B12, as "
           "eo-learn and Sentinel Hub write them); B09 and B10 are left out by default (--bands all keeps "
           "them)")


def take_as_sentinel2(obj: Any) -> bool:
    """Name the bands of a cube or stack of 13 bands without names or wavelengths as Sentinel-2 L1C
    (eo-learn and Sentinel Hub write such arrays), with ``S2_NOTE`` in its ``metadata["notes"]``, so a
    date saved alone gets the same default bands as in its stack. Returns whether it did."""
    from napari_hsi_anomaly.core.scene.spectra import S2_BANDS

    if obj.band_names is not None or obj.wavelengths is not None or obj.bands != len(S2_BANDS):
        return False
    obj.band_names = list(S2_BANDS)
    obj.wavelengths = np.array(list(S2_BANDS.values()), dtype=np.float64)
    notes = obj.metadata.setdefault("notes", [])
    if S2_NOTE not in notes:
        notes.append(S2_NOTE)
    return True


def default_band_selection(cube: Cube) -> np.ndarray | None:
    """0-based indices of the bands to use by default, or None for all of them: the header's ``bbl``
    (bad band list), and Sentinel-2's atmospheric bands B09 (water vapour) and B10 (cirrus) left out
    where recognised: they see the atmosphere's water and ice, which change from date to date whatever
    the ground does (on the Sentinel-2 demo the clear date 2 flags 15 % against dates 3-4 with them and
    1.3 % without, with global RX; the hazy dates stay at 100 %: haze shows in every visible band)."""
    good = np.ones(cube.bands, dtype=bool)
    bbl = _bbl(cube)
    if bbl is not None:
        good &= bbl
    if cube.bands > 1:
        good &= ~is_atmospheric(cube)
    if good.all() or not good.any():
        return None
    return np.flatnonzero(good)


def bands_for(cube: Cube, spec: str | None) -> np.ndarray | None:
    """The bands a ``--bands`` text picks: ``"all"`` -> None (every band), ranges -> ``parse_band_spec``,
    None or empty -> ``default_band_selection`` (so ``score``, ``fit``, ``batch`` and the viewer agree)."""
    if spec is not None and str(spec).strip().lower() == "all":
        return None
    if spec:
        return parse_band_spec(spec, cube.bands)
    return default_band_selection(cube)


class BandSubset:
    """A lazy ``(len(indices), rows, cols)`` view of the bands ``indices`` of a 3-D array: indexing
    reads only what is asked for (a memory map stays on disk); ``np.asarray`` reads it all."""

    def __init__(self, base: Any, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.indices.size), int(self.base.shape[1]), int(self.base.shape[2]))

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    ndim = 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if key and key[0] is Ellipsis:
            key = (slice(None),) * (3 - len(key) + 1) + key[1:]
        first = self.indices[key[0]] if key else self.indices
        return np.asarray(self.base[(first, *key[1:])])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.stack([np.asarray(self.base[int(b)]) for b in self.indices])
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype: Any, **_: Any) -> np.ndarray:
        return np.asarray(self, dtype=dtype)


def band_subset(data: Any, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, Any]:
    """(checked 0-based indices, ``data`` restricted to them): a numpy slice view for a regular
    step, else a ``BandSubset``. ``HsiAnomalyError`` for an empty selection or indices out of range."""
    n = int(data.shape[0])
    idx = np.asarray(indices).ravel()
    if idx.dtype == bool:
        if idx.size != n:
            raise HsiAnomalyError(f"A band mask of {idx.size} values for a cube of {n} bands.")
        idx = np.flatnonzero(idx)
    if idx.size == 0:
        raise HsiAnomalyError("The band selection is empty: choose at least one band.")
    if idx.dtype.kind not in "iu" and not np.all(np.equal(np.mod(idx, 1), 0)):
        raise HsiAnomalyError(f"Band indices must be whole numbers; got {idx[:5].tolist()}.")
    idx = idx.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        bad = idx[(idx < 0) | (idx >= n)][0]
        raise HsiAnomalyError(f"Band index {bad} is outside 0-{n - 1} (0-based) for a cube of {n} bands.")
    if isinstance(data, BandSubset):
        return idx, BandSubset(data.base, data.indices[idx])
    if idx.size == 1:
        return idx, data[int(idx[0]) : int(idx[0]) + 1]
    step = int(idx[1] - idx[0])
    if step > 0 and np.all(np.diff(idx) == step):
        return idx, data[int(idx[0]) : int(idx[-1]) + 1 : step]
    return idx, BandSubset(data, idx)


_RADIANCE = re.compile(r"w\s*/|watt|/\s*sr|radiance", re.IGNORECASE)


def value_label(cube: Cube, scaled: bool = True) -> str:
    """See ``Cube.value_label``: the kind of value (reflectance, radiance, DN) with units and scale."""
    units = (cube.units or "").strip()
    low = units.lower()
    scale = cube.scale_factor if cube.scale_factor not in (None, 0, 1) else None
    if "reflect" in low or (scale is not None and not units):
        kind = "reflectance"
    elif _RADIANCE.search(units):
        kind = units if low.startswith("radiance") else f"radiance ({units})"
    elif units:
        kind = units
    elif np.dtype(cube.dtype).kind in "iu":
        kind = "DN"
    else:
        kind = "value"
    if scale is None:
        return kind
    return f"{kind} (scale {scale:g} applied)" if scaled else f"{kind} x {scale:g}"
