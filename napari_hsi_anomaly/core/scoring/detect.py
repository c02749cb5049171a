"""One entry point for every detector: ``iter_detect`` -> ``Detection`` (a score map in [0, 1]).

Methods (``METHODS``):
- ``spectral-rx`` (default): mean of ``glosh-spectral`` and robustly scaled ``rx-local``; no CAE needed.
- ``glosh``: CAE features (``feature`` f1..f4 or pixel) + HDBSCAN GLOSH (thesis phase 3); window and
  section features are mapped back to pixels with the maximum where windows overlap.
- ``glosh-spectral``: GLOSH per pixel on the ``SPECTRAL_COMPONENTS`` leading principal components of
  the spectra (min-max scaled).
- ``glosh-rx``: mean of per-pixel CAE GLOSH and local RX (scaled as ``RX_SCALE_PERCENTILES`` says).
- ``ensemble``: mean of per-pixel CAE GLOSH, ``glosh-spectral`` and local RX.
- ``rx``: global RX; ``rx-local``: dual-window RX (``rx_window=(inner, outer)``).
- ``recon``: per-pixel reconstruction error of the CAE.

The default was chosen by measurement on the nine labelled real scenes (benchmarks/bench_scenes.py,
one configuration for all): mean AUC spectral-rx 0.973 and ensemble 0.975 against global RX 0.931;
spectral-rx needs no training (seconds), the ensemble adds a CAE (about a minute per scene here).
``p_min=None`` (default) picks ``auto_p_min`` for the feature set.
Without a ``model`` the CAE methods first train the ``preset`` model on the cube itself (yielding its
progress). RX maps are min-max scaled distances (raw distances in ``extras["rx_distance"]``); combined
maps are means of GLOSH scores and RX distances scaled to [0, 1] by their 99.9th percentile.
Pixels with no data (NaN in any band) score 0 (``extras["valid"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run
from napari_hsi_anomaly.core.scoring.glosh import GloshResult, GloshScorer
from napari_hsi_anomaly.core.scoring.maps import scale01, threshold, to_score_map
from napari_hsi_anomaly.core.scoring.rx import pca_reduce, rx_global, rx_local

METHODS = ("spectral-rx", "ensemble", "glosh", "glosh-spectral", "glosh-rx", "rx", "rx-local", "recon")
MODEL_METHODS = ("ensemble", "glosh", "glosh-rx", "recon")  # need a CAE (trained when none is given)
FEATURES = ("pixel", "f1", "f2", "f3", "f4")
SPECTRAL_COMPONENTS = 5
DEFAULT_METHOD = "spectral-rx"  # chosen by measurement on the nine labelled scenes (benchmarks/results)
DEFAULT_RX_WINDOW = (7, 25)
# In combinations, RX distances are scaled so that the top 0.1 % of pixels saturate at 1 and averaged
# with GLOSH scores (not ranks): the mean keeps GLOSH's meaning, so t_anom = 0.7 flags about as many
# pixels as are anomalous (0.78 % on the nine real scenes, 1.19 % true) where a mean of ranks is
# uniform on [0, 1] and flags 30 %. Mean AUC 0.9759 (ranks: 0.9732).
RX_SCALE_PERCENTILES = (0.0, 99.9)
PIXEL_P_MIN_FRACTION = 0.01  # per pixel: a cluster holds at least 1 % of the scene (and >= 100 pixels)
THESIS_P_MIN_FRACTION = 100 / 2925  # per window/section: the thesis's p_min = 100 of 2925 windows


def auto_p_min(n_points: int, *, per_pixel: bool = True) -> int:
    """Default ``p_min`` for ``n_points`` feature rows.

    Per pixel: ``max(100, ceil(1 % of the pixels))``. A group of similar pixels at least ``p_min``
    strong forms a cluster of its own and stops being an outlier, so ``p_min`` must exceed the size of
    what should be found; with 100 alone, the four 100-px planted squares of the 256x256 sample scene
    formed a cluster (spectral-rx AUC 0.66 there; 1.00 with this rule, the nine real 100x100 scenes
    unchanged). Per window/section: the thesis's ratio, 100 of 2925 points (at least 5).
    """
    if per_pixel:
        return max(100, int(np.ceil(PIXEL_P_MIN_FRACTION * n_points)))
    return max(5, int(round(THESIS_P_MIN_FRACTION * n_points)))


def default_train_options() -> Any:
    """Training used when no model is given: a few Adam steps on random 32x32 crops of the cube."""
    from napari_hsi_anomaly.core.model import TrainOptions

    return TrainOptions(epochs=1, optimizer="adam", crop=32, steps_per_epoch=25, batch_size=4,
                        val_fraction=0.0, seed=0)


@dataclass
class Detection:
    """A detector's result: ``score_map`` ``(rows, cols)`` float32 in [0, 1] (higher = more anomalous).

    ``params`` holds the settings; ``extras`` holds by-products for inspection (``valid``,
    ``rx_distance``, ``glosh_scores``, ``glosh_result`` (its ``.labels``), ``regions``,
    ``recon_per_band``, ...).
    ``scorers``: the cached GLOSH hierarchies (one per feature set) that ``rescore`` re-condenses.
    """

    score_map: np.ndarray
    method: str
    feature: str
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    scorers: list[GloshScorer] = field(default_factory=list, repr=False)
    _compose: Callable[[list[GloshResult]], np.ndarray] | None = field(default=None, repr=False)

    @property
    def scorer(self) -> GloshScorer | None:
        """The first (main) cached GLOSH scorer, if any."""
        return self.scorers[0] if self.scorers else None

    @property
    def can_rescore(self) -> bool:
        return bool(self.scorers) and self._compose is not None

    def rescore(self, p_min: int) -> np.ndarray:
        """Score map for a new ``p_min`` from the cached HDBSCAN hierarchy (GLOSH methods only).

        Updates ``score_map``, ``params["p_min"]`` and the GLOSH extras, and returns the new map.
        """
        if not self.can_rescore:
            raise HsiAnomalyError(f"Method {self.method!r} has no p_min: only GLOSH results can be rescored.")
        results = [sc.score(int(p_min)) for sc in self.scorers]
        self.score_map = self._compose(results)  # type: ignore[misc]
        self.params["p_min"] = int(p_min)
        self.extras["glosh_scores"] = results[0].scores
        self.extras["glosh_result"] = results[0]  # .labels (HDBSCAN clusters) computed on first read
        self.extras["glosh_warnings"] = [w for r in results for w in r.warnings]
        return self.score_map

    def mask(self, t_anom: float = 0.7) -> np.ndarray:
        """``score_map >= t_anom``."""
        return threshold(self.score_map, t_anom)




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
    p_min: int | None = None,
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
    cube = as_cube(cube, "Detection")
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

    scorers: list[GloshScorer] = []
    maps: list[np.ndarray | None] = []  # per scorer: regions (None = per pixel)

    def add_scorer(values: np.ndarray, regions: np.ndarray | None) -> None:
        n_ok = int(np.isfinite(values).all(axis=1).sum())
        if n_ok <= min_samples:
            unit = "pixels" if regions is None else ("windows" if feature in ("f1", "f3") else "sections")
            raise ShapeError(
                f"Only {n_ok} valid {unit} to cluster on this {rows}x{cols} cube: HDBSCAN needs more than "
                f"min_samples={min_samples}. Use a smaller window, the pixel feature, or a larger cube."
            )
        yield Progress(0, 1, f"GLOSH: fitting HDBSCAN on {values.shape[0]} x {values.shape[1]}")
        scorers.append(GloshScorer(values, min_samples=min_samples, max_fit=max_fit, seed=seed))
        maps.append(regions)

    feat = feature
    if method in MODEL_METHODS:
        feat = feature if method == "glosh" else "pixel"
        fs = yield from _features(model, cube, feat)
        values = fs.values
        if getattr(fs, "valid", None) is not None and not np.all(fs.valid):
            values = np.where(np.asarray(fs.valid)[:, None], values, np.nan)  # left out of the fit
        extras["features"] = fs
        extras["regions"] = fs.regions
        yield from add_scorer(values, fs.regions)
    if method in ("glosh-spectral", "spectral-rx", "ensemble"):
        spectral = f"pca{SPECTRAL_COMPONENTS}"
        feat = spectral if method != "ensemble" else f"pixel+{spectral}"
        yield Progress(0, 1, f"spectral features: {SPECTRAL_COMPONENTS} principal components")
        values = pca_reduce(cube, SPECTRAL_COMPONENTS).reshape(-1, rows * cols).T
        extras.setdefault("regions", None)
        yield from add_scorer(values, None)
    if p_min is None:
        per_pixel = maps[0] is None
        n = int(valid.sum()) if per_pixel else int(scorers[0].n_points)
        p_min = auto_p_min(n, per_pixel=per_pixel)
        params["p_min_auto"] = True
    params.update(feature=feat, p_min=int(p_min), min_samples=int(min_samples), max_fit=int(max_fit))

    fixed: list[np.ndarray] = []  # rank maps combined with GLOSH's (ensembles)
    if method in ("glosh-rx", "spectral-rx", "ensemble"):
        yield Progress(0, 1, "local RX")
        dist = rx_local(cube, *rx_window)
        params["rx_window"] = tuple(rx_window)
        extras["rx_distance"] = dist
        fixed.append(scale01(np.where(valid, dist, np.nan), percentiles=RX_SCALE_PERCENTILES))

    def compose(results: list[GloshResult]) -> np.ndarray:
        glosh = [to_score_map(r.scores, reg, shape) for r, reg in zip(results, maps)]
        if len(glosh) == 1 and not fixed:
            return _finish(glosh[0], valid)
        return _finish(np.mean(glosh + fixed, axis=0), valid)

    det = Detection(np.zeros(shape, np.float32), method, feat, params, extras, scorers, compose)
    det.rescore(p_min)
    yield Progress(1, 1, f"{method}: done")
    return det


def detect(cube: Cube | np.ndarray, method: str = DEFAULT_METHOD, **kwargs: Any) -> Detection:
    """``iter_detect`` run to the end."""
    return run(iter_detect(cube, method, **kwargs))
