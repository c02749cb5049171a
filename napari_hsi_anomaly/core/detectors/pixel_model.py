"""Detectors written as model code on pixel matrices, in the shape scikit-learn and PyOD know.

A ``PixelDetector`` subclass gives ``estimator(n_rows)``: an unfitted object with ``fit(X)`` and
``decision_function(X)`` (higher = more outlying: PyOD's models as they are, scikit-learn's novelty
detectors through ``-score_samples``), or overrides ``fit_pixels(x, valid)`` for more control. The
adapter here owns everything else:

- cubes to pixels: the reference cubes' ``(n_pixels, n_bands)`` float32 matrix (scaled, no-data as
  NaN) and its valid mask; targets read in row blocks, so memory stays bounded;
- NaN and no-data rows: never fitted nor scored (NaN in the raw map, 0 in the score);
- ``max_fit`` and ``seed`` (where declared): a random subsample of at most ``max_fit`` valid rows;
- progress, and reference caching: when every valid reference row was fitted, the estimator's own
  ``decision_scores_`` (PyOD: each row scored leaving itself out) are the reference cubes' raw maps;
- saving: ``refit_on_load`` keeps the fitted rows (arrays) and refits on load (deterministic,
  memory-based estimators: KNN, LOF); ``save_estimator``/``load_estimator`` give arrays of another
  estimator; without either a profile of the detector is refused with one line (never pickle).

The raw map is a fixed map (calibrated as every other, ``calibration.py``). A pixel model sees no
neighbourhood, so its halo is 0 (``Scorer.halo``).
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

BLOCK_PIXELS = 262144  # target pixels read per step
CHUNK = 65536  # rows per ``decision_function`` call (one progress step each)


def pixels(cube: Cube, rows: slice = slice(None)) -> np.ndarray:
    """``(n_pixels, bands)`` float32 of ``cube``'s ``rows`` (NaN rows where a pixel has no data)."""
    return cube.as_float32(rows).reshape(cube.bands, -1).T


@dataclass
class PixelFit:
    """A fitted estimator; ``rows``: the pixels it was fitted on (kept for ``refit_on_load``);
    ``self_scores``: its raw score of every valid reference row, in order, when all were fitted."""

    estimator: Any
    rows: np.ndarray | None = None
    self_scores: np.ndarray | None = None


