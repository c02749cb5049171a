"""Sentinel-2 band table and plausible reflectance spectra of the scene's materials."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Sentinel-2A band centres (nm), L1C order.
S2_BANDS: dict[str, float] = {
    "B01": 442.7,
    "B02": 492.4,
    "B03": 559.8,
    "B04": 664.6,
    "B05": 704.1,
    "B06": 740.5,
    "B07": 782.8,
    "B08": 832.8,
    "B8A": 864.7,
    "B09": 945.1,
    "B10": 1373.5,
    "B11": 1613.7,
    "B12": 2202.4,
}

# Band sets: "s2" drops B09 (water vapour) as the thesis dropped band 9, leaving 12 bands.
BAND_SETS: dict[str, tuple[str, ...]] = {
    "s2": tuple(b for b in S2_BANDS if b != "B09"),
    "s2-13": tuple(S2_BANDS),
    "s2-l2a": tuple(b for b in S2_BANDS if b != "B10"),
}

# Surface/top-of-canopy reflectance at each S2 band (same order as S2_BANDS). B10 (1375 nm) sits in
# a water-vapour absorption band: the ground is almost invisible there, high clouds are not.
_SPECTRA: dict[str, tuple[float, ...]] = {
    #              B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B10    B11    B12
    "water": (0.060, 0.055, 0.045, 0.025, 0.020, 0.015, 0.012, 0.010, 0.009, 0.005, 0.001, 0.003, 0.002),
    "turbid": (0.070, 0.075, 0.090, 0.070, 0.060, 0.045, 0.035, 0.030, 0.026, 0.015, 0.001, 0.008, 0.005),
    "vegetation": (0.030, 0.040, 0.085, 0.040, 0.110, 0.260, 0.330, 0.360, 0.375, 0.330, 0.004, 0.190, 0.085),
    "meadow": (0.040, 0.055, 0.100, 0.075, 0.140, 0.230, 0.270, 0.290, 0.300, 0.270, 0.004, 0.250, 0.140),
    "soil": (0.080, 0.100, 0.140, 0.190, 0.210, 0.230, 0.245, 0.260, 0.270, 0.275, 0.005, 0.330, 0.280),
    "rock": (0.120, 0.135, 0.160, 0.180, 0.190, 0.200, 0.205, 0.210, 0.212, 0.215, 0.005, 0.260, 0.230),
    "snow": (0.880, 0.890, 0.880, 0.850, 0.830, 0.810, 0.790, 0.760, 0.740, 0.600, 0.010, 0.080, 0.050),
    "cloud": (0.620, 0.630, 0.640, 0.650, 0.650, 0.650, 0.650, 0.645, 0.640, 0.600, 0.300, 0.560, 0.450),
}


def band_set(bands: str | Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Band names and centres (nm) for a named set (``"s2"``, ``"s2-13"``, ``"s2-l2a"``) or names."""
    if isinstance(bands, str):
        if bands not in BAND_SETS:
            raise ValueError(f"Unknown band set {bands!r}; choose one of {sorted(BAND_SETS)}.")
        names = list(BAND_SETS[bands])
    else:
        names = [str(b) for b in bands]
        unknown = [b for b in names if b not in S2_BANDS]
        if unknown:
            raise ValueError(f"Unknown Sentinel-2 band(s) {unknown}; known: {list(S2_BANDS)}.")
    return names, np.array([S2_BANDS[b] for b in names], dtype=np.float64)


def spectrum(material: str, band_names: Sequence[str]) -> np.ndarray:
    """Reflectance of ``material`` at the given Sentinel-2 bands (float32)."""
    row = dict(zip(S2_BANDS, _SPECTRA[material]))
    return np.array([row[b] for b in band_names], dtype=np.float32)


def materials() -> list[str]:
    """Names of the materials with a spectrum."""
    return list(_SPECTRA)
