"""The analyst's feedback: "this is normal" (refit the normal model with the marked pixels).

``mark_normal(detection_or_scorer, cube, mask)`` returns a *new* fitted scorer (or detection) built from
the old one's state plus the marked pixels; the old object is left as it was, so undo is keeping it
(``FeedbackStack``). Per part of the detector:

- global RX: the reference mean and covariance merged with the marked pixels' (weighted, see below),
  whitening recomputed;
- GLOSH on spectra: the marked pixels, projected on the reference's PCA basis, join the fitted points
  and the hierarchy is rebuilt from the old one (``extended_glosh``, ``feedback_tree``: the same
  subsample and scaling as before, so only the marked group changes; every other reference row gets its
  nearest mutual-reachability neighbour again);
- spatial parts (local RX, attribute filters): unchanged (they have no normal population);
- the calibration is recomputed on the reference cubes (``references``; by default the scene itself),
  without the floor of a scene scored blind against itself (``calibration.FLAG_FLOOR``).
  GLOSH parts keep the scale of the first fit (``FREEZE_GLOSH_SCALE``: the calibration reads the reference
  rows' scores from the hierarchy before any mark). With the tree refitted from the old one the reference
  rows away from the marked kind keep their scores, so the scale barely moves either way; a tree rebuilt
  from scratch (``INCREMENTAL_TREE`` False) moves scores all over and, recalibrated, flagged 754 pixels
  instead of 500 after marking a 15 px speckle region (benchmarks/results/bench_feedback.md). A saved profile
  holds the refitted hierarchy only, so after loading it the GLOSH scale is recomputed from it.

Weight: a marked group counts as ``GROUP_FACTOR`` x ``p_min`` pixels (GLOSH's minimum cluster size, or
the automatic ``p_min`` of the reference for RX), so it is a cluster of the normal population rather than
a handful of outliers that still stand out (a group smaller than ``p_min`` never forms a cluster). For
GLOSH the extra weight is copies of the marked pixels with Gaussian noise scaled so the group is as dense
as the reference's typical pixel (``_jitter``); raising ``p_min`` far above the value at marking time
can dissolve the group again.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.detectors._glosh import GloshReference, RowsView
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run

GROUP_FACTOR = 1.25  # a marked group weighs this many times p_min (a cluster with a margin)
FREEZE_GLOSH_SCALE = True  # see the module docstring
SAMPLE = 5000  # reference rows sampled: the copies' density, RX's 95th percentile
INCREMENTAL_TREE = True  # refit GLOSH's tree from the old one (feedback_tree), not from scratch
SPATIAL = ("rx-local", "attribute")  # parts without a normal population: kept as they are


@dataclass
class Mark:
    """Pixels marked on one scene: ``label`` ("normal" or "anomaly"), ``scene`` name, ``pixels`` (n, 2)
    row/col indices."""

    label: str
    scene: str
    pixels: np.ndarray

    def to_json(self) -> dict:
        return {"label": self.label, "scene": self.scene, "count": int(len(self.pixels)),
                "pixels": np.asarray(self.pixels, dtype=np.int64).tolist()}

    @classmethod
    def from_json(cls, d: dict) -> Mark:
        px = np.asarray(d.get("pixels", []), dtype=np.int64).reshape(-1, 2)
        return cls(str(d.get("label", "normal")), str(d.get("scene", "")), px)


def marks_to_json(marks: Sequence[Mark]) -> list[dict]:
    """The ``marked_normal`` entry of a profile (what was marked, from which scene)."""
    return [m.to_json() for m in marks]


def marks_from_json(items: Sequence[dict] | None) -> list[Mark]:
    return [Mark.from_json(d) for d in (items or [])]


def scorer_of(obj: Any) -> Any:
    """The fitted ``Scorer`` of a ``Detection`` (``extras["scorer"]``) or the scorer itself."""
    from napari_hsi_anomaly.core.detectors.base import Scorer

    if isinstance(obj, Scorer):
        return obj
    scorer = getattr(obj, "extras", {}).get("scorer")
    if scorer is None:
        raise HsiAnomalyError("This result does not keep its normal model: score it again (or pass the "
                              "fitted scorer) to mark pixels as normal.")
    return scorer


def _pixels(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 2 and m.shape == shape:
        idx = np.argwhere(m.astype(bool))
    elif m.ndim == 2 and m.shape[1] == 2:
        idx = m.astype(np.int64)
    else:
        raise ShapeError(f"Marked pixels must be a {shape} mask or (n, 2) row/col pairs; got {m.shape}.")
    if idx.size == 0:
        raise HsiAnomalyError("No pixel is marked: select regions or pixels first.")
    return idx


def _spectra(cube: Cube, px: np.ndarray) -> np.ndarray:
    """``(n, bands)`` float64 spectra of the marked pixels (invalid ones left out)."""
    r0, r1 = int(px[:, 0].min()), int(px[:, 0].max()) + 1
    block = cube.as_float32(slice(r0, r1))
    x = block[:, px[:, 0] - r0, px[:, 1]].T.astype(np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if not len(x):
        raise HsiAnomalyError("Every marked pixel has no data.")
    return x


def _references(scorer: Any, cube: Cube, references: Sequence[Cube] | None) -> list[Cube]:
    if references:
        return [as_cube(c, "Reference") for c in references]
    for part in scorer.parts():  # the GLOSH part remembers its reference cubes while they live
        refs = [r() for r in getattr(getattr(part, "ref", None), "_refs", [])]
        if refs and all(r is not None for r in refs):
            return refs
    return [cube]


def _update_rx(part: Any, x: np.ndarray, weight: float, n_ref: int, sample: np.ndarray) -> Any:
    """Global RX with the marked spectra ``x`` merged in (mean and covariance, weighted).

    The weight is at least ``weight`` pixels, and doubled (up to the whole population so far) until the
    marked pixels' median distance is within the reference ``sample``'s 95th percentile: one Gaussian
    has to stretch to hold a second group, so a group with a spread of its own needs more weight."""
    from napari_hsi_anomaly.core.detectors.rx import RxScorer, whitening

    ridge = float(part.params.get("rx_ridge", 0.0))
    c_reg = np.linalg.pinv(part.whiten @ part.whiten.T, hermitian=True)
    d = c_reg.shape[0]
    cov0 = c_reg - np.eye(d) * (ridge / (1.0 + ridge) * np.trace(c_reg) / d) if ridge > 0 else c_reg
    n = float(getattr(part, "feedback_n", n_ref))  # the weight of the model so far
    mu_m = x.mean(axis=0)
    cov_m = np.atleast_2d(np.cov(x, rowvar=False, bias=True)) if len(x) > 1 else np.zeros((d, d))
    delta = mu_m - part.mean

    def merged(w: float) -> tuple[np.ndarray, np.ndarray]:
        q = w / (n + w)
        cov = (1 - q) * cov0 + q * cov_m + q * (1 - q) * np.outer(delta, delta)
        return part.mean + q * delta, whitening(cov, ridge)

    def dist(rows: np.ndarray, mean: np.ndarray, wh: np.ndarray) -> np.ndarray:
        y = (rows - mean) @ wh
        return np.sqrt(np.einsum("ij,ij->i", y, y))

    w = float(weight)
    while True:
        mean, wh = merged(w)
        if w >= n or np.median(dist(x, mean, wh)) <= np.percentile(dist(sample, mean, wh), 95):
            break
        w = min(2 * w, n)
    out = RxScorer(mean, wh, part.params, part.wavelengths)
    out.feedback_n = n + w  # type: ignore[attr-defined]
    return out


def _core_median(x: np.ndarray, k: int) -> float:
    """Median distance of the rows of ``x`` to their ``k``-th nearest neighbour (self included)."""
    from scipy.spatial import cKDTree

    k = max(2, min(k, len(x)))
    return float(np.median(cKDTree(x).query(x, k)[0][:, -1]))


def _jitter(y: np.ndarray, reference: np.ndarray, count: int, k: int, seed: int) -> np.ndarray:
    """``count`` copies of the rows ``y`` with Gaussian noise scaled so that the marked group (``y`` and
    its copies) is as dense as the reference's typical pixel (median ``k``-NN distance, compared on
    samples of the same share of each): denser, it would become the densest cluster and raise every
    other pixel's GLOSH score; sparser, its pixels would stay outliers."""
    rng = np.random.default_rng(seed)
    share = min(1.0, SAMPLE / max(1, len(reference)))
    ref_s = reference[rng.random(len(reference)) < share] if share < 1 else reference
    ref_s = ref_s[np.isfinite(ref_s).all(axis=1)]
    target = _core_median(ref_s, k)
    pick = rng.integers(0, len(y), count)
    noise = rng.normal(size=(count, y.shape[1]))
    sigma = float(np.median(ref_s.std(axis=0))) * 0.1 or 1.0
    for _ in range(4):  # the group's k-NN distance grows about in proportion to the noise
        pts = np.vstack([y, y[pick] + noise * sigma])
        pts_s = pts[rng.random(len(pts)) < share] if share < 1 else pts
        got = _core_median(pts_s, k) if len(pts_s) > 2 else target
        if not got > 0 or abs(got / target - 1) < 0.1:
            break
        sigma *= target / got
    return y[pick] + noise * sigma


