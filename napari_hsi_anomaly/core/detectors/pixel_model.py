"""Detectors written as model code on pixel matrices, in the shape scikit-learn and PyOD know.

A ``PixelDetector`` subclass gives ``estimator(n_rows)``: an unfitted object with ``fit(X)`` and
``decision_function(X)`` (higher = more outlying: PyOD's models as they are, scikit-learn's novelty
detectors through ``-score_samples``), or overrides ``fit_pixels(x, valid)`` for more control. With
``glosh = True`` the estimator is a transformer instead (``fit``, ``transform``: PCA, an encoder, ...)
and its features are clustered by HDBSCAN/GLOSH (the part answers ``score(p_min)``). The adapter here
owns everything else:

- cubes to pixels: the reference cubes' ``(n_pixels, n_bands)`` float32 matrix (scaled, no-data as
  NaN) and its valid mask; targets read in row blocks, so memory stays bounded;
- NaN and no-data rows: never fitted nor scored (NaN in the raw map, 0 in the score);
- ``max_fit`` and ``seed`` (where declared): a random subsample of at most ``max_fit`` valid rows;
- progress, and reference caching: when every valid reference row was fitted, the estimator's own
  ``decision_scores_`` (PyOD: each row scored leaving itself out) are the reference cubes' raw maps;
- saving: ``refit_on_load`` keeps the fitted rows (arrays) and refits on load (deterministic,
  memory-based estimators: KNN, LOF); ``save_estimator``/``load_estimator`` give arrays of another
  estimator; without either a profile of the detector is refused with one line (never pickle).

A pixel model sees no neighbourhood, so its halo is 0 (``Scorer.halo``).
"""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer, prefixed
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress, run

