"""CAE features + Isolation Forest: the sources' alternative to the reconstruction error ("deep features
fed to an Isolation Forest, robust to background clutter").

Each pixel is the point GLOSH clusters per pixel (``glosh``'s ``PixelSpace``: leading components of the
encoder's pixel feature and of the signed reconstruction residual, whitened, plus the normalised
reconstruction error, fitted on the reference). scikit-learn's ``IsolationForest`` is grown on at most
``max_fit`` reference points, once per random rotation of the space (``rotations`` forests sharing
``trees``): a single forest cuts along the coordinate axes only, so a target that is unusual in a
direction between the axes (a combination of components) is isolated late; averaging forests over random
orthogonal rotations removes that axis bias (the idea of the Extended Isolation Forest, with the library's
trees). The raw outlyingness is the negated ``score_samples`` averaged over the forests (short mean path =
isolated = outlying). Profiles keep the fitted points and the seed, not the trees (no pickle): rotations
and forests are grown again, identically, when a profile is loaded.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import MAX_FIT, SEED, Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.glosh_cae import (
    PRESET,
    RESIDUAL,
    errors_of,
    features_of,
    get_model,
    model_label,
    pixel_points,
)
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress

TREES = Param("trees", int, 320, "Isolation Forest: trees grown in all (shared by the rotations)", minimum=10,
              maximum=2000)
ROTATIONS = Param("rotations", int, 8, "Isolation Forest: random rotations of the feature space, one forest "
                  "each (1: the plain forest on the axes)", minimum=1, maximum=64)


class RotatedForest:
    """``rotations`` scikit-learn ``IsolationForest``s, each on the points turned by its own random
    orthogonal matrix (the first is the identity when ``rotations`` is 1); deterministic for a seed."""

    def __init__(self, points: np.ndarray, trees: int, rotations: int, seed: int) -> None:
        from sklearn.ensemble import IsolationForest

        n = max(1, int(rotations))
        rng = np.random.default_rng(int(seed))
        d = points.shape[1]
        self.rotations = [np.eye(d)] if n == 1 else [np.linalg.qr(rng.standard_normal((d, d)))[0]
                                                    for _ in range(n)]
        per = max(1, int(trees) // n)
        self.forests = [IsolationForest(n_estimators=per, max_samples=min(256, len(points)),
                                        random_state=int(seed) + i, n_jobs=1).fit(points @ q)
                        for i, q in enumerate(self.rotations)]

    def score_samples(self, points: np.ndarray) -> np.ndarray:
        """The forests' ``score_samples`` (negative: low = outlying) averaged over the rotations."""
        return np.mean([f.score_samples(points @ q) for f, q in zip(self.forests, self.rotations,
                                                                     strict=True)], axis=0)


def grow_forest(points: np.ndarray, trees: int, seed: int, rotations: int = 1) -> RotatedForest:
    """The rotated forests on ``points`` (deterministic for a seed; one thread)."""
    return RotatedForest(np.asarray(points, np.float64), trees, rotations, seed)


def forest_map(forest: RotatedForest, points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(rows, cols)`` float32: ``-score_samples`` of the finite rows of ``points``, NaN elsewhere."""
    out = np.full(points.shape[0], np.nan, np.float32)
    ok = np.isfinite(points).all(axis=1)
    if ok.any():
        out[ok] = -forest.score_samples(np.asarray(points[ok], np.float64))
    return out.reshape(shape)


class IforestScorer(Scorer):
    """The CAE (outside the state), the ``PixelSpace`` and the forest's training points."""

    def __init__(self, model: Any, space: Any, train: np.ndarray, params: dict, bands: int,
                 wavelengths=None) -> None:
        self.detector, self.params, self.model, self.space = "iforest-cae", dict(params), model, space
        self.bands, self.wavelengths, self.train = int(bands), wavelengths, np.asarray(train, np.float32)
        self.forest = grow_forest(self.train, self.params["trees"], self.params["seed"],
                                  self.params.get("rotations", 1))

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        self.model.check_cube(cube)
        values, fs = yield from features_of(self.model, cube, "pixel")
        points = yield from pixel_points(self.space, self.model, cube, values)
        yield Progress(0, 1, f"Isolation Forest: {points.shape[0]} pixels")
        return self.raw_of(points, (cube.rows, cube.cols))

    def raw_of(self, points: np.ndarray, shape: tuple[int, int]) -> Raw:
        return Raw(fixed=forest_map(self.forest, points, shape), extras={"model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        a, m = self.space.state()
        arrays = {"train": self.train, **{f"pixel_space.{k}": v for k, v in a.items()}}
        return arrays, {**self._meta(), "model": model_label(self.model), "pixel_space": m}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> IforestScorer:
        from napari_hsi_anomaly.core.detectors.base import prefixed
        from napari_hsi_anomaly.core.model.features import PixelSpace

        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        space = PixelSpace.from_state(prefixed(arrays, "pixel_space."), meta["pixel_space"])
        return cls(model, space, arrays["train"], meta["params"], meta["bands"], meta.get("wavelengths"))


@register
class IforestCaeDetector(Detector):
    scorer_class = IforestScorer
    order = 9.6
    name = "iforest-cae"
    label = "CAE features + Isolation Forest"
    calibration_z0 = 1.65  # pick_z0 (bench_cae.py --report-detect, 9 dev scenes): 8/9 in [0.25, 4]
    summary = "the CAE's per-pixel features (as glosh clusters them) scored by scikit-learn's IsolationForest"
    params = (PRESET, RESIDUAL, TREES, ROTATIONS, MAX_FIT, SEED)
    needs_model = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, IforestScorer]:
        from napari_hsi_anomaly.core.model import features as feat

        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        values, errors, residuals = [], [], []
        n_res = int(self.params["residual"])
        for c in cubes:
            v, _ = yield from features_of(model, c, "pixel")
            e, r = yield from errors_of(model, c, residual=n_res > 0)
            values.append(v)
            errors.append(e)
            residuals.append(r)
        space = feat.PixelSpace.fit(values, errors if feat.PIXEL_RECON else None, feat.PIXEL_COMPONENTS,
                                    seed=self.params["seed"], residuals=residuals if n_res else None,
                                    residual_components=n_res)
        points = [space.transform(v, errors[i] if feat.PIXEL_RECON else None, residuals[i] if n_res else None)
                  for i, v in enumerate(values)]
        allp = np.concatenate(points)
        allp = allp[np.isfinite(allp).all(axis=1)]
        rng = np.random.default_rng(int(self.params["seed"]))
        if allp.shape[0] > int(self.params["max_fit"]):
            allp = allp[np.sort(rng.choice(allp.shape[0], int(self.params["max_fit"]), replace=False))]
        trees, rot = self.params["trees"], self.params["rotations"]
        yield Progress(0, 1, f"Isolation Forest: {trees} trees over {rot} rotations, {allp.shape[0]} points")
        scorer = IforestScorer(model, space, allp, self.params, cubes[0].bands, cubes[0].wavelengths)
        for c, p in zip(cubes, points, strict=True):  # the calibration reuses them
            scorer.remember_raw(c, scorer.raw_of(p, (c.rows, c.cols)))
        return scorer
