"""One entry point for every detector: ``iter_detect`` -> ``Detection`` (a score map in [0, 1]).

Methods (``METHODS``):
- ``glosh``: CAE features (``feature`` f1..f4 or pixel) + HDBSCAN GLOSH (thesis phase 3); window and
  section features are mapped back to pixels with the maximum where windows overlap.
- ``rx``: global RX; ``rx-local``: dual-window RX (``rx_window=(inner, outer)``).
- ``recon``: per-pixel reconstruction error of the CAE.
- ``glosh-rx``: mean of the ranks of per-pixel GLOSH and local RX (see ``DEFAULT_METHOD``).

Without a ``model`` the CAE methods first train the ``preset`` model on the cube itself (yielding its
progress). RX maps are min-max scaled distances (raw distances in ``extras["rx_distance"]``).
Pixels with no data (NaN in any band) score 0 and are ``False`` in ``extras["valid"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run
from napari_hsi_anomaly.core.scoring.glosh import GloshResult, GloshScorer
from napari_hsi_anomaly.core.scoring.maps import rank01, scale01, threshold, to_score_map
from napari_hsi_anomaly.core.scoring.rx import pca_reduce, rx_global, rx_local

METHODS = ("spectral-rx", "glosh", "glosh-spectral", "glosh-rx", "rx", "rx-local", "recon")
MODEL_METHODS = ("glosh", "glosh-rx", "recon")  # need a CAE (trained on the cube when none is given)
FEATURES = ("pixel", "f1", "f2", "f3", "f4")
SPECTRAL_COMPONENTS = 5
DEFAULT_METHOD = "spectral-rx"  # chosen by measurement on the nine labelled scenes (benchmarks/results)
DEFAULT_RX_WINDOW = (7, 25)


def default_train_options() -> Any:
    """Training used when no model is given: a few Adam steps on random 32x32 crops of the cube."""
    from napari_hsi_anomaly.core.model import TrainOptions

    return TrainOptions(epochs=1, optimizer="adam", crop=32, steps_per_epoch=40, batch_size=8,
                        val_fraction=0.0, seed=0)


@dataclass
class Detection:
    """A detector's result: ``score_map`` ``(rows, cols)`` float32 in [0, 1] (higher = more anomalous).

    ``params`` holds the settings; ``extras`` holds by-products for inspection (``valid``,
    ``rx_distance``, ``glosh_scores``, ``labels``, ``regions``, ``recon_per_band``, ...).
    """

    score_map: np.ndarray
    method: str
    feature: str
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    scorer: GloshScorer | None = field(default=None, repr=False)
    _compose: Callable[[GloshResult], np.ndarray] | None = field(default=None, repr=False)

    @property
    def can_rescore(self) -> bool:
        return self.scorer is not None and self._compose is not None

    def rescore(self, p_min: int) -> np.ndarray:
        """Score map for a new ``p_min`` from the cached HDBSCAN hierarchy (GLOSH methods only).

        Updates ``score_map``, ``params["p_min"]`` and the GLOSH extras, and returns the new map.
        """
        if not self.can_rescore:
            raise HsiAnomalyError(f"Method {self.method!r} has no p_min: only GLOSH results can be rescored.")
        result = self.scorer.score(int(p_min))  # type: ignore[union-attr]
        self.score_map = self._compose(result)  # type: ignore[misc]
        self.params["p_min"] = int(p_min)
        self.extras["glosh_scores"] = result.scores
        self.extras["labels"] = result.labels
        self.extras["glosh_warnings"] = list(result.warnings)
        return self.score_map

    def mask(self, t_anom: float = 0.7) -> np.ndarray:
        """``score_map >= t_anom``."""
        return threshold(self.score_map, t_anom)


def _as_cube(cube: Cube | np.ndarray) -> Cube:
    if isinstance(cube, Cube):
        return cube
    arr = np.asarray(cube)
    if arr.ndim != 3:
        raise ShapeError(f"Detection needs a (bands, rows, cols) cube; got shape {arr.shape}.")
    return Cube(arr)


def _finish(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.where(valid & np.isfinite(score), score, 0.0).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def _get_model(cube: Cube, model: Any, preset: str, train_options: Any) -> Generator[Progress, None, Any]:
    if model is not None:
        model.check_cube(cube)
        return model
    from napari_hsi_anomaly.core.model import iter_train

    options = train_options or default_train_options()
    trained = yield from iter_train(cube, preset, options)
    return trained


def _features(model: Any, cube: Cube, feature: str) -> Generator[Progress, None, Any]:
    from napari_hsi_anomaly.core.model import iter_features

    fs = yield from iter_features(model, cube, feature)
    return fs


def iter_detect(
    cube: Cube | np.ndarray,
    method: str = DEFAULT_METHOD,
    *,
    model: Any = None,
    feature: str = "pixel",
    p_min: int = 100,
    min_samples: int = 10,
    train_options: Any = None,
    preset: str = "fast",
    rx_window: tuple[int, int] = DEFAULT_RX_WINDOW,
    max_fit: int = 20000,
    seed: int = 0,
) -> Generator[Progress, None, Detection]:
    """Run detector ``method`` on ``cube`` (a ``Cube`` or ``(bands, rows, cols)`` array); see module doc."""
    if method not in METHODS:
        raise HsiAnomalyError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if feature not in FEATURES:
        raise HsiAnomalyError(f"Unknown feature {feature!r}; choose one of {', '.join(FEATURES)}.")
    cube = _as_cube(cube)
    valid = cube.valid_mask()
    if not valid.any():
        raise HsiAnomalyError("The cube has no valid pixel (every pixel has NaN or no-data in some band).")
    shape = (cube.rows, cube.cols)
    params: dict = {"method": method}
    extras: dict = {"valid": valid}

    if method in ("rx", "rx-local"):
        yield Progress(0, 1, f"{method}: computing")
        if method == "rx":
            dist = rx_global(cube)
        else:
            dist = rx_local(cube, *rx_window)
            params["rx_window"] = tuple(rx_window)
        extras["rx_distance"] = dist
        yield Progress(1, 1, f"{method}: done")
        return Detection(_finish(scale01(dist), valid), method, "pixel", params, extras)

    rows, cols = shape
    if method in MODEL_METHODS:
        model = yield from _get_model(cube, model, preset, train_options)
        params["model"] = model.describe() if hasattr(model, "describe") else str(model)
        extras["model"] = model

    if method == "recon":
        from napari_hsi_anomaly.core.model import iter_reconstruction

        rec = yield from iter_reconstruction(model, cube)
        extras["recon_per_pixel"] = rec.per_pixel
        extras["recon_per_band"] = rec.per_band
        return Detection(_finish(scale01(rec.per_pixel), valid), method, "pixel", params, extras)

    if method in MODEL_METHODS:
        feat = "pixel" if method == "glosh-rx" else feature
        fs = yield from _features(model, cube, feat)
        values, regions = fs.values, fs.regions
        if getattr(fs, "valid", None) is not None and not np.all(fs.valid):
            values = np.where(np.asarray(fs.valid)[:, None], values, np.nan)  # left out of the fit
        extras["features"] = fs
    else:
        feat = f"pca{SPECTRAL_COMPONENTS}"
        yield Progress(0, 1, f"spectral features: {SPECTRAL_COMPONENTS} principal components")
        values = pca_reduce(cube, SPECTRAL_COMPONENTS).reshape(-1, rows * cols).T
        regions = None
    yield Progress(0, 1, f"GLOSH: fitting HDBSCAN on {values.shape[0]} x {values.shape[1]}")
    scorer = GloshScorer(values, min_samples=min_samples, max_fit=max_fit, seed=seed)
    params.update(feature=feat, p_min=int(p_min), min_samples=int(min_samples), max_fit=int(max_fit))
    extras["regions"] = regions

    fixed: list[np.ndarray] = []  # rank maps combined with GLOSH's (ensembles)
    if method in ("glosh-rx", "spectral-rx"):
        yield Progress(0, 1, "local RX")
        dist = rx_local(cube, *rx_window)
        params["rx_window"] = tuple(rx_window)
        extras["rx_distance"] = dist
        fixed.append(rank01(np.where(valid, dist, np.nan)))

    def compose(r: GloshResult) -> np.ndarray:
        g = to_score_map(r.scores, regions, shape)
        if not fixed:
            return _finish(g, valid)
        ranks = [rank01(np.where(valid, g, np.nan)), *fixed]
        return _finish(np.mean(ranks, axis=0), valid)

    det = Detection(np.zeros(shape, np.float32), method, feat, params, extras, scorer, compose)
    det.rescore(p_min)
    yield Progress(1, 1, f"{method}: done")
    return det


def detect(cube: Cube | np.ndarray, method: str = DEFAULT_METHOD, **kwargs: Any) -> Detection:
    """``iter_detect`` run to the end."""
    return run(iter_detect(cube, method, **kwargs))
