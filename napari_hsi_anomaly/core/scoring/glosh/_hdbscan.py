"""Every use of hdbscan's API, private parts included, in one place: the tests' oracle.

Production imports none of it: the single-linkage tree is built by ``mst`` (Prim's exact minimum
spanning tree; hdbscan's own fit builds an approximate one, ``approx_min_span_tree``), the condensing,
GLOSH and cluster selection by ``kernels``. hdbscan's versions stay here for the tests to compare them
with (``single_linkage_tree``, ``CythonCondensed``: a drop-in for ``hierarchy.Condensed``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed


def single_linkage_tree(x: np.ndarray, min_samples: int, n_jobs: int = 1, algorithm: str = "prims_kdtree"
                        ) -> np.ndarray:
    """hdbscan's single-linkage tree of rows ``x`` (mutual reachability with ``min_samples``), from its
    exact Prim's minimum spanning tree (``algorithm="best"``: its default, Boruvka's approximate one):
    ``(n - 1, 4)`` float64 rows ``(left, right, distance, size)``."""
    from hdbscan import HDBSCAN

    n = x.shape[0]
    # min_cluster_size does not change the single-linkage tree; any value will do here.
    clusterer = HDBSCAN(min_cluster_size=max(2, min(5, n)), min_samples=min_samples, algorithm=algorithm,
                        core_dist_n_jobs=max(1, int(n_jobs or 1)))
    clusterer.fit(x)
    return np.asarray(clusterer._single_linkage_tree, dtype=np.float64)


def boruvka_kdtree(*args, **kwargs):
    """hdbscan's Boruvka KD-tree step of a fit (its single-linkage tree, no cluster labelling): the
    mark-as-normal refit (``core.feedback``) runs it with the fit's own arguments."""
    from hdbscan.hdbscan_ import _hdbscan_boruvka_kdtree

    return _hdbscan_boruvka_kdtree(*args, **kwargs)


def label(*args, **kwargs):
    """hdbscan's ``label``: a sorted minimum spanning tree as a single-linkage tree."""
    from hdbscan._hdbscan_linkage import label as _label

    return _label(*args, **kwargs)


def point_exits(condensed: np.ndarray, n_fit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From hdbscan's condensed tree: cluster deaths (max lambda over each cluster and its
    descendants) and, per fitted point, the cluster it leaves and the lambda it leaves at."""
    parent = condensed["parent"].astype(np.int64)
    child = condensed["child"].astype(np.int64)
    lam = condensed["lambda_val"].astype(np.float64)
    n_nodes = int(max(parent.max(), child.max())) + 1
    deaths = np.zeros(n_nodes)
    np.maximum.at(deaths, parent, lam)
    for n in np.nonzero(child >= n_fit)[0][::-1]:  # propagate up, cluster rows only
        if deaths[child[n]] > deaths[parent[n]]:
            deaths[parent[n]] = deaths[child[n]]
    is_point = child < n_fit
    pt_cluster = np.empty(n_fit, dtype=np.int64)
    pt_lambda = np.empty(n_fit)
    pt_cluster[child[is_point]] = parent[is_point]
    pt_lambda[child[is_point]] = lam[is_point]
    return deaths, pt_cluster, pt_lambda


class CythonCondensed(Condensed):
    """Test oracle: ``hierarchy.Condensed``'s fields from hdbscan's Cython ``condense_tree``,
    ``outlier_scores``, ``compute_stability`` and ``get_clusters`` (EOM, as hdbscan's defaults)."""

    def __init__(self, tree: np.ndarray, p: int, n_fit: int) -> None:  # noqa: D107 - no super(): no kernels
        from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters, outlier_scores

        condensed = condense_tree(tree, p)
        self.scores = np.asarray(outlier_scores(condensed), dtype=np.float64)
        self.deaths, self.pt_cluster, self.pt_lambda = point_exits(condensed, n_fit)

        def labels() -> np.ndarray:
            stability = compute_stability(condensed)
            return get_clusters(condensed, stability, "eom", False, False, 0.0, 0)[0]
        self._labels: Callable[[], np.ndarray] = labels
        self._label_cache: np.ndarray | None = None
