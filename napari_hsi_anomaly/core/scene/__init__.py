"""Deterministic multispectral mountain scenes (Sentinel-2 bands) with thesis-recipe anomalies.

``make_scene`` builds fractal terrain with carved river valleys, snow above a snow line, rock on
steep slopes, vegetation low down, cloud banks with shadows, haze, hillshade and sensor noise, then
plants square anomalies with ``core.synth.plant_anomalies``. Same seed, same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.scene.spectra import band_set, materials, spectrum
from napari_hsi_anomaly.core.scene.terrain import elevation, fractal, hillshade, slope_aspect, unit
from napari_hsi_anomaly.core.synth import Planted, plant_anomalies

CLASS_NAMES: tuple[str, ...] = ("none", "water", "vegetation", "soil", "rock", "snow", "cloud")
WATER, VEGETATION, SOIL, ROCK, SNOW, CLOUD = range(1, 7)
SCENE_EXTENT_M = 110_000.0  # the scene covers ~110 km whatever its size (1830 px = 60 m pixels)


@dataclass
class Scene:
    """A generated scene: the cube, planted-anomaly ground truth and the land-cover map."""

    cube: Cube
    gt: np.ndarray
    classes: np.ndarray
    class_names: tuple[str, ...]
    planted: Planted | None
    elevation: np.ndarray

    def class_fractions(self) -> dict[str, float]:
        """Fraction of pixels in each class (by name)."""
        counts = np.bincount(self.classes.ravel(), minlength=len(self.class_names))
        return {n: float(c) / self.classes.size for n, c in zip(self.class_names, counts)}


def default_s_anom(window: int) -> int:
    """Anomaly side for a window size at the thesis ratio (20 px in 128 px windows)."""
    return max(1, round(window * 20 / 128))


def make_scene(
    rows: int = 256,
    cols: int = 256,
    *,
    seed: int = 0,
    bands: str | Sequence[str] = "s2",
    anomalies: bool = True,
    p_anom: float = 0.05,
    window: int = 64,
    s_anom: int | None = None,
    c_range: tuple[float, float] = (3.0, 5.0),
    haze: float = 0.03,
    clouds: float = 0.10,
    noise: float = 0.003,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> Scene:
    """Generate a ``rows x cols`` reflectance scene; deterministic for a ``seed``.

    ``clouds`` is the target cloud cover (0-1), ``haze`` the added blue reflectance at most, ``noise``
    the sensor noise standard deviation (reflectance). With ``anomalies`` a fraction ``p_anom`` of the
    ``window``-px windows get one ``s_anom``-px square (thesis recipe; default side 20/128 of a window)
    with band statistics ``stats=(means, stds)`` (default: this scene's; pass a population's).
    """
    if rows < 8 or cols < 8:
        raise ShapeError(f"A scene needs at least 8x8 pixels; asked for {rows}x{cols}.")
    names, wl = band_set(bands)
    shape = (rows, cols)
    g_terrain, g_land, g_cloud, g_haze, g_sensor, g_anom = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    elev, river = elevation(shape, g_terrain)
    slope, aspect = slope_aspect(elev, SCENE_EXTENT_M / max(rows, cols))
    shade = hillshade(slope, aspect)
    del aspect
    alpha = _cloud_alpha(shape, clouds, g_cloud)
    classes, abundance = _land_cover(elev, river, slope, g_land)
    del river, slope
    classes[alpha > 0.5] = CLOUD
    shadow = 1.0 - 0.6 * _shadow_of(alpha)
    haze_map = unit(fractal(shape, 4.0, g_haze, fmin=1.0)) * np.float32(haze)
    cloud_spec = spectrum("cloud", names)
    mats = materials()
    spectra = {m: spectrum(m, names) for m in mats if m in abundance}

    data = np.empty((len(names), rows, cols), dtype=np.float32)
    for b in range(len(names)):
        surf = np.zeros(shape, dtype=np.float32)
        for m, a in abundance.items():
            surf += a * spectra[m][b]
        surf *= shade * shadow
        band = surf * (1.0 - alpha) + alpha * cloud_spec[b]
        band += haze_map * np.float32((443.0 / wl[b]) ** 1.5)
        band += g_sensor.standard_normal(shape, dtype=np.float32) * np.float32(noise)
        data[b] = np.maximum(band, 0.0)

    planted = None
    gt = np.zeros(shape, dtype=np.uint8)
    if anomalies:
        s = default_s_anom(window) if s_anom is None else s_anom
        planted = plant_anomalies(
            data, window=window, p_anom=p_anom, s_anom=s, c_range=c_range, seed=g_anom, stats=stats
        )
        data, gt = planted.data, planted.gt
    rgb = None
    if {"B02", "B03", "B04"} <= set(names):
        rgb = tuple(names.index(b) for b in ("B04", "B03", "B02"))
    cube = Cube(
        data=data,
        wavelengths=wl,
        band_names=names,
        units="reflectance",
        default_bands=rgb,  # type: ignore[arg-type]
        metadata={
            "description": f"napari-hsi-anomaly generated scene, seed {seed}",
            "generator": "napari_hsi_anomaly.core.scene.make_scene",
            "seed": seed,
        },
    )
    return Scene(cube, gt, classes, CLASS_NAMES, planted, elev)


def _cloud_alpha(shape: tuple[int, int], cover: float, rng: np.random.Generator) -> np.ndarray:
    """Cloud opacity in [0, 1]: thresholded fractal noise with soft edges; about ``cover`` opaque."""
    field = fractal(shape, 3.3, rng, fmin=2.0)
    texture = fractal(shape, 2.4, rng, fmin=4.0)
    if cover <= 0:
        return np.zeros(shape, dtype=np.float32)
    t = np.quantile(field, 1.0 - min(cover, 1.0))
    x = np.clip((field - t) / 0.8 + 0.5, 0.0, 1.0)
    x = x * x * (3.0 - 2.0 * x)  # smoothstep: soft edges
    return np.clip(x * (0.9 + 0.1 * texture), 0.0, 1.0).astype(np.float32)


def _shadow_of(alpha: np.ndarray) -> np.ndarray:
    """Cloud shadows: the opacity shifted away from the sun (sun in the south-south-east)."""
    rows, cols = alpha.shape
    return np.roll(alpha, (-max(1, rows // 25), -max(1, cols // 60)), axis=(0, 1))


def _land_cover(
    elev: np.ndarray, river: np.ndarray, slope: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Class map and per-material abundance maps (float32, summing to 1) from the terrain."""
    shape = elev.shape
    e = unit(elev)
    wobble = fractal(shape, 2.4, rng, fmin=3.0)
    mix1 = fractal(shape, 2.0, rng, fmin=4.0)
    mix2 = fractal(shape, 2.0, rng, fmin=4.0)
    t_snow = np.quantile(e, 0.84) + 0.035 * wobble
    t_tree = np.quantile(e, 0.55) + 0.05 * wobble
    steep = slope > np.quantile(slope, 0.78)
    very_steep = slope > np.quantile(slope, 0.93)
    width = 0.06 * np.clip(1.2 - e / np.maximum(t_tree, 1e-3), 0.0, 1.0)
    rivers = (np.abs(river) < width) & (e < t_tree)
    lakes = e < np.quantile(e, 0.02)
    classes = np.full(shape, VEGETATION, dtype=np.uint8)
    classes[(e > t_tree) | (mix1 > 2.0)] = SOIL
    classes[(e > t_tree + 0.05) & steep] = ROCK
    classes[(e > t_snow) & ~very_steep] = SNOW
    classes[(e > t_snow) & very_steep] = ROCK
    classes[rivers | lakes] = WATER

    def frac(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip(x, lo, hi).astype(np.float32)

    ab = {m: np.zeros(shape, dtype=np.float32) for m in materials() if m != "cloud"}
    sel = classes == WATER
    turb = frac(np.where(rivers, 0.7, 0.15) + 0.15 * mix1, 0.0, 1.0)
    ab["turbid"][sel] = turb[sel]
    ab["water"][sel] = 1.0 - turb[sel]
    sel = classes == VEGETATION
    forest = frac(0.8 - 0.6 * (e - t_tree + 0.25) + 0.15 * mix1, 0.2, 1.0)
    dense = frac(0.9 + 0.08 * mix2, 0.7, 1.0)
    ab["vegetation"][sel] = (forest * dense)[sel]
    ab["meadow"][sel] = ((1.0 - forest) * dense)[sel]
    ab["soil"][sel] = (1.0 - dense)[sel]
    sel = classes == SOIL
    bare = frac(0.55 + 0.25 * mix1, 0.1, 1.0)
    ab["soil"][sel] = (0.6 * bare)[sel]
    ab["rock"][sel] = (0.4 * bare)[sel]
    ab["meadow"][sel] = (1.0 - bare)[sel]
    sel = classes == ROCK
    ab["rock"][sel] = frac(0.95 + 0.15 * mix2, 0.75, 1.2)[sel]
    sel = classes == SNOW
    cover = frac(0.92 + 0.06 * mix1, 0.6, 1.0)
    ab["snow"][sel] = cover[sel]
    ab["rock"][sel] = (1.0 - cover)[sel]
    return classes, {m: a for m, a in ab.items() if a.any()}
