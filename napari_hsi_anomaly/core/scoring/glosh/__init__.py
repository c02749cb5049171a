"""GLOSH outlier scores from one cached HDBSCAN hierarchy: a new ``p_min`` only re-condenses.

The package keeps the former module's import path and names. Its parts:

- ``scorer``: ``GloshScorer`` (fit once on at most ``max_fit`` rows, ``score(p_min)``), ``minmax_scale``;
- ``kernels``: numba ports of hdbscan's condensing, GLOSH and EOM selection;
- ``hierarchy``: ``Condensed`` (one condensed tree) and ``GloshResult``;
- ``neighbours``: nearest mutual-reachability neighbours (KD-tree / brute-force BLAS), ``query_workers``;
- ``prediction``: approximate prediction of non-fitted rows, ``GloshPredictor`` (new rows against a
  fitted reference);
- ``state``: the scorer as plain arrays + JSON;
- ``mst``: HDBSCAN's single-linkage tree (Prim's exact minimum spanning tree of the mutual reachability);
- ``_hdbscan``: every use of hdbscan (the tests' oracle: its tree and its Cython tree functions).
"""

from __future__ import annotations

from napari_hsi_anomaly.core.scoring.glosh import kernels
from napari_hsi_anomaly.core.scoring.glosh.hierarchy import Condensed, GloshResult
from napari_hsi_anomaly.core.scoring.glosh.neighbours import (
    BRUTE_BLOCK,
    KDTREE_MAX_DIMS,
    QUERY_CHUNK,
    NeighbourSearch,
    finite_rows,
    mr_neighbours,
    query_workers,
)
from napari_hsi_anomaly.core.scoring.glosh.prediction import GloshPredictor
from napari_hsi_anomaly.core.scoring.glosh.scorer import GloshScorer, minmax_scale
from napari_hsi_anomaly.core.scoring.glosh.state import STATE_FORMAT

__all__ = [
    "BRUTE_BLOCK", "KDTREE_MAX_DIMS", "QUERY_CHUNK", "STATE_FORMAT", "Condensed", "GloshPredictor",
    "GloshResult", "GloshScorer", "NeighbourSearch", "_warm_up", "finite_rows", "minmax_scale",
    "query_workers",
]


def _warm_up() -> None:
    """Load every GLOSH kernel from numba's cache (compile once where it is empty): the tree kernels,
    the minimum spanning tree, the KD-tree and the neighbour pick, on a few points. The viewer runs this
    in its warm-up thread."""
    import numpy as np

    from napari_hsi_anomaly.core.scoring.glosh.scorer import fit_tree

    kernels.warm_up()
    pts = np.arange(24.0).reshape(8, 3) ** 1.5
    search = NeighbourSearch(pts)
    fit_tree(search, pts, 2)
    mr_neighbours(search, np.ones(8), 2, pts[:3] + 0.5)