def extended_glosh(old: Any, ref_values: np.ndarray, extra: np.ndarray, seed: int = 0) -> Any:
    """A ``GloshScorer`` whose rows are the reference rows ``ref_values`` (unscaled, as ``old`` was built
    with), then the fitted rows of earlier marks and of ``extra``: fitted on ``old``'s fitted points plus
    the share of ``extra`` that ``old`` fitted of its own rows (same subsample, same scaling, so nothing
    but the marked group changes; the rest of ``extra`` counts in ``n_finite`` only, keeping ``p_min``'s
    scale); every other reference row gets its nearest mutual-reachability neighbour again.
    Built from ``old.state()`` and restored with ``GloshScorer.from_state`` (a profile saves it as is)."""
    from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

    a, meta = old.state(rows=True)
    if not meta.get("rows"):
        raise HsiAnomalyError("This GLOSH normal model was saved without its rows: fit it again to mark "
                              "pixels as normal.")
    n_ref = int(ref_values.shape[0])
    lo, span, const = a["lo"], a["span"], a["const"].astype(bool)

    def scale(v: np.ndarray) -> np.ndarray:
        out = (np.asarray(v, np.float64) - lo) / span
        out[:, const] = 0.0
        return out

    old_fit, drawn, drawn_fit = a["fit_x"], a["drawn"].astype(np.int64), a["drawn_fit"].astype(np.int64)
    prev = drawn >= n_ref  # fitted rows of earlier marks (their other rows are left out)
    prev_fit = drawn_fit[prev]
    rng = np.random.default_rng(seed)
    ratio = int(meta["n_drawn"]) / max(1, int(meta["n_finite"]))
    fit_idx = np.sort(rng.choice(len(extra), int(round(len(extra) * ratio)), replace=False))
    extra_s = scale(extra)
    fo, fo_fit = _fit_added(old_fit, a.get("tree"), extra_s[fit_idx], int(meta["min_samples"]))
    fa, fm = fo.state(rows=False)
    n_prev, n_new = int(prev.sum()), len(fit_idx)  # copies not fitted are weight only, not rows
    base = n_ref + n_prev  # first row of the new extras
    ref_drawn = drawn[~prev]
    new_drawn = np.r_[ref_drawn, n_ref + np.arange(n_prev), base + np.arange(n_new)].astype(np.int64)
    new_drawn_fit = np.r_[fo_fit[drawn_fit[~prev]], fo_fit[prev_fit], fo_fit[len(old_fit):]].astype(np.int64)
    finite = np.r_[a["finite"][:n_ref].astype(bool), np.ones(n_prev + n_new, bool)]
    rest_mask = finite.copy()
    rest_mask[new_drawn] = False
    rest = np.flatnonzero(rest_mask)
    ref_rest = rest  # every row beyond the reference is fitted
    x_rest = scale(ref_values[ref_rest])
    nb, lam, exact, same = _rest_neighbours(fo, a, x_rest, ref_rest, len(old_fit))
    counts = np.bincount(new_drawn_fit, minlength=fo.n_fit) + np.bincount(same[same >= 0], minlength=fo.n_fit)
    arrays = {"fit_x": fa["fit_x"], "core": fa["core"], "counts": counts.astype(np.int64), "lo": lo,
              "span": span, "const": a["const"], "finite": finite.astype(np.uint8), "drawn": new_drawn,
              "drawn_fit": new_drawn_fit, "rest": rest.astype(np.int64), "rest_nb": nb, "rest_lam": lam,
              "rest_exact": exact.astype(np.uint8), "rest_same": same}
    if "tree" in fa:
        arrays["tree"] = fa["tree"]
    meta = {**meta, "k": fm["k"], "n_points": int(finite.size), "n_fit": int(fm["n_fit"]),
            "n_finite": int(meta["n_finite"]) + len(extra), "n_drawn": int(meta["n_drawn"]) + n_new,
            "rows": True}
    return GloshScorer.from_state(arrays, meta)


