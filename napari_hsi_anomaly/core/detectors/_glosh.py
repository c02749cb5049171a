"""The GLOSH part shared by GLOSH-based detectors: one hierarchy over the reference cubes' points.

A reference cube scored again uses its own rows of the fitted hierarchy (the one-cube case is exactly
the classic fit-and-score); any other target is scored with ``GloshScorer.predictor`` (approximate
prediction against the reference hierarchy).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError


class RowsView:
    """``score(p_min)`` of rows ``[start, stop)`` of a fitted ``GloshScorer`` (one reference cube)."""

    def __init__(self, scorer: Any, start: int, stop: int) -> None:
        self.scorer, self.start, self.stop = scorer, int(start), int(stop)
        self.n_points = self.stop - self.start

    def score(self, p_min: int) -> Any:
        from napari_hsi_anomaly.core.scoring.glosh import GloshResult

        r = self.scorer.score(p_min)
        a, b = self.start, self.stop
        return GloshResult(r.scores[a:b], lambda: r.labels[a:b], r.p_min, list(r.warnings))


class GloshReference:
    """GLOSH hierarchy of the reference points ``values`` (one ``(N_i, D)`` array per reference cube)."""

    def __init__(self, values: Sequence[np.ndarray], cubes: Sequence[Cube] | None, *, min_samples: int,
                 max_fit: int, seed: int, unit: str = "pixels", shape_hint: str = "",
                 scale: bool = True) -> None:
        from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

        counts = [int(v.shape[0]) for v in values]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        x = values[0] if len(values) == 1 else np.vstack(values)
        n_ok = int(np.isfinite(x).all(axis=1).sum())
        if n_ok <= min_samples:
            raise ShapeError(
                f"Only {n_ok} valid {unit} to cluster{shape_hint}: HDBSCAN needs more than "
                f"min_samples={min_samples}. Use a smaller window, the pixel feature, or a larger cube."
            )
        self.n_valid = n_ok
        self.scorer = GloshScorer(x, min_samples=min_samples, max_fit=max_fit, seed=seed, scale=scale)
        self._refs = [weakref.ref(c) for c in cubes] if cubes is not None else []

    @property
    def n_points(self) -> int:
        return int(self.scorer.n_points)

    def reference_index(self, cube: Cube) -> int | None:
        """Which reference cube ``cube`` is (the same object), or None."""
        for i, r in enumerate(self._refs):
            if r() is cube:
                return i
        return None

    def handle(self, cube: Cube, values_fn: Any) -> Any:
        """An object with ``score(p_min)`` for ``cube``'s points (``values_fn(cube)`` computes them)."""
        k = self.reference_index(cube)
        if k is not None:
            if len(self._refs) == 1:
                return self.scorer
            return RowsView(self.scorer, self.offsets[k], self.offsets[k + 1])
        predictor = getattr(self.scorer, "predictor", None)
        if predictor is None:
            raise HsiAnomalyError("Scoring another cube against a GLOSH reference needs "
                                  "GloshScorer.predictor (not available in this version).")
        return predictor(values_fn(cube))

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        state = getattr(self.scorer, "state", None)
        if state is None:
            raise HsiAnomalyError("Saving a GLOSH normal model needs GloshScorer.state (not available in "
                                  "this version).")
        arrays, meta = state()
        return ({f"glosh.{k}": v for k, v in arrays.items()},
                {"glosh": meta, "offsets": [int(o) for o in self.offsets], "n_valid": self.n_valid})

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> GloshReference:
        from napari_hsi_anomaly.core.detectors.base import prefixed
        from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

        self = cls.__new__(cls)
        self.scorer = GloshScorer.from_state(prefixed(arrays, "glosh."), meta["glosh"])
        self.offsets = np.asarray(meta["offsets"], dtype=np.int64)
        self.n_valid = int(meta["n_valid"])
        self._refs = []
        return self
