"""Detection metrics against a ground-truth mask: TPR, FNR, precision, F-score, ROC and AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError


@dataclass
class Metrics:
    """Confusion counts at ``t_anom`` and the threshold-free AUC (NaN when gt has a single class)."""

    tpr: float
    fnr: float
    precision: float
    f_score: float
    auc: float
    tp: int
    fp: int
    fn: int
    tn: int
    n_ignored: int = 0
    note: str = ""

    def as_dict(self) -> dict:
        return {**self.__dict__, "far": self.far}

    @property
    def far(self) -> float:
        """False-alarm rate: the share of the ground truth's normal pixels flagged, FP / (FP + TN)."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")


def _prepare(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    g = np.asarray(gt).reshape(-1)
    if s.size != g.size:
        raise ShapeError(f"scores ({np.shape(scores)}) and ground truth ({np.shape(gt)}) differ in size.")
    ok = np.isfinite(s)
    return s[ok], g[ok] > 0, int((~ok).sum())


def _check_two_classes(g: np.ndarray) -> None:
    pos = int(g.sum())
    if pos == 0 or pos == g.size:
        what = "no anomaly" if pos == 0 else "only anomaly"
        raise HsiAnomalyError(f"ROC/AUC undefined: the ground truth has {what} pixels ({g.size} scored).")


def roc_curve(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` with a point per distinct score (sklearn's, drop_intermediate=False).

    Non-finite scores are ignored. Raises ``HsiAnomalyError`` when gt has a single class.
    """
    s, g, _ = _prepare(scores, gt)
    _check_two_classes(g)
    order = np.argsort(-s, kind="mergesort")
    s, g = s[order], g[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each distinct score
    tps = np.cumsum(g)[last].astype(np.float64)
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    thr = np.r_[np.inf, s[last]]
    return fpr, tpr, thr


def pr_curve(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)``, a point per distinct score from the highest down (flagging
    ``scores >= threshold``); non-finite scores ignored; ``HsiAnomalyError`` when gt has a single class.
    ``average_precision`` is the step-wise area under it."""
    s, g, _ = _prepare(scores, gt)
    _check_two_classes(g)
    order = np.argsort(-s, kind="mergesort")
    s, g = s[order], g[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tps = np.cumsum(g)[last].astype(np.float64)
    flagged = (last + 1).astype(np.float64)
    return tps / flagged, tps / tps[-1], s[last]


def average_precision(scores: np.ndarray, gt: np.ndarray) -> float:
    """Sum over the PR curve's points of precision x recall step (sklearn's definition)."""
    precision, recall, _ = pr_curve(scores, gt)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def auc_score(scores: np.ndarray, gt: np.ndarray) -> float:
    """Area under the ROC curve (trapezoidal, ties count half)."""
    fpr, tpr, _ = roc_curve(scores, gt)
    return float(np.trapezoid(tpr, fpr))


def evaluate(scores: np.ndarray, gt: np.ndarray, t_anom: float = 0.7) -> Metrics:
    """Metrics of ``scores >= t_anom`` against ``gt`` (non-zero = anomaly); NaN scores are ignored."""
    s, g, ignored = _prepare(scores, gt)
    pred = s >= t_anom
    tp = int((pred & g).sum())
    fp = int((pred & ~g).sum())
    fn = int((~pred & g).sum())
    tn = int((~pred & ~g).sum())
    tpr = tp / (tp + fn) if tp + fn else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    f = 2 * precision * tpr / (precision + tpr) if (precision + tpr) > 0 else 0.0
    note = f"{ignored} non-finite scores ignored" if ignored else ""
    try:
        auc = auc_score(s, g)
    except HsiAnomalyError as exc:
        auc, note = float("nan"), "; ".join(x for x in (note, str(exc)) if x)
    fnr = 1.0 - tpr if tpr == tpr else float("nan")
    return Metrics(tpr, fnr, precision, f, auc, tp, fp, fn, tn, ignored, note)
