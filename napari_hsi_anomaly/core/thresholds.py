"""Thresholds that mean something: false-alarm rate, CFAR, contamination, and p_min's risk.

The **normal population** of a detection is its scorer's calibration sample (up to 20,000 pixels of the
reference cubes, ``detectors.calibration.Calibration``), scored again at the detection's ``p_min``; for the
one-cube case (normal from this cube) the reference is the scene itself, anomalies included. Then

- ``false_alarm_rate(det, t)``: the share of that population with a score ``>= t``;
- ``t_for_far(det, far)``: the threshold whose false-alarm rate is at most ``far`` (constant false alarm
  rate, CFAR, as ENVI's RX users set it); its resolution is one sample pixel (``1 / n``);
- ``t_for_contamination(scores, share)``: the threshold that flags ``share`` of the scene's valid pixels
  (PyOD's ``contamination``);
- ``p_min_risk(det, p_min, t_anom)``: whether flagged pixels would form a cluster of their own at
  ``p_min`` (then they stop being outliers), as a message for beside the slider.

``t_anom = 0.7`` stays the default; these only say what a threshold costs or pick another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.feedback import scorer_of

DEFAULT_T_ANOM = 0.7


def _glosh_references(obj: Any, scorer: Any, current: bool) -> list[Any]:
    """The reference GLOSH hierarchies (``score(p_min)`` over the reference rows): those the calibration
    reads (``Raw.reference``), or with ``current`` the ones that score now (a refit after "Mark as
    normal", ``core.feedback``, keeps the first fit's for the calibration)."""
    refs = [getattr(p.ref, "fed", p.ref.scorer) if current else p.ref.scorer
            for p in scorer.parts() if getattr(p, "ref", None) is not None]
    if refs:
        return refs
    return [getattr(h, "scorer", h) for h in getattr(obj, "scorers", []) or []]


def _raw_sample(cal: Any, refs: list[Any], p: int | None) -> np.ndarray:
    """The calibration sample's combined raw values (as ``Calibration.reference_bulk`` combines them)."""
    from napari_hsi_anomaly.core.detectors.calibration import stretch

    acc = cal.fixed_reference().astype(np.float64).copy()
    k = 0
    for kind, rows, w in zip(cal.kinds, cal.samples, cal.weights):
        if kind == "glosh":
            g = refs[k].score(int(p)).scores[np.asarray(rows, np.int64)]  # type: ignore[arg-type]
            acc = acc + (stretch(g) if len(cal.kinds) == 1 else w * g)
            k += 1
    return acc / cal.total_weight


def normal_scores(obj: Any, p_min: int | None = None) -> np.ndarray:
    """Calibrated scores (float32) of the normal population (the calibration sample) of a detection or
    scorer, at ``p_min`` (default: the detection's)."""
    from napari_hsi_anomaly.core.detectors.calibration import to_score

    scorer = scorer_of(obj)
    cal = scorer.calibration
    if cal is None:
        raise HsiAnomalyError("This normal model has no calibration: fit it on reference cubes first.")
    p = None
    if "glosh" in cal.kinds:
        p = p_min or getattr(obj, "params", {}).get("p_min") or scorer.params.get("p_min")
        if not p:
            raise HsiAnomalyError("Give p_min (or a detection) for the false-alarm rate of a GLOSH detector.")
    floor = bool(getattr(obj, "extras", {}).get("calibration", {}).get("floor", False))  # as the detection
    refs = _glosh_references(obj, scorer, False)
    if cal.fusion is not None:  # spectral-spatial's peaks and spectral floor (calibration.Fusion)
        fu = cal.fusion_at(refs, int(p), cal.peaks_p)  # type: ignore[arg-type]  # peaks as the detection's
        med, spread, gain = cal.scale_of(fu.sample, floor)
        cur = _glosh_references(obj, scorer, True)[0]
        if cur is refs[0]:  # not refitted: the calibration sample itself
            now = fu.sample
        else:  # refitted after "Mark as normal": its scores, its peaks at the detection's peak p_min
            pp = int(cal.peaks_p or p)
            now = fu.reference_sample(cal, cur.score(int(p)).scores, cur.score(pp).scores)
        return to_score(now.astype(np.float32), med, spread, cal.z0, gain)
    med, spread, gain = cal.scale_of(_raw_sample(cal, refs, p), floor)
    now = _raw_sample(cal, _glosh_references(obj, scorer, True), p)
    return to_score(now.astype(np.float32), med, spread, cal.z0, gain)


def false_alarm_rate(obj: Any, t_anom: float = DEFAULT_T_ANOM, *, normal: np.ndarray | None = None
                     ) -> float:
    """Share of the normal population with a score ``>= t_anom`` (``normal``: ``normal_scores`` reused)."""
    s = normal_scores(obj) if normal is None else np.asarray(normal)
    return float(np.mean(s >= np.float32(t_anom))) if s.size else float("nan")


def _above(s_desc: np.ndarray, k: int) -> float:
    """The threshold that leaves the ``k`` largest of ``s_desc`` (sorted, descending) at or above it."""
    if k <= 0:
        return float(np.nextafter(np.float32(s_desc[0]), np.float32(np.inf)))
    if k >= s_desc.size:
        return float(s_desc[-1])
    return float(np.nextafter(np.float32(s_desc[k]), np.float32(np.inf)))


def t_for_far(obj: Any, far: float, *, normal: np.ndarray | None = None) -> float:
    """CFAR: the lowest threshold whose false-alarm rate on the normal population is at most ``far``."""
    if not 0.0 <= far <= 1.0:
        raise HsiAnomalyError(f"The false-alarm rate must be between 0 and 1; got {far!r}.")
    s = normal_scores(obj) if normal is None else np.asarray(normal, np.float32)
    s = np.sort(s[np.isfinite(s)])[::-1]
    if not s.size:
        raise HsiAnomalyError("The normal population is empty.")
    return min(1.0, _above(s, int(np.floor(far * s.size + 1e-9))))


def t_for_contamination(scores: np.ndarray, share: float, *, valid: np.ndarray | None = None) -> float:
    """The threshold that flags ``share`` of the valid pixels (PyOD's contamination; ties flag more)."""
    if not 0.0 <= share <= 1.0:
        raise HsiAnomalyError(f"The contamination must be between 0 and 1; got {share!r}.")
    s = np.asarray(scores, np.float32)
    ok = np.isfinite(s) if valid is None else (np.asarray(valid, bool) & np.isfinite(s))
    v = np.sort(s[ok])[::-1]
    if not v.size:
        raise HsiAnomalyError("No valid score to set a contamination threshold on.")
    k = int(round(share * v.size))
    return float(v[-1]) if k >= v.size else (_above(v, 0) if k <= 0 else float(v[k - 1]))


@dataclass
class PminRisk:
    """What ``p_min`` would do to the flagged pixels: ``at_risk`` of them in ``groups`` clusters made
    mostly of flagged pixels (the largest ``largest`` pixels); ``message`` is empty when nothing is."""

    p_min: int
    at_risk: int
    groups: int
    largest: int
    message: str

    @property
    def safe_p_min(self) -> int:
        """A p_min above the largest such group (with a margin)."""
        return int(np.ceil(self.largest * 1.25)) + 1 if self.groups else self.p_min


def p_min_risk(detection: Any, p_min: int, t_anom: float = DEFAULT_T_ANOM, *, share: float = 0.5,
               flagged: np.ndarray | None = None) -> PminRisk:
    """Would the pixels flagged now form a cluster of their own at ``p_min``? The clusters of the
    detection's GLOSH hierarchy at ``p_min`` made of at least ``share`` flagged pixels are counted
    (per-pixel GLOSH only; other detections have no such risk). ``flagged``: the flagged pixels to judge
    (the dock passes the mask shown before the p_min move; default the detection's mask at ``t_anom``)."""
    p = int(p_min)
    none = PminRisk(p, 0, 0, 0, "")
    if not getattr(detection, "can_rescore", False) or detection.extras.get("regions") is not None:
        return none
    mask = (detection.mask(t_anom) if flagged is None else np.asarray(flagged, bool)).ravel()
    if not mask.any():
        return none
    labels = np.asarray(detection.scorers[0].score(p).labels)
    if labels.shape != mask.shape:
        return none
    size = np.bincount(labels[labels >= 0])
    flagged = np.bincount(labels[mask & (labels >= 0)], minlength=size.size)
    bad = np.flatnonzero((size > 0) & (flagged >= share * np.maximum(size, 1)))
    if not bad.size:
        return none
    at_risk, largest = int(flagged[bad].sum()), int(size[bad].max())
    risk = PminRisk(p, at_risk, int(bad.size), largest, "")
    risk.message = (f"p_min {p}: {at_risk:,} flagged pixels form {bad.size} cluster"
                    f"{'s' if bad.size > 1 else ''} of their own (up to {largest:,} pixels) and would stop "
                    f"being outliers; keep p_min above {risk.safe_p_min:,}.")
    return risk
