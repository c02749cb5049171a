"""Wavelength units: everything becomes nanometres, in file order."""

from __future__ import annotations

import numpy as np

_MICRO = {"micrometers", "micrometer", "micrometres", "micrometre", "microns", "micron", "um", "µm"}
_NANO = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}
_MILLI = {"millimeters", "millimeter", "millimetres", "millimetre", "mm"}
_WAVENUMBER = {"wavenumber", "cm-1", "cm^-1", "1/cm"}


def to_nanometres(values: np.ndarray, units: object = None) -> np.ndarray | None:
    """``values`` in nm: by the stated ``units``, else micrometres when all are below 100.

    Returns None for units that are not lengths (``index``, ``unknown`` with no usable values).
    """
    vals = np.asarray(values, dtype=np.float64)
    unit = str(units).strip().lower() if units is not None else ""
    if unit in _NANO:
        return vals
    if unit in _MICRO:
        return vals * 1000.0
    if unit in _MILLI:
        return vals * 1e6
    if unit in _WAVENUMBER:
        with np.errstate(divide="ignore"):
            return np.where(vals > 0, 1e7 / vals, np.nan)
    if unit == "index":
        return None
    finite = vals[np.isfinite(vals)]
    if finite.size and np.all(np.abs(finite) < 100):
        return vals * 1000.0  # micrometres (no optical band centre is below 100 nm)
    return vals
