"""Numba ports of hdbscan 0.8.44's tree code (``_hdbscan_tree.pyx``), step by step: the same rows in
the same order and the same float32 subtree-stability sums, so scores and labels equal hdbscan's
(tests/test_glosh.py checks them against the Cython functions, ``_hdbscan.CythonCondensed``).

They replace the Cython functions because a new ``p_min`` (a slider move) re-runs them: numba is
two orders of magnitude faster there (benchmarks/results/bench_glosh.md). Every kernel is a
module-level function with ``cache=True`` (nothing captured), so a new process loads it from numba's
cache instead of compiling.
"""

from __future__ import annotations

import numba
import numpy as np


def _njit(fn):
    return numba.njit(cache=True, error_model="numpy")(fn)


@_njit
def _drop_subtree(hierarchy, start, num_points, parent_label, lam, queue, ignore,
                  res_parent, res_child, res_lambda, res_size, pos):
    """Every point under ``start`` leaves ``parent_label`` at ``lam`` (BFS order, as hdbscan)."""
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        sub = queue[head]
        head += 1
        if sub < num_points:
            res_parent[pos] = parent_label
            res_child[pos] = sub
            res_lambda[pos] = lam
            res_size[pos] = 1
            pos += 1
        else:
            row = sub - num_points
            queue[tail] = np.int64(hierarchy[row, 0])
            queue[tail + 1] = np.int64(hierarchy[row, 1])
            tail += 2
        ignore[sub] = True
    return pos


