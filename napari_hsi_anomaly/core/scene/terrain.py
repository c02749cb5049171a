"""Fractal fields by spectral synthesis, elevation with carved river valleys, slope and hillshade."""

from __future__ import annotations

import numpy as np


def fractal(shape: tuple[int, int], beta: float, rng: np.random.Generator, fmin: float = 1.0) -> np.ndarray:
    """Periodic fractal noise with power spectrum ``1 / f**beta`` (f in cycles per image), z-scored.

    Frequencies below ``fmin`` cycles per image are damped. float32, mean 0, std 1.
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows) * rows
    fx = np.fft.rfftfreq(cols) * cols
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    amp = (f2 + fmin**2) ** (-beta / 4.0)
    amp[0, 0] = 0.0
    spec = rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)
    field = np.fft.irfft2(spec * amp, s=(rows, cols))
    field -= field.mean()
    field /= field.std() or 1.0
    return field.astype(np.float32)


def unit(a: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (float32)."""
    lo, hi = float(a.min()), float(a.max())
    return ((a - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def elevation(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Elevation (m) and the river field: rivers run along the zero set of the river field.

    Valleys are carved around that zero set, so rivers lie in valley bottoms with ridges between them;
    a ridged fractal sharpens the high ground.
    """
    massif = unit(fractal(shape, 4.2, rng, fmin=1.0))
    river = fractal(shape, 4.4, rng, fmin=2.5)
    detail = fractal(shape, 3.0, rng, fmin=3.0)
    ridged = 1.0 - np.abs(fractal(shape, 3.4, rng, fmin=4.0))
    valley = 1.0 - np.exp(-np.abs(river) / 0.5)
    e = 0.55 * massif + 0.35 * valley * (0.4 + massif) + 0.04 * detail
    e += 0.25 * massif**2 * np.clip(ridged, 0, 1) ** 3
    return (150.0 + 3000.0 * unit(e)).astype(np.float32), river


def slope_aspect(elev: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope (radians) and aspect (radians clockwise from north = up) of an elevation grid."""
    dz_dr, dz_dc = np.gradient(elev.astype(np.float32), pixel_m)
    slope = np.arctan(np.hypot(dz_dr, dz_dc))
    # rows grow southwards: the downhill direction is (-dz/dx east, +dz/dr south)
    aspect = np.arctan2(-dz_dc, dz_dr)
    return slope.astype(np.float32), aspect.astype(np.float32)


def hillshade(
    slope: np.ndarray, aspect: np.ndarray, sun_azimuth: float = 150.0, sun_elevation: float = 35.0
) -> np.ndarray:
    """Illumination relative to flat ground (1 = flat), from a sun at the given azimuth/elevation (deg)."""
    zen = np.deg2rad(90.0 - sun_elevation)
    az = np.deg2rad(sun_azimuth)
    cos_i = np.cos(zen) * np.cos(slope) + np.sin(zen) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(cos_i / np.cos(zen), 0.12, 1.8).astype(np.float32)