class PixelScorer(Scorer):
    """The fitted part of a ``PixelDetector`` (one subclass per detector: ``detector_class``)."""

    def __init__(self, fit: PixelFit, params: dict, bands: int, wavelengths: Any = None, *,
                 ref_maps: Sequence[np.ndarray] = (), refs: Sequence[Cube] = ()) -> None:
        cls = self.detector_class
        assert cls is not None
        self.detector, self.params, self.fit = cls.name, dict(params), fit
        self.bands, self.wavelengths = int(bands), wavelengths
        self._ref_maps = list(ref_maps)  # per reference cube: the estimator's own scores
        self._refs = [weakref.ref(c) for c in refs]

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        for ref, raw in zip(self._refs, self._ref_maps):
            if ref() is cube:
                return Raw(fixed=raw)
        out = np.full(cube.rows * cube.cols, np.nan, np.float32)
        step = max(1, BLOCK_PIXELS // max(1, cube.cols))
        for r0 in range(0, cube.rows, step):
            x = pixels(cube, slice(r0, min(cube.rows, r0 + step)))
            idx = np.flatnonzero(np.isfinite(x).all(axis=1))
            base = r0 * cube.cols
            for a in range(0, idx.size, CHUNK):
                yield Progress(base + a, out.size, f"{self.detector}: scoring")
                rows = idx[a:a + CHUNK]
                out[base + rows] = self.fit.estimator.decision_function(x[rows])
        return Raw(fixed=out.reshape(cube.rows, cube.cols))

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        cls = self.detector_class
        if cls.refit_on_load:
            return {"rows": np.asarray(self.fit.rows, np.float32)}, self._meta()
        return cls(**self.params).save_estimator(self.fit.estimator), self._meta()

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> Scorer:
        det = cls.detector_class(**meta["params"])
        if det.refit_on_load:
            rows = np.asarray(arrays["rows"], np.float32)
            est = det.estimator(rows.shape[0])
            est.fit(rows)
            fit = PixelFit(est, rows)
        else:
            fit = PixelFit(det.load_estimator(arrays))
        return cls(fit, meta["params"], meta["bands"], meta.get("wavelengths"))


class PixelDetector(Detector):
    """A detector written as model code on pixel matrices (see the module docstring)."""

    scorer_class: ClassVar[type[Scorer]] = PixelScorer
    refit_on_load: ClassVar[bool] = False  # a profile keeps the fitted rows and refits them on load

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "scorer_class" not in cls.__dict__:  # the fitted part knows its detector (no registry)
            cls.scorer_class = type(f"{cls.__name__}Scorer", (PixelScorer,), {"detector_class": cls})

    def estimator(self, n_rows: int) -> Any:
        """An unfitted estimator for ``n_rows`` reference pixels (``fit``, ``decision_function``)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither estimator nor fit_pixels")

    def min_rows(self) -> int:
        """Fewer valid reference pixels than this are refused with one line."""
        return 2

    def fit_pixels(self, x: np.ndarray, valid: np.ndarray) -> PixelFit | Any:
        """Fit on the valid rows of ``x`` ``(n_pixels, n_bands)`` (at most ``max_fit`` of them, drawn
        with ``seed``, where the detector declares those); a ``PixelFit`` or a fitted estimator."""
        ok = np.flatnonzero(valid)
        if ok.size < self.min_rows():
            raise HsiAnomalyError(f"{self.name} needs at least {self.min_rows()} valid pixels; the "
                                  f"reference has {ok.size}.")
        max_fit = self.params.get("max_fit")
        whole = max_fit is None or ok.size <= max_fit
        if not whole:
            rng = np.random.default_rng(self.params.get("seed") or 0)
            ok = np.sort(rng.choice(ok, int(max_fit), replace=False))
        est = self.estimator(int(ok.size))
        est.fit(x[ok])
        own = getattr(est, "decision_scores_", None)
        return PixelFit(est, x[ok], np.asarray(own, np.float32) if whole and own is not None else None)

    def save_estimator(self, estimator: Any) -> dict[str, np.ndarray]:
        """The fitted estimator as plain arrays (a profile); refused unless a detector says how."""
        raise HsiAnomalyError(f"{self.name}: its fitted model cannot be saved as arrays, so it cannot "
                              "be kept in a profile; fit it on the reference cubes instead.")

    def load_estimator(self, arrays: dict[str, np.ndarray]) -> Any:
        """The fitted estimator from ``save_estimator``'s arrays."""
        raise HsiAnomalyError(f"{self.name}: a profile of it cannot be loaded.")

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                  ) -> Generator[Progress, None, Scorer]:
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise HsiAnomalyError(f"The {self.name} detector needs {', '.join(missing)}: "
                                  f"pip install {' '.join(missing)}.")
        yield Progress(0, 1, f"{self.name}: fitting")
        per_cube = [pixels(c) for c in cubes]
        x = per_cube[0] if len(per_cube) == 1 else np.vstack(per_cube)
        valid = np.isfinite(x).all(axis=1)
        fit = self.fit_pixels(x, valid)
        fit = fit if isinstance(fit, PixelFit) else PixelFit(fit)
        ref_maps = []
        if fit.self_scores is not None and fit.self_scores.size == int(valid.sum()):
            full = np.full(x.shape[0], np.nan, np.float32)
            full[valid] = fit.self_scores
            a = 0
            for c in cubes:
                ref_maps.append(full[a:a + c.rows * c.cols].reshape(c.rows, c.cols))
                a += c.rows * c.cols
        return self.scorer_class(fit, self.params, cubes[0].bands, cubes[0].wavelengths,  # type: ignore[call-arg]
                                 ref_maps=ref_maps, refs=cubes)