@_njit
def condense(hierarchy, min_cluster_size):
    """hdbscan's ``condense_tree``: the same rows in the same order, as four arrays."""
    root = 2 * hierarchy.shape[0]
    num_points = root // 2 + 1
    n_nodes = root + 1
    order = np.empty(n_nodes, np.int64)  # breadth-first order from the root (bfs_from_hierarchy)
    order[0] = root
    head, tail = 0, 1
    while head < tail:
        node = order[head]
        head += 1
        if node >= num_points:
            order[tail] = np.int64(hierarchy[node - num_points, 0])
            order[tail + 1] = np.int64(hierarchy[node - num_points, 1])
            tail += 2
    relabel = np.empty(n_nodes, np.int64)
    relabel[root] = num_points
    next_label = num_points + 1
    ignore = np.zeros(n_nodes, np.bool_)
    queue = np.empty(n_nodes, np.int64)
    size = 2 * num_points
    res_parent = np.empty(size, np.int64)
    res_child = np.empty(size, np.int64)
    res_lambda = np.empty(size, np.float64)
    res_size = np.empty(size, np.int64)
    pos = 0
    for i in range(n_nodes):
        node = order[i]
        if ignore[node] or node < num_points:
            continue
        row = node - num_points
        left = np.int64(hierarchy[row, 0])
        right = np.int64(hierarchy[row, 1])
        lam = 1.0 / hierarchy[row, 2] if hierarchy[row, 2] > 0.0 else np.inf
        left_count = np.int64(hierarchy[left - num_points, 3]) if left >= num_points else 1
        right_count = np.int64(hierarchy[right - num_points, 3]) if right >= num_points else 1
        label = relabel[node]
        if left_count >= min_cluster_size and right_count >= min_cluster_size:
            for side, count in ((left, left_count), (right, right_count)):
                relabel[side] = next_label
                res_parent[pos] = label
                res_child[pos] = next_label
                res_lambda[pos] = lam
                res_size[pos] = count
                pos += 1
                next_label += 1
        elif left_count < min_cluster_size and right_count < min_cluster_size:
            pos = _drop_subtree(hierarchy, left, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
            pos = _drop_subtree(hierarchy, right, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
        elif left_count < min_cluster_size:
            relabel[right] = label
            pos = _drop_subtree(hierarchy, left, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
        else:
            relabel[left] = label
            pos = _drop_subtree(hierarchy, right, num_points, label, lam, queue, ignore,
                                res_parent, res_child, res_lambda, res_size, pos)
    return res_parent[:pos].copy(), res_child[:pos].copy(), res_lambda[:pos].copy(), res_size[:pos].copy()


@_njit
def glosh(parent, child, lam, n_points):
    """hdbscan's ``outlier_scores`` (inf lambdas score 0), plus each point's cluster and exit lambda
    and the clusters' deaths (max lambda over the cluster and its descendants)."""
    n_nodes = max(parent.max(), child.max()) + 1
    deaths = np.zeros(n_nodes)
    for i in range(parent.shape[0]):
        if lam[i] > deaths[parent[i]]:
            deaths[parent[i]] = lam[i]
    for i in range(parent.shape[0] - 1, -1, -1):
        if deaths[child[i]] > deaths[parent[i]]:
            deaths[parent[i]] = deaths[child[i]]
    scores = np.zeros(n_points)
    pt_cluster = np.empty(n_points, np.int64)
    pt_lambda = np.empty(n_points)
    for i in range(parent.shape[0]):
        point = child[i]
        if point >= n_points:
            continue
        lam_max = deaths[parent[i]]
        pt_cluster[point] = parent[i]
        pt_lambda[point] = lam[i]
        if lam_max == 0.0 or not np.isfinite(lam[i]):
            scores[point] = 0.0
        else:
            scores[point] = (lam_max - lam[i]) / lam_max
    return scores, deaths, pt_cluster, pt_lambda


@_njit
def labels(parent, child, lam, size, pt_cluster):
    """hdbscan's ``compute_stability`` + ``get_clusters(..., 'eom', False, False, 0.0, 0)`` labels."""
    n_points = pt_cluster.shape[0]
    root = n_points
    n_clusters = parent.max() - root + 1
    births = np.zeros(n_clusters)
    cparent = np.full(n_clusters, -1, np.int64)
    n_children = np.zeros(n_clusters, np.int64)
    for i in range(parent.shape[0]):
        if child[i] >= root:
            births[child[i] - root] = lam[i]
            cparent[child[i] - root] = parent[i] - root
            n_children[parent[i] - root] += 1
    stability = np.zeros(n_clusters)
    for i in range(parent.shape[0]):
        c = parent[i] - root
        stability[c] += (lam[i] - births[c]) * size[i]
    start = np.zeros(n_clusters + 1, np.int64)
    for c in range(n_clusters):
        start[c + 1] = start[c] + n_children[c]
    kids = np.empty(start[n_clusters], np.int64)
    fill = start[:-1].copy()
    for i in range(parent.shape[0]):  # cluster children in row order (hdbscan's summing order)
        if child[i] >= root and size[i] > 1:
            c = parent[i] - root
            kids[fill[c]] = child[i] - root
            fill[c] += 1
    chosen = np.zeros(n_clusters, np.bool_)
    for c in range(n_clusters - 1, 0, -1):  # children before parents; the root is never chosen
        sub = np.float32(0.0)  # hdbscan sums subtree stability in a C float
        for j in range(start[c], start[c + 1]):
            sub = np.float32(np.float64(sub) + stability[kids[j]])
        if np.float64(sub) > stability[c]:
            stability[c] = np.float64(sub)
        else:
            chosen[c] = True
    # a chosen cluster unselects all its descendants; labels in ascending cluster id order
    covered = np.zeros(n_clusters, np.bool_)
    label_of = np.full(n_clusters, -1, np.int64)
    n_labels = 0
    for c in range(1, n_clusters):
        p = cparent[c]
        covered[c] = covered[p] or chosen[p]
        if chosen[c] and not covered[c]:
            label_of[c] = n_labels
            n_labels += 1
        else:
            label_of[c] = label_of[p]
    labels = np.empty(n_points, np.int64)
    for i in range(n_points):
        labels[i] = label_of[pt_cluster[i] - root]
    return labels


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels on a 4-point tree, once per process."""
    global _WARM
    if _WARM:
        return
    tree = np.array([[0, 1, 0.5, 2], [2, 3, 0.5, 2], [4, 5, 1.0, 4]], dtype=np.float64)
    parent, child, lam, size = condense(tree, np.int64(2))
    _, _, pt_cluster, _ = glosh(parent, child, lam, np.int64(4))
    labels(parent, child, lam, size, pt_cluster)
    _WARM = True


_WARM = False
