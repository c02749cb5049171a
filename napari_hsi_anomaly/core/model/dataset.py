"""Windows read lazily from cubes, scaled and masked, ready for the network.

A block is read with ``Cube.as_float32`` (only the rows and columns needed, so memory maps stay
lazy). Coordinates outside the cube are filled by *reflection* (``... 2 1 | 0 1 2 ... n-1 | n-2 ...``),
so windows larger than the cube, and tile halos at the image border, get plausible context. Reflected
pixels and no-data pixels are marked invalid: they are set to 0 after scaling and left out of the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.model.cae import CAEConfig
from napari_hsi_anomaly.core.model.scaling import MinMaxScaler
from napari_hsi_anomaly.core.windows import window_grid


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer positions onto ``[0, n)`` by mirror reflection (no edge repeat)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def read_block(cube: Cube, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bands, r1-r0, c1-c0)`` float32 (NaN = no-data) and an ``inside`` mask (False = reflected)."""
    inside = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    inside[max(0, -r0) : min(r1, cube.rows) - r0, max(0, -c0) : min(c1, cube.cols) - c0] = True
    if r0 >= 0 and c0 >= 0 and r1 <= cube.rows and c1 <= cube.cols:
        return cube.as_float32(slice(r0, r1), slice(c0, c1)), inside
    ri = reflect_index(np.arange(r0, r1), cube.rows)
    ci = reflect_index(np.arange(c0, c1), cube.cols)
    rlo, clo = int(ri.min()), int(ci.min())
    raw = cube.as_float32(slice(rlo, int(ri.max()) + 1), slice(clo, int(ci.max()) + 1))
    return raw[:, ri - rlo][:, :, ci - clo], inside


def prepare(
    block: np.ndarray, inside: np.ndarray, scaler: MinMaxScaler, config: CAEConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Scale, apply the band policy, fill invalid pixels with 0.

    Returns ``x (net_bands, h, w)`` float32 and ``valid (h, w)`` bool (inside the cube and finite in
    every band).
    """
    valid = inside & np.isfinite(block).all(axis=0)
    x = scaler.transform(block)
    x[:, ~valid] = 0.0
    nb = config.net_bands
    if nb < x.shape[0]:
        x = x[:nb]
    elif nb > x.shape[0]:
        x = np.concatenate([x, np.repeat(x[-1:], nb - x.shape[0], axis=0)], axis=0)
    return np.ascontiguousarray(x, dtype=np.float32), valid


@dataclass(frozen=True)
class WindowRef:
    """A square window of ``size`` pixels at ``(r0, c0)`` in cube ``cube`` (may extend past the edge)."""

    cube: int
    r0: int
    c0: int
    size: int


def grid_windows(cubes: Sequence[Cube], size: int) -> list[WindowRef]:
    """The thesis window grid of every cube (overlap at right/bottom edges; one padded window if small)."""
    return [
        WindowRef(i, g.r0, g.c0, size)
        for i, cube in enumerate(cubes)
        for g in window_grid(cube.rows, cube.cols, size)
    ]


def random_windows(
    cubes: Sequence[Cube], size: int, n: int, rng: np.random.Generator
) -> list[WindowRef]:
    """``n`` random crops of ``size`` pixels, cubes chosen in proportion to their area."""
    areas = np.array([c.rows * c.cols for c in cubes], dtype=np.float64)
    which = rng.choice(len(cubes), size=n, p=areas / areas.sum())
    out = []
    for i in which:
        cube = cubes[int(i)]
        r0 = int(rng.integers(0, max(1, cube.rows - size + 1)))
        c0 = int(rng.integers(0, max(1, cube.cols - size + 1)))
        out.append(WindowRef(int(i), r0, c0, size))
    return out


def load_batch(
    cubes: Sequence[Cube],
    refs: Sequence[WindowRef],
    scaler: MinMaxScaler,
    config: CAEConfig,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (B, 1, net_bands, s, s)`` and ``valid (B, s, s)`` tensors; random flips when ``rng`` given."""
    xs, vs = [], []
    for ref in refs:
        block, inside = read_block(cubes[ref.cube], ref.r0, ref.r0 + ref.size, ref.c0, ref.c0 + ref.size)
        x, valid = prepare(block, inside, scaler, config)
        if rng is not None:
            if rng.random() < 0.5:
                x, valid = x[:, ::-1], valid[::-1]
            if rng.random() < 0.5:
                x, valid = x[:, :, ::-1], valid[:, ::-1]
        xs.append(np.ascontiguousarray(x))
        vs.append(np.ascontiguousarray(valid))
    x = torch.from_numpy(np.stack(xs))[:, None]
    return x, torch.from_numpy(np.stack(vs))


def masked_mse(
    recon: torch.Tensor, x: torch.Tensor, valid: torch.Tensor, bands: int, trim: float = 0.0
) -> torch.Tensor:
    """MSE over valid pixels and the first ``bands`` (real) bands; 0 when nothing is valid.

    ``trim`` in [0, 1): the pixels whose error (mean over bands) lies in the top ``trim`` fraction of the
    batch's valid pixels are left out too (rare, badly reconstructed pixels: likely targets).
    """
    err = (recon[:, 0, :bands] - x[:, 0, :bands]) ** 2  # (B, bands, s, s)
    w = valid.to(err.dtype)
    if trim > 0 and bool(valid.any()):
        per_pixel = err.detach().mean(dim=1)
        cut = torch.quantile(per_pixel[valid].float(), 1.0 - float(trim))
        w = w * (per_pixel <= cut).to(err.dtype)
    w = w[:, None]
    denom = w.sum() * bands
    return (err * w).sum() / denom.clamp_min(1.0)
