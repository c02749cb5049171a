"""Optional peer: PyOD's KNN detector (distance to the k-th nearest reference spectrum).

Needs the ``pyod`` extra (``pip install napari-hsi-anomaly[pyod]``); it is registered only when pyod
can be imported (``core/detectors/__init__.py``). pyod is imported when the detector is fitted.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._spectral import row_blocks
from napari_hsi_anomaly.core.detectors.base import SEED, Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

N_NEIGHBORS = Param("n_neighbors", int, None, "neighbours: the score is the distance to the k-th "
                    "(auto: 5 % of the fitted spectra, at least 5)", minimum=1, maximum=5000)
KNN_MAX_FIT = Param("max_fit", int, 3000, "at most this many reference spectra fitted", minimum=50,
                    maximum=50000)
AUTO_K_FRACTION = 0.05


def auto_k(n_fitted: int) -> int:
    """Default ``k``: 5 % of the fitted spectra (at least 5). With PyOD's k = 5 a few hundred similar
    anomalous pixels are each other's neighbours and score low (stress set: AUC 0.27-0.69); 5 % of
    3,000 spectra keeps every stress scene >= 0.92 (benchmarks/results/bench_scenes.md)."""
    return max(5, int(round(AUTO_K_FRACTION * n_fitted)))
CHUNK = 65536


def _import_knn() -> Any:
    try:
        from pyod.models.knn import KNN
    except ImportError:
        raise HsiAnomalyError("The knn detector needs PyOD: pip install 'napari-hsi-anomaly[pyod]'.") \
            from None
    return KNN


def _pixels(cube: Cube) -> np.ndarray:
    return np.vstack([x for _, x in row_blocks(cube)]).astype(np.float32)


class KnnScorer(Scorer):
    """The reference spectra PyOD fitted (a subsample of at most ``max_fit``)."""

    def __init__(self, fitted: np.ndarray, params: dict, wavelengths=None, *, knn: Any = None,
                 self_scores: list | None = None, refs: Sequence[Cube] = ()) -> None:
        self.detector, self.params = "knn", dict(params)
        self.fitted = np.asarray(fitted, np.float32)
        self.bands, self.wavelengths = int(self.fitted.shape[1]), wavelengths
        self._knn = knn
        self._self_scores = self_scores or []  # per reference cube: PyOD's own (leave-self-out) scores
        self._refs = [weakref.ref(c) for c in refs]

    def _model(self) -> Any:
        if self._knn is None:
            knn_cls = _import_knn()
            k = self.params["n_neighbors"] or auto_k(len(self.fitted))
            self._knn = knn_cls(n_neighbors=min(k, len(self.fitted) - 1))
            self._knn.fit(self.fitted)
        return self._knn

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        for i, r in enumerate(self._refs):
            if r() is cube and i < len(self._self_scores) and self._self_scores[i] is not None:
                return Raw(fixed=self._self_scores[i])
        knn = self._model()
        x = _pixels(cube)
        ok = np.isfinite(x).all(axis=1)
        out = np.full(x.shape[0], np.nan, np.float32)
        idx = np.flatnonzero(ok)
        for a in range(0, idx.size, CHUNK):
            yield Progress(a, idx.size, "knn: distances")
            out[idx[a:a + CHUNK]] = knn.decision_function(x[idx[a:a + CHUNK]])
        return Raw(fixed=out.reshape(cube.rows, cube.cols))

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"fitted": self.fitted}, self._meta()

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> KnnScorer:
        return cls(arrays["fitted"], meta["params"], meta.get("wavelengths"))


class KnnDetector(Detector):
    scorer_class = KnnScorer
    name = "knn"
    label = "KNN (PyOD)"
    calibration_z0 = 2.1  # fitted on the development scenes (bench_scenes.py), k = 5 % of 3,000
    summary = "PyOD KNN: distance to the k-th nearest reference spectrum (optional extra 'pyod')"
    params = (N_NEIGHBORS, KNN_MAX_FIT, SEED)

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, KnnScorer]:
        cubes = check_cubes(cubes)
        knn_cls = _import_knn()
        yield Progress(0, 1, "knn: fitting")
        per_cube = [_pixels(c) for c in cubes]
        x = np.vstack(per_cube)
        ok = np.flatnonzero(np.isfinite(x).all(axis=1))
        need = (self.params["n_neighbors"] or 5) + 1
        if ok.size <= need:
            raise HsiAnomalyError(f"knn needs more than {need} valid pixels.")
        whole = ok.size <= self.params["max_fit"]
        if not whole:
            ok = np.sort(np.random.default_rng(self.params["seed"]).choice(ok, self.params["max_fit"],
                                                                           replace=False))
        k = self.params["n_neighbors"] or auto_k(ok.size)
        knn = knn_cls(n_neighbors=min(k, ok.size - 1))
        knn.fit(x[ok])
        self_scores: list = []
        if whole:  # every valid reference pixel fitted: its score leaves itself out (PyOD's own)
            full = np.full(x.shape[0], np.nan, np.float32)
            full[ok] = knn.decision_scores_
            a = 0
            for c, px in zip(cubes, per_cube):
                self_scores.append(full[a:a + px.shape[0]].reshape(c.rows, c.cols))
                a += px.shape[0]
        return KnnScorer(x[ok], self.params, cubes[0].wavelengths, knn=knn, self_scores=self_scores,
                         refs=cubes)
