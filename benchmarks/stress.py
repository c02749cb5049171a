"""The stress set built from the nine development scenes (issue 8): what a scene the defaults were not
chosen on may look like.

Each development scene gives two stress scenes: every third band, an 80x100 crop (the one holding the
most labelled pixels), values rescaled to [0, 1] (``/unit``) or to integers x 10,000 (``/int``, uint16:
many exact duplicates), and 3 % of the pixels planted as 1-px targets with **one recipe** (a single
spectrum ``mean + std * c``, c ~ U[3, 5) per band drawn once, mixed into the pixel at 70-100 %), so the
planted pixels are similar and numerous (they would form a cluster of their own under a small p_min).
Ground truth: the scene's labels in the crop plus the planted pixels.
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


def stress_set(seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``[(name, cube, gt)]``: two stress scenes per development scene."""
    out = []
    for k, path in enumerate(sorted(DATA.glob("*.npz"))):
        cube, gt = load_scene(path)
        for scaling in ("unit", "int"):
            c, g = stress_scene(cube, gt, scaling, seed + k)
            out.append((f"{path.stem}/{scaling}", c, g))
    return out