def _fit_added(old_fit: np.ndarray, old_tree: np.ndarray | None, new: np.ndarray, min_samples: int
               ) -> tuple[Any, np.ndarray]:
    """A ``GloshScorer`` of the points ``vstack([old_fit, new])`` (distinct, as ``GloshScorer`` keeps
    them, with the same core distances) and each of those rows' fitted point. Its tree: with
    ``INCREMENTAL_TREE`` and ``old_tree`` (that of ``old_fit``), ``feedback_tree.added_points_tree``;
    otherwise the tree a fit builds (``glosh.scorer.fit_tree``, the same tree as
    ``GloshScorer(rows, scale=False)``)."""
    from scipy.spatial import cKDTree

    from napari_hsi_anomaly.core.feedback_tree import added_points_tree
    from napari_hsi_anomaly.core.scoring.glosh import STATE_FORMAT, GloshScorer
    from napari_hsi_anomaly.core.scoring.glosh.neighbours import NeighbourSearch
    from napari_hsi_anomaly.core.scoring.glosh.scorer import fit_tree

    n0, dims = old_fit.shape
    rows = np.vstack([old_fit, new])
    if dims > 60 or n0 < 2 or not len(new):  # hdbscan would pick another algorithm: its own fit
        fo = GloshScorer(rows, min_samples=min_samples, scale=False, max_fit=len(rows) + 1)
        return fo, fo.state(rows=True)[0]["drawn_fit"].astype(np.int64)
    # old_fit's rows are distinct; a new row equal to one of them (or to an earlier new row) is that point
    dup = cKDTree(old_fit).query(new, 1)[0] == 0
    own = cKDTree(old_fit).query(new[dup], 1)[1] if dup.any() else np.zeros(0, np.int64)
    _, first, inverse = np.unique(new[~dup], axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    fit_new = np.empty(len(new), np.int64)
    fit_new[dup], fit_new[~dup] = own, n0 + rank[inverse.reshape(-1)]
    fit_x = np.vstack([old_fit, new[~dup][first[order]]])
    n = len(fit_x)
    k = max(1, min(min_samples, n - 1))
    core = None
    if INCREMENTAL_TREE and old_tree is not None and k == max(1, min(min_samples, n0 - 1)) and n > n0:
        tree, core = added_points_tree(old_fit, old_tree, fit_x[n0:], k)
    else:
        tree = fit_tree(NeighbourSearch(fit_x), fit_x, k)[0]
    arrays = {"fit_x": fit_x, "core": np.zeros(n), "counts": np.ones(n, np.int64), "lo": np.zeros(dims),
              "span": np.ones(dims), "const": np.zeros(dims, np.uint8), "tree": np.asarray(tree, np.float64)}
    meta = {"format": STATE_FORMAT, "min_samples": int(min_samples), "k": k, "scale": False, "max_fit": n + 1,
            "seed": 0, "n_points": n, "dims": int(dims), "n_finite": n, "n_drawn": n, "n_fit": n,
            "cache_size": 8, "rows": False}
    fo = GloshScorer.from_state(arrays, meta)
    fo._core = fo._search().query(fo._fit_x, min(k, n))[0][:, -1] if core is None else core
    return fo, np.r_[np.arange(n0), fit_new].astype(np.int64)


def _rest_neighbours(fo: Any, a: dict, x_rest: np.ndarray, ref_rest: np.ndarray, n_old: int) -> tuple:
    """Nearest mutual-reachability neighbour of each rest row against ``fo``. A reference row keeps its
    old one unless a fitted point that is new or whose core distance shrank lies closer than its old
    best distance (only those can lower ``max(core_i, core_j, d_ij)``): exact, and most rows are far."""
    from scipy.spatial import cKDTree

    fa = fo.state(rows=False)[0]
    old_rest = a["rest"].astype(np.int64)
    if old_rest.size == ref_rest.size and np.array_equal(old_rest, ref_rest):  # the usual case
        pos, known = np.arange(ref_rest.size), np.ones(ref_rest.size, bool)
    else:
        pos = np.searchsorted(old_rest, ref_rest)
        known = (pos < old_rest.size) & (old_rest[np.minimum(pos, old_rest.size - 1)] == ref_rest)
    moved = np.r_[np.flatnonzero(fa["core"][:n_old] < a["core"] - 1e-12), np.arange(n_old, fo.n_fit)]
    redo = np.ones(len(x_rest), bool)
    if moved.size and known.any():
        k = np.flatnonzero(known)
        lam = a["rest_lam"][pos[k]]
        with np.errstate(divide="ignore"):
            best = np.where(lam > 0, 1.0 / lam, np.inf)
        near = cKDTree(fa["fit_x"][moved]).query(x_rest[k], 1, distance_upper_bound=float(best.max()))[0]
        redo[k] = near < best
    elif not moved.size:
        redo[np.flatnonzero(known)] = False
    nb = np.empty(len(x_rest), np.int64)
    lam_out, exact, same = np.empty(len(x_rest)), np.empty(len(x_rest), bool), np.empty(len(x_rest), np.int64)
    keep = np.flatnonzero(~redo)
    if keep.size:
        p = pos[keep]
        nb[keep], lam_out[keep] = a["rest_nb"][p], a["rest_lam"][p]
        exact[keep], same[keep] = a["rest_exact"][p].astype(bool), a["rest_same"][p]
    todo = np.flatnonzero(redo)
    if todo.size:
        nb[todo], lam_out[todo], exact[todo], same[todo] = fo.neighbours(x_rest[todo], None)
    return nb, lam_out, exact, same


def _update_glosh(part: Any, x: np.ndarray, refs: list[Cube], weight: float, seed: int) -> Any:
    """GLOSH on spectra with the marked spectra added to the fitted points and the hierarchy rebuilt."""
    from napari_hsi_anomaly.core.detectors._spectral import project
    from napari_hsi_anomaly.core.detectors.glosh_spectral import SpectralGloshScorer

    old = part.ref
    values = np.vstack([project(c, part.mean, part.basis) for c in refs])
    offsets = np.asarray(old.offsets[: len(refs) + 1], np.int64)
    if len(old.offsets) < len(refs) + 1 or int(offsets[-1]) != values.shape[0]:
        raise HsiAnomalyError("Marking pixels as normal refits GLOSH on its reference cubes: score with "
                              "'this cube' or keep the reference cubes open.")
    y = (x - part.mean) @ part.basis
    extra = np.vstack([y, _jitter(y, values, max(0, int(math.ceil(weight)) - len(y)),
                                  int(part.params["min_samples"]), seed)])
    scorer = extended_glosh(getattr(old, "fed", old.scorer), values, extra, seed)
    ref = FedGloshReference.__new__(FedGloshReference)
    ref.fed, ref.n_valid = scorer, int(old.n_valid)  # the automatic p_min stays the reference's
    ref.scorer = getattr(old, "calibration_scorer", old.scorer) if FREEZE_GLOSH_SCALE else scorer
    ref.calibration_scorer = ref.scorer
    ref.offsets = np.r_[offsets, scorer.n_points].astype(np.int64)
    ref._refs = [weakref.ref(c) for c in refs]
    return SpectralGloshScorer(part.mean, part.basis, ref, part.params, part.wavelengths)


class FedGloshReference(GloshReference):
    """A GLOSH reference whose last block of rows is the marked pixels' weight (no cube of its own):
    each reference cube scores its own rows, any other target is predicted (built by ``_update_glosh``)."""

    fed: Any  # the refitted hierarchy (``scorer`` is the one the calibration reads)

    def handle(self, cube: Cube, values_fn: Any) -> Any:
        k = self.reference_index(cube)
        if k is not None:
            return RowsView(self.fed, self.offsets[k], self.offsets[k + 1])
        return self.fed.predictor(values_fn(cube))

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        keep = self.scorer
        self.scorer = self.fed
        try:
            return super().state()
        finally:
            self.scorer = keep


def _p_min(scorer: Any, detection: Any, n_ref: int) -> int:
    from napari_hsi_anomaly.core.detectors.calibration import auto_p_min

    p = getattr(detection, "params", {}).get("p_min") if detection is not None else None
    p = p or scorer.params.get("p_min")
    return int(p) if p else auto_p_min(n_ref)


def iter_mark_normal(target: Any, cube: Cube | np.ndarray, pixels: np.ndarray, *,
                     references: Sequence[Cube] | None = None, scene: str | None = None,
                     seed: int = 0) -> Generator[Progress, None, Any]:
    """``mark_normal`` as a generator (progress for a worker); see the module docstring."""
    from napari_hsi_anomaly.core.detectors.combined import CombinedScorer
    from napari_hsi_anomaly.core.regions import sample_pixels

    is_det = not _is_scorer(target)
    scorer = scorer_of(target)
    cube = scorer.check_target(cube)
    px = _pixels(pixels, (cube.rows, cube.cols))
    x = _spectra(cube, px)
    refs = _references(scorer, cube, references)
    n_ref = int(sum(int(c.valid_mask().sum()) for c in refs))
    weight = GROUP_FACTOR * _p_min(scorer, target if is_det else None, n_ref)
    yield Progress(0, 3, f"mark as normal: {len(x)} pixels, refitting {scorer.detector}")
    parts, changed = [], False
    for part in scorer.parts():
        if part.detector == "rx":
            sample = np.hstack([sample_pixels(c, SAMPLE // len(refs)) for c in refs]).T.astype(np.float64)
            sample = sample[np.isfinite(sample).all(axis=1)]
            parts.append(_update_rx(part, x, weight, n_ref, sample))
            changed = True
        elif part.detector == "glosh-spectral":
            parts.append(_update_glosh(part, x, refs, weight, seed))
            changed = True
        elif part.detector in SPATIAL:
            parts.append(part)  # keeps its cached reference maps
        else:
            raise HsiAnomalyError(f"Mark as normal is not available for {part.detector!r} yet: use rx, "
                                  "glosh-spectral or a combination of them (spectral-spatial, spectral-rx).")
    if not changed:
        raise HsiAnomalyError(f"{scorer.detector} has only spatial parts (no normal population to teach): "
                              "pick a detector with RX or GLOSH on spectra.")
    for old_part, part in zip(scorer.parts(), parts):  # a refit part is still its detector's (z0, halo)
        if part.detector_class is None:
            part.detector_class = old_part.detector_class
    yield Progress(1, 3, "mark as normal: recalibrating")
    new = parts[0] if len(parts) == 1 and not isinstance(scorer, CombinedScorer) else \
        CombinedScorer(scorer.detector, parts, scorer.params)
    new.detector_class = scorer.detector_class  # its calibration's z0 is the detector's, not the default
    yield from new.iter_calibrate(refs)
    # the calibration's floor guards a scene scored blind against itself (its anomalies may fill its own
    # spread); once the user marks what is normal there, it is lifted, so a mark never flags other pixels
    # to keep a quota and the marked kind falls below t_anom
    new.calibration.floor = None
    mark = Mark("normal", scene or str(cube.name), px)
    new.marked_normal = [*getattr(scorer, "marked_normal", []), mark]  # type: ignore[attr-defined]
    for attr in ("profile_path", "band_selection", "source_bands", "profile_info"):
        if hasattr(scorer, attr):
            setattr(new, attr, getattr(scorer, attr))
    if not is_det:
        return new
    yield Progress(2, 3, "mark as normal: scoring")
    det = yield from new.iter_score(cube)
    p = target.params.get("p_min")
    if p and det.can_rescore and int(det.params.get("p_min", p)) != int(p):
        det.rescore(int(p))
    det.extras["scorer"] = new
    det.extras["marked_normal"] = list(new.marked_normal)  # type: ignore[attr-defined]
    return det


def _is_scorer(obj: Any) -> bool:
    from napari_hsi_anomaly.core.detectors.base import Scorer

    return isinstance(obj, Scorer)


def mark_normal(target: Any, cube: Cube | np.ndarray, pixels: np.ndarray, **kw: Any) -> Any:
    """A new scorer (for a ``Scorer``) or detection (for a ``Detection``) whose normal population
    includes ``pixels`` (a ``(rows, cols)`` mask or ``(n, 2)`` row/col pairs) of ``cube``."""
    return run(iter_mark_normal(target, cube, pixels, **kw))


@dataclass
class FeedbackStack:
    """Undo for the feedback loop: the detections (or scorers) in order; ``undo`` drops the last."""

    items: list[Any] = field(default_factory=list)

    def push(self, obj: Any) -> None:
        self.items.append(obj)

    @property
    def current(self) -> Any:
        return self.items[-1] if self.items else None

    @property
    def can_undo(self) -> bool:
        return len(self.items) > 1

    def undo(self) -> Any:
        if self.can_undo:
            self.items.pop()
        return self.current

    def reset(self, obj: Any = None) -> None:
        self.items = [] if obj is None else [obj]