BLOCK_PIXELS = 262144  # target pixels read per step
CHUNK = 65536  # rows per ``decision_function``/``transform`` call (one progress step each)


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
    """The fitted part of a ``PixelDetector`` (one subclass per detector: ``detector_class``);
    ``glosh``: the GLOSH reference of a ``glosh`` detector's features."""

    detector_class: ClassVar[type[PixelDetector]]  # type: ignore[misc]

    def __init__(self, fit: PixelFit, params: dict, bands: int, wavelengths: Any = None, *,
                 ref_maps: Sequence[np.ndarray] = (), refs: Sequence[Cube] = (), glosh: Any = None) -> None:
        self.detector, self.params, self.fit = self.detector_class.name, dict(params), fit
        self.bands, self.wavelengths, self.glosh = int(bands), wavelengths, glosh
        self._ref_maps = list(ref_maps)  # per reference cube: the estimator's own scores
        self._refs = [weakref.ref(c) for c in refs]

    def each_block(self, cube: Cube, fn: Any) -> Generator[Progress, None, np.ndarray]:
        """``fn`` of every valid pixel of ``cube`` (row blocks, chunks) as ``(n_pixels, width)``
        float32, NaN rows where a pixel has no data."""
        n = cube.rows * cube.cols
        out: np.ndarray | None = None
        step = max(1, BLOCK_PIXELS // max(1, cube.cols))
        for r0 in range(0, cube.rows, step):
            x = pixels(cube, slice(r0, min(cube.rows, r0 + step)))
            idx = np.flatnonzero(np.isfinite(x).all(axis=1))
            for a in range(0, idx.size, CHUNK):
                yield Progress(r0 * cube.cols + a, n, f"{self.detector}: scoring")
                rows = idx[a:a + CHUNK]
                y = np.asarray(fn(x[rows]), np.float32).reshape(rows.size, -1)
                if out is None:
                    out = np.full((n, y.shape[1]), np.nan, np.float32)
                out[r0 * cube.cols + rows] = y
        return np.full((n, 1), np.nan, np.float32) if out is None else out

    def features(self, cube: Cube) -> np.ndarray:
        """A ``glosh`` detector's features of every pixel (float64, NaN rows where invalid)."""
        return run(self.each_block(cube, self.fit.estimator.transform)).astype(np.float64)

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        if self.glosh is not None:
            yield Progress(0, 1, f"{self.detector}: features")
            handle = self.glosh.handle(cube, self.features)
            return Raw(glosh=handle, reference=self.glosh.scorer, feature=self.detector,
                       n_points=self.glosh.n_valid)
        for ref, raw in zip(self._refs, self._ref_maps):
            if ref() is cube:
                return Raw(fixed=raw)
        out = yield from self.each_block(cube, self.fit.estimator.decision_function)
        return Raw(fixed=out.reshape(cube.rows, cube.cols))

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        det = self.detector_class(**self.params)
        if det.refit_on_load:
            arrays = {"rows": np.asarray(self.fit.rows, np.float32)}
        else:
            arrays = {f"est.{k}": v for k, v in det.save_estimator(self.fit.estimator).items()}
        meta = self._meta()
        if self.glosh is not None:
            a, m = self.glosh.state()
            arrays, meta = {**arrays, **a}, {**meta, **m}
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> Scorer:
        from napari_hsi_anomaly.core.detectors._glosh import GloshReference

        det = cls.detector_class(**meta["params"])
        if det.refit_on_load:
            rows = np.asarray(arrays["rows"], np.float32)
            est = det.estimator(rows.shape[0])
            est.fit(rows)
            fit = PixelFit(est, rows)
        else:
            fit = PixelFit(det.load_estimator(prefixed(arrays, "est.")))
        glosh = GloshReference.from_state(arrays, meta) if det.glosh else None
        return cls(fit, meta["params"], meta["bands"], meta.get("wavelengths"), glosh=glosh)


class PixelDetector(Detector):
    """A detector written as model code on pixel matrices (see the module docstring)."""

    scorer_class: ClassVar[type[Scorer]] = PixelScorer
    refit_on_load: ClassVar[bool] = False  # a profile keeps the fitted rows and refits them on load
    glosh: ClassVar[bool] = False  # the estimator transforms; GLOSH clusters its features

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "scorer_class" not in cls.__dict__:  # the fitted part knows its detector (no registry)
            cls.scorer_class = type(f"{cls.__name__}Scorer", (PixelScorer,), {"detector_class": cls})
        if cls.glosh and "uses_p_min" not in cls.__dict__:
            cls.uses_p_min = True

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
        sizes = [c.rows * c.cols for c in cubes]
        x = np.vstack([pixels(c) for c in cubes]) if len(cubes) > 1 else pixels(cubes[0])
        valid = np.isfinite(x).all(axis=1)
        fit = self.fit_pixels(x, valid)
        fit = fit if isinstance(fit, PixelFit) else PixelFit(fit)
        scorer_cls: Any = self.scorer_class
        if self.glosh:
            from napari_hsi_anomaly.core.detectors._glosh import GloshReference

            part = scorer_cls(fit, self.params, cubes[0].bands, cubes[0].wavelengths)
            yield Progress(0, 1, f"{self.name}: fitting GLOSH")
            p = self.params
            part.glosh = GloshReference([part.features(c) for c in cubes], cubes,
                                        min_samples=int(p.get("min_samples") or 10),
                                        max_fit=int(p.get("max_fit") or 20000), seed=int(p.get("seed") or 0))
            return part
        ref_maps = []
        if fit.self_scores is not None and fit.self_scores.size == int(valid.sum()):
            full = np.full(x.shape[0], np.nan, np.float32)
            full[valid] = fit.self_scores
            per_cube = np.split(full, np.cumsum(sizes)[:-1])
            ref_maps = [m.reshape(c.rows, c.cols) for m, c in zip(per_cube, cubes)]
        return scorer_cls(fit, self.params, cubes[0].bands, cubes[0].wavelengths, ref_maps=ref_maps,
                          refs=cubes)
