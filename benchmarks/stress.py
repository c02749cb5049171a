"""The stress set built from the nine development scenes (issue 8): what a scene the defaults were not
chosen on may look like.

Each development scene gives two stress scenes: every third band, an 80x100 crop (the one holding the
most labelled pixels), values rescaled to [0, 1] (``/unit``) or to integers x 10,000 (``/int``, uint16:
many exact duplicates), and 3 % of the pixels planted as 1-px targets with **one recipe** (a single
spectrum ``mean + std * c``, c ~ U[3, 5) per band drawn once, mixed into the pixel at 70-100 %), so the
planted pixels are similar and numerous (they would form a cluster of their own under a small p_min).
Ground truth: the scene's labels in the crop plus the planted pixels.

Two more per development scene (issue 24: targets of every size, another sensor's band count):
``/blocksN``: the same crop and bands in [0, 1] with square targets of N x N px (N = 8, 12 or 20 in turn
over the scenes; 3, 2 or 1 of them: 2.4-5 % of the pixels), all of one recipe mixed at 70-100 % per pixel,
placed away from the labels and from each other; ``/64b``: 64 bands spread over the whole range, the full
scene in [0, 1], with 2-3 % of the pixels in three or four square targets of one recipe (7x7 to 10x10).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.scoring.validation import plant_one_recipe

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HSI_SHARED_DATA", REPO.parent / "shared" / "data")) / "hsi-ad"
CROP = (80, 100)


def load_scene(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(cube (bands, rows, cols) float32, gt (rows, cols) uint8)`` of a development scene."""
    z = np.load(path, allow_pickle=False)
    return np.moveaxis(z["cube"], -1, 0).astype(np.float32), (z["gt"] > 0).astype(np.uint8)


def best_crop(gt: np.ndarray, size: tuple[int, int] = CROP) -> tuple[slice, slice]:
    """The ``size`` window holding the most labelled pixels (first such, row-major)."""
    h, w = min(size[0], gt.shape[0]), min(size[1], gt.shape[1])
    integ = np.pad(np.cumsum(np.cumsum(gt, 0), 1), ((1, 0), (1, 0)))
    sums = integ[h:, w:] - integ[:-h, w:] - integ[h:, :-w] + integ[:-h, :-w]
    r, c = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return slice(r, r + h), slice(c, c + w)


def stress_scene(cube: np.ndarray, gt: np.ndarray, scaling: str, seed: int = 0,
                 fraction: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """One stress scene from a development scene (see the module docstring)."""
    rs, cs = best_crop(gt)
    c = cube[::3, rs, cs]
    g = gt[rs, cs]
    lo, hi = float(c.min()), float(c.max())
    c = (c - lo) / (hi - lo if hi > lo else 1.0)
    c, planted = plant_one_recipe(c, fraction, seed=seed, exclude=g > 0)
    c = np.clip(c, 0.0, None)
    c = c / max(float(c.max()), 1e-12)
    c = np.round(c * 10000).astype(np.uint16) if scaling == "int" else c.astype(np.float32)
    return c, (g.astype(bool) | planted).astype(np.uint8)


BLOCKS = ((8, 3), (12, 2), (20, 1))  # (side, count): one per scene in turn


def unit(c: np.ndarray) -> np.ndarray:
    lo, hi = float(c.min()), float(c.max())
    return ((c - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def plant_blocks(cube: np.ndarray, sides: list[int], seed: int, exclude: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Square targets of ``sides`` px of **one recipe** (``mean + std * c``, c ~ U[3, 5) per band, mixed
    at 70-100 % per pixel) in ``cube (bands, rows, cols)``, each at least 2 px from ``exclude``, the
    others and the border. Returns ``(planted cube in [0, 1] float32, planted mask)``."""
    rng = np.random.default_rng(seed)
    b, rows, cols = cube.shape
    flat = cube.reshape(b, -1)
    recipe = flat.mean(axis=1) + flat.std(axis=1) * rng.uniform(3.0, 5.0, b)
    taken = np.asarray(exclude, bool).copy()
    planted = np.zeros((rows, cols), bool)
    out = cube.copy()
    for side in sides:
        for _ in range(1000):
            r, c = int(rng.integers(2, rows - side - 2)), int(rng.integers(2, cols - side - 2))
            if not taken[r - 2:r + side + 2, c - 2:c + side + 2].any():
                break
        taken[r - 2:r + side + 2, c - 2:c + side + 2] = True
        planted[r:r + side, c:c + side] = True
        alpha = rng.uniform(0.7, 1.0, (side, side)).astype(np.float32)
        out[:, r:r + side, c:c + side] = alpha * recipe[:, None, None] + (1 - alpha) * out[:, r:r + side,
                                                                                            c:c + side]
    out = np.clip(out, 0.0, None)
    return (out / max(float(out.max()), 1e-12)).astype(np.float32), planted


def blocks_scene(cube: np.ndarray, gt: np.ndarray, k: int, seed: int = 0
                 ) -> tuple[str, np.ndarray, np.ndarray]:
    """``(suffix, cube, gt)``: the crop of ``stress_scene`` with ``BLOCKS[k % 3]`` square targets."""
    side, count = BLOCKS[k % len(BLOCKS)]
    rs, cs = best_crop(gt)
    g = gt[rs, cs] > 0
    c, planted = plant_blocks(unit(cube[::3, rs, cs]), [side] * count, seed, g)
    return f"blocks{side}", c, (g | planted).astype(np.uint8)


def bands64_scene(cube: np.ndarray, gt: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The whole scene, 64 bands spread over its range, in [0, 1], 2-3 % of it in a few square targets."""
    idx = np.round(np.linspace(0, cube.shape[0] - 1, 64)).astype(int)
    rows, cols = gt.shape
    sides = [10, 9, 8, 7]
    n = rows * cols
    while sum(s * s for s in sides) > 0.03 * n:
        sides = sides[:-1]
    c, planted = plant_blocks(unit(cube[idx]), sides, seed, gt > 0)
    return c, ((gt > 0) | planted).astype(np.uint8)


def stress_set(seed: int = 0, kinds: tuple[str, ...] = ("unit", "int", "blocks", "64b")
               ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, cube, gt)]``: four stress scenes per development scene (``kinds`` picks)."""
    out = []
    for k, path in enumerate(sorted(DATA.glob("*.npz"))):
        cube, gt = load_scene(path)
        for scaling in ("unit", "int"):
            if scaling in kinds:
                c, g = stress_scene(cube, gt, scaling, seed + k)
                out.append((f"{path.stem}/{scaling}", c, g))
        if "blocks" in kinds:
            suffix, c, g = blocks_scene(cube, gt, k, seed + k)
            out.append((f"{path.stem}/{suffix}", c, g))
        if "64b" in kinds:
            c, g = bands64_scene(cube, gt, seed + k)
            out.append((f"{path.stem}/64b", c, g))
    return out
