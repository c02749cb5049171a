"""Wavelength units: everything becomes nanometres, in file order."""

from __future__ import annotations

import numpy as np

_MICRO = {"micrometers", "micrometer", "micrometres", "micrometre", "microns", "micron", "um", "µm"}
_NANO = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}
_MILLI = {"millimeters", "millimeter", "millimetres", "millimetre", "mm"}
_WAVENUMBER = {"wavenumber", "cm-1", "cm^-1", "1/cm"}


def units_known(units: object) -> bool:
    """Whether ``units`` (a header's ``wavelength units``) is a length this module converts, or absent
    / ``unknown`` (then the values decide: micrometres when all are below 100)."""
    unit = str(units).strip().lower() if units is not None else ""
    return unit in ("", "unknown", "index") or unit in _NANO | _MICRO | _MILLI | _WAVENUMBER


def to_nanometres(values: np.ndarray, units: object = None) -> np.ndarray | None:
    """``values`` in nm: by the stated ``units``, else micrometres when all are below 100.

    Returns None for units that are not lengths (``index``, or a stated unit this module does not know,
    e.g. ``GHz``: see ``units_known``).
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
    if unit == "index" or not units_known(units):
        return None  # a stated unit that is not a length this tool knows (GHz, ...): never guessed
    finite = vals[np.isfinite(vals)]
    if finite.size and np.all(np.abs(finite) < 100):
        return vals * 1000.0  # micrometres (no optical band centre is below 100 nm)
    return vals
