"""One condensed tree of the cached single-linkage tree (a fitted ``p``) and the result type.

``Condensed`` holds what scoring needs for one ``p``: the fitted points' GLOSH scores, the clusters'
deaths (max lambda over a cluster and its descendants), each fitted point's cluster and exit lambda,
and (on first use only) the EOM labels, all from the numba kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_hsi_anomaly.core.scoring.glosh import kernels


class GloshResult:
    """GLOSH scores ``(N,)`` float32 in [0, 1] (1 = most outlying) and HDBSCAN labels ``(N,)`` (-1 noise).

    ``labels`` may be given as a function: it is then called on first access only (the p_min slider
    needs the scores alone; the EOM cluster selection runs when someone reads the labels).
    """

    def __init__(
        self,
        scores: np.ndarray,
        labels: np.ndarray | Callable[[], np.ndarray],
        p_min: int,
        warnings: list[str] | None = None,
    ) -> None:
        self.scores = scores
        self.p_min = p_min
        self.warnings = [] if warnings is None else warnings
        self._labels: np.ndarray | None = None
        self._label_fn: Callable[[], np.ndarray] | None = None
        if callable(labels):
            self._label_fn = labels
        else:
            self._labels = labels

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            assert self._label_fn is not None
            self._labels = self._label_fn()
            self._label_fn = None
        return self._labels

    @labels.setter
    def labels(self, value: np.ndarray) -> None:
        self._labels, self._label_fn = value, None

    @property
    def labels_computed(self) -> bool:
        return self._labels is not None

    def __repr__(self) -> str:
        return (f"GloshResult(n={self.scores.shape[0]}, p_min={self.p_min}, "
                f"labels={'computed' if self.labels_computed else 'lazy'}, warnings={self.warnings!r})")


class Condensed:
    """One condensed tree (fitted ``p``): fitted points' scores, cluster deaths, point exits, labels."""

    def __init__(self, tree: np.ndarray, p: int, n_fit: int) -> None:
        parent, child, lam, size = kernels.condense(tree, np.int64(p))
        self.scores, self.deaths, self.pt_cluster, self.pt_lambda = kernels.glosh(
            parent, child, lam, np.int64(n_fit))
        pt_cluster = self.pt_cluster
        self._labels: Callable[[], np.ndarray] = lambda: kernels.labels(parent, child, lam, size, pt_cluster)
        self._label_cache: np.ndarray | None = None

    def labels(self) -> np.ndarray:
        """EOM cluster labels of the fitted points (-1 noise), computed on first call."""
        if self._label_cache is None:
            self._label_cache = np.asarray(self._labels(), dtype=np.int64)
        return self._label_cache
