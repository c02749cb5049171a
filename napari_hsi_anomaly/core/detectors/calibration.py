"""What a score means: raw outlyingness mapped through the reference's distribution to [0, 1].

Every detector first gives a raw outlyingness per pixel (a GLOSH score ``g``, taken as its odds
``g / (1 - g)`` when GLOSH is the only part, an RX distance, a reconstruction error, ...). Combinations
average their parts on a common scale (a weighted mean: ``Scorer.part_weights``, e.g. ``local_weight``
and ``attribute_weight``): GLOSH scores as they are, fixed maps (RX, attribute filters, ...) scaled so
that the reference's minimum is 0 and its 99.9th percentile 1, not clipped above: a pixel far beyond the
reference in one part alone (a bright object for the filters) reaches the top of the score.
``spectral-spatial`` goes beyond the mean (``Fusion``): the fixed parts count in proportion to GLOSH's
odds up to the reference's median (spatial evidence needs a spectrally unusual pixel), the *GLOSH
peaks* (bright objects of up to 400 px in GLOSH's own map, ``morphology.glosh_peaks``) join the sum, and
the result is at least GLOSH's odds alone in reference spreads divided by ``spectral_max``: the spatial
parts rank small and large targets, the floor keeps a regional anomaly (haze) that only GLOSH sees.
The result ``r`` is then calibrated against the **reference** (the cubes the detector was fitted on;
the scene itself for ``iter_detect``): with ``m`` the reference's median of ``r`` and ``s`` the distance
from that median to its ``CAL_QUANTILE`` (95th) percentile,

    z = (r - m) / (z0 * s),   then beyond 0.7 (z > 1): z <- 1 + gain * (z - 1),
    score = 0.1 + 0.9 * (1 - (1 + z / H)^-2)  for z >= 0  (H = 1 / (sqrt(3) - 1)),
    score = 0.1 / (1 - z)  for z < 0.

So **0.1 is the reference's typical (median) value, 0.7 is where a pixel is ``z0`` (about 1-3) times as
far above the reference's median as the reference's 95th percentile is**, and the score tends to 1 for
the most outlying pixels (1 = most outlying, as GLOSH's own scale): 0.91 at 3 stretched z0 spreads,
0.95 at 4.5, 0.99 at 12; it never reaches 1 exactly, so the ranking of the most outlying pixels is
kept, and below the median it decays towards 0 (no-data pixels are 0).

``gain`` (``tail_gain``, >= 1) stretches the scale above 0.7 so that the reference's top (its 99.9th
percentile) scores at least 0.95: a combination whose parts rarely agree at the extreme would otherwise
top out near 0.8. A target beyond everything in the reference goes higher still, so against a clear
reference a hazy date's top is above a clear date's.

Two more rules keep ``t_anom = 0.7`` meaning "about as many pixels as are anomalous" (measured on the
labelled development scenes and the stress set, ``benchmarks/results/bench_scenes.md``): where the scene
is its own reference (``iter_detect``, or a reference cut from the scene), 0.7 sits at most at the
reference's ``FLAG_FLOOR`` (98.25th) percentile, since a scene whose anomalies fill more than about 5 %
of it (large targets) has its 95th percentile among them (``Calibration.scale_of``); a separate, normal
reference has no such floor, nor a scene whose normal pixels the user has marked
(``core.feedback``: the user now says what is normal there). The detection records what was used
(``extras["calibration"]``: median, spread, z0, gain, floor).
The mapping is monotone, so it changes no ranking (AUC). GLOSH parts are recalibrated at each ``p_min``
(the reference's GLOSH scores at that ``p_min``, from a fixed sample of at most ``SAMPLE`` reference
pixels), so a live ``p_min`` keeps the meaning. The calibration is part of a saved profile
(``Scorer.state``).
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.detection import Detection
from napari_hsi_anomaly.core.progress import Progress

if TYPE_CHECKING:  # base imports this module (Scorer.iter_score, iter_calibrate, from_state)
    from napari_hsi_anomaly.core.detectors.base import Raw

PIXEL_P_MIN_FRACTION = 0.08  # per pixel: a cluster holds at least 8 % of the scene (and >= 100 pixels)
THESIS_P_MIN_FRACTION = 100 / 2925  # per window/section: the thesis's p_min = 100 of 2925 windows
RX_SCALE_PERCENTILES = (0.0, 99.9)  # fixed parts of a combination: [reference min, 99.9th pct] -> [0, 1]
CAL_QUANTILE = 95.0  # the reference's spread: median to this percentile (robust to 5 % anomalies)
FLAG_FLOOR = 98.25  # a scene scored against itself: 0.7 at most at this percentile (Calibration.scale_of)
Z0 = 1.5  # score 0.7 at z0 spreads above the reference's median (a detector sets calibration_z0)
SAMPLE = 20000  # reference pixels kept for the calibration
S0 = 0.1  # the score of the reference's median
TOP_QUANTILE = 99.9  # the reference's top: this percentile of its combined raw values
Z_TOP = 4.5  # ... is stretched to at least this many z0 spreads (score 0.95)
MAX_GAIN = 8.0  # at most this stretch beyond score 0.7
_H = float(1.0 / (np.sqrt(3.0) - 1.0))  # score = S0 + (1 - S0) (1 - (1 + z/H)^-2): 0.7 at z = 1


def auto_p_min(n_points: int, *, per_pixel: bool = True) -> int:
    """Default ``p_min`` for ``n_points`` feature rows.

    Per pixel: ``max(100, ceil(8 % of the pixels))``. A group of similar pixels at least ``p_min``
    strong forms a cluster of its own and stops being an outlier, so ``p_min`` must exceed the largest
    group of similar anomalous pixels to be found. 8 % is the smallest share that keeps 1-5 %
    of the pixels planted with one recipe outliers, at little cost on the development scenes
    (benchmarks/results/bench_pmin.md).
    Per window/section: the thesis's ratio, 100 of 2925 points (at least 5).
    """
    if per_pixel:
        return max(100, int(np.ceil(PIXEL_P_MIN_FRACTION * n_points)))
    return max(5, int(round(THESIS_P_MIN_FRACTION * n_points)))


def bulk(values: np.ndarray, quantile: float = CAL_QUANTILE) -> tuple[float, float]:
    """``(median, spread)`` of the finite ``values``: spread = its ``quantile`` percentile minus the
    median (the maximum minus the median, or 1, where that is 0)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    med, hi = np.percentile(v, [50.0, quantile])
    spread = hi - med
    if not spread > 0:
        spread = float(v.max() - med)
    return float(med), float(spread) if spread > 0 else 1.0


def tail_gain(values: np.ndarray, med: float, spread: float, z0: float) -> float:
    """How much the scale is stretched beyond 0.7 (``z > 1``) so that the reference's top (its
    ``TOP_QUANTILE`` percentile) scores at least 0.95 (``Z_TOP``): 1 where it already does, at most
    ``MAX_GAIN`` (a reference with nothing above 0.7)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    z_top = (float(np.percentile(v, TOP_QUANTILE)) - med) / (spread * z0)
    if z_top >= Z_TOP:
        return 1.0
    return float(min(MAX_GAIN, (Z_TOP - 1.0) / (z_top - 1.0))) if z_top > 1.0 else MAX_GAIN


def _squash(z: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """``z`` (float32, in units of z0) to the score, in place (see the module docstring); beyond
    ``z = 1`` (score 0.7) ``z`` is first stretched by ``gain`` (``tail_gain``)."""
    if gain != 1.0:
        hi = z > 1
        z[hi] = np.float32(1.0) + (z[hi] - np.float32(1.0)) * np.float32(gain)
    neg = z < 0
    low = np.float32(S0) / (np.float32(1.0) - z[neg])
    np.maximum(z, 0.0, out=z)
    z *= np.float32(1.0 / _H)
    z += np.float32(1.0)
    np.square(z, out=z)
    np.reciprocal(z, out=z)  # (1 + z/H)^-2 in (0, 1]
    z *= np.float32(-(1.0 - S0))
    z += np.float32(1.0)
    z[neg] = low
    return z


def _fused_numpy(g: np.ndarray, f: np.ndarray, k: float, c: float, out: np.ndarray,
                 odds: bool, gain: float) -> np.ndarray:
    np.add(stretch(g) if odds else g, f, out=out)
    out *= np.float32(k)
    out -= np.float32(c)
    np.nan_to_num(out, copy=False, nan=-np.inf)
    return _squash(out, gain)


def _fused_kernel() -> Any:
    """``z = (g + f) * k - c`` stretched and squashed to the score (``_squash``): one numba pass (numpy
    without)."""
    global _FUSED
    if _FUSED is None:
        try:
            import numba

            @numba.njit(cache=True, nogil=True, error_model="numpy")
            def fused(g, f, k, c, out, odds, gain):  # pragma: no cover - compiled
                kk, cc, ih, ga = np.float32(k), np.float32(c), np.float32(1.0 / _H), np.float32(gain)
                s0, s1, top = np.float32(S0), np.float32(1.0 - S0), np.float32(1.0 - 1e-6)
                for i in range(g.size):
                    gi = g[i]
                    if odds:
                        gi = min(gi, top)
                        gi = gi / (np.float32(1.0) - gi)
                    v = (gi + f[i]) * kk - cc
                    if v > 1:
                        v = np.float32(1.0) + (v - np.float32(1.0)) * ga
                    if v >= 0:
                        t = np.float32(1.0) + v * ih
                        out[i] = np.float32(1.0) - s1 / (t * t)
                    elif v < 0:
                        out[i] = s0 / (np.float32(1.0) - v)
                    else:  # NaN (a no-data pixel's GLOSH row): 0
                        out[i] = np.float32(0.0)
                return out

            probe = np.zeros(2, np.float32)
            fused(probe, probe, 1.0, 0.0, probe.copy(), True, 1.0)
            _FUSED = fused
        except Exception:  # pragma: no cover - no numba
            _FUSED = _fused_numpy
    return _FUSED


_FUSED: Any = None


def _fusion_kernel() -> Any:
    """``Fusion``'s composition and the calibrated score in one numba pass (a ``p_min`` move on a whole
    scene); None without numba (``Fusion.combine`` and ``to_score`` in numpy)."""
    global _FUSION
    if _FUSION is None:
        try:
            import numba

            @numba.njit(cache=True, nogil=True, error_model="numpy")
            def fusion(g, f, pk, has_pk, gw, inv_gate, mm, ims, om, ioc, use_odds, med, k, gain, out):
                # pragma: no cover - compiled
                top, one = np.float32(1.0 - 1e-6), np.float32(1.0)
                s0, s1, ih, ga = np.float32(S0), np.float32(1.0 - S0), np.float32(1.0 / _H), np.float32(gain)
                for i in range(g.size):
                    gi = g[i]
                    gc = min(gi, top)
                    o = gc / (one - gc)
                    m = gw * gi + f[i] * min(o * inv_gate, one)
                    if has_pk:
                        m = m + pk[i]
                    r = (m - mm) * ims
                    if use_odds:
                        z = (o - om) * ioc
                        if z > r:
                            r = z
                    v = (r - med) * k
                    if v > 1:
                        v = one + (v - one) * ga
                    if v >= 0:
                        t = one + v * ih
                        out[i] = one - s1 / (t * t)
                    elif v < 0:
                        out[i] = s0 / (one - v)
                    else:  # NaN: 0
                        out[i] = np.float32(0.0)
                return out

            _FUSION = fusion
        except Exception:  # pragma: no cover - no numba
            _FUSION = False
    return _FUSION or None


_FUSION: Any = None


def stretch(g: np.ndarray) -> np.ndarray:
    """A GLOSH score alone is calibrated as its odds ``g / (1 - g)`` (float32, new array): GLOSH
    saturates at 1, so on its own scale the reference's spread leaves the outliers no room; monotone
    (no AUC change), one division per pixel (fused into the ``rescore`` pass)."""
    g = np.minimum(np.asarray(g, dtype=np.float32), np.float32(1.0 - 1e-6))
    return g / (np.float32(1.0) - g)


def to_score(r: np.ndarray, med: float, spread: float, z0: float, gain: float = 1.0) -> np.ndarray:
    """The calibrated score (float32, in place where ``r`` is float32): see the module docstring."""
    out = np.asarray(r, dtype=np.float32)
    out -= np.float32(med)
    out *= np.float32(1.0 / (spread * z0))
    return _squash(out, gain)


def score_to_z(score: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """The inverse of the squashing and stretch: ``z`` in units of z0 (for fitting z0 in benchmarks)."""
    s = np.asarray(score, dtype=np.float64)
    x = np.clip((s - S0) / (1 - S0), 0.0, 1 - 1e-12)
    with np.errstate(divide="ignore"):
        z = np.where(s >= S0, (1.0 / np.sqrt(1.0 - x) - 1.0) * _H, 1 - S0 / np.maximum(s, 1e-300))
    return np.where(z > 1, 1 + (z - 1) / gain, z)


class Calibration:
    """The reference's raw outlyingness, as much as a new ``p_min`` or target needs.

    Per part (in ``scorer.parts()`` order): fixed parts keep their values at the sampled reference
    pixels and their ``(min, 99.9th pct)`` range; GLOSH parts keep the reference rows sampled (their
    scores come from the reference hierarchy at the current ``p_min``).
    """

    def __init__(self, kinds: list[str], samples: list[np.ndarray], ranges: list[tuple[float, float]],
                 z0: float = Z0, quantile: float | None = None, weights: Sequence[float] | None = None,
                 floor: float | None = FLAG_FLOOR, fusion: dict | None = None,
                 shapes: Sequence[Sequence[int]] | None = None) -> None:
        self.kinds, self.samples, self.ranges = kinds, samples, ranges
        # peaks and spectral floor (``Fusion``) and the reference images' shapes, in reference order
        self.fusion = None if not fusion else dict(fusion)
        self.shapes = None if shapes is None else [tuple(int(x) for x in sh) for sh in shapes]
        self._fusion_cache: dict[tuple[int, int, int], Fusion] = {}
        self.peaks_p: int | None = None  # the p_min of the GLOSH peaks (``fusion_at``)
        self.weights = [1.0] * len(kinds) if weights is None else [float(w) for w in weights]
        self.z0, self.quantile = float(z0), float(CAL_QUANTILE if quantile is None else quantile)
        self.floor = None if floor is None else float(floor)
        self.refs: list[Any] = []  # weak references to the reference cubes (not saved)
        self.scene_reference = False  # set where the reference is strips of the scene scored in blocks
        self._fixed_ref: np.ndarray | None = None

    def is_reference(self, cube: Cube) -> bool:
        """Whether ``cube`` is one of the cubes this calibration was computed on (in this session), or
        the reference was taken from the scene being scored (``scene_reference``)."""
        return self.scene_reference or any(r() is cube for r in self.refs)

    def fixed_reference(self) -> np.ndarray:
        """Weighted sum over fixed parts of their scaled sample values (``scale_fixed``; a single part:
        raw)."""
        if self._fixed_ref is None:
            n = next((s.size for s in self.samples), 0)
            acc = np.zeros(n, np.float64)
            for kind, s, rng, w in zip(self.kinds, self.samples, self.ranges, self.weights):
                if kind == "fixed":
                    acc += s if len(self.kinds) == 1 else w * scale_fixed(s, rng)
            self._fixed_ref = acc
        return self._fixed_ref

    def reference_bulk(self, glosh_refs: list[Any], p_min: int | None, floor: bool = False,
                       peaks_p: int | None = None) -> tuple[float, float, float]:
        """``(median, spread, gain)`` of the reference's combined raw values at ``p_min`` (``peaks_p``:
        see ``fusion_at``)."""
        if self.fusion is not None:
            return self.scale_of(self.fusion_at(glosh_refs, int(p_min), peaks_p).sample, floor)
        acc = self.fixed_reference().copy()
        k = 0
        for kind, rows, w in zip(self.kinds, self.samples, self.weights):
            if kind == "glosh":
                g = glosh_refs[k].score(int(p_min)).scores[rows.astype(np.int64)]
                acc += stretch(g) if len(self.kinds) == 1 else w * g
                k += 1
        return self.scale_of(acc / self.total_weight, floor)

    def fusion_at(self, glosh_refs: list[Any], p_min: int, peaks_p: int | None = None) -> Fusion:
        """The reference's ``Fusion`` statistics at ``p_min`` (kept per ``p_min``), its GLOSH peaks those
        at ``peaks_p``: the automatic ``p_min`` (``compose`` gives it; remembered as ``self.peaks_p``).
        The peaks are one area filter of the whole reference map, so any other ``p_min`` re-uses them and
        recomputes only what the 20,000-pixel sample gives (the slider stays live)."""
        if peaks_p is not None and self.peaks_p is None:
            self.peaks_p = int(peaks_p)
        base_p = int(p_min) if self.peaks_p is None else self.peaks_p
        key = (id(glosh_refs[0]), int(p_min), base_p)
        fu = self._fusion_cache.get(key)
        if fu is None:
            if len(self._fusion_cache) > 8:
                self._fusion_cache.clear()
            base = None if base_p == int(p_min) else self.fusion_at(glosh_refs, base_p)
            fu = Fusion.of_reference(self, glosh_refs[0].score(p_min).scores, base)
            self._fusion_cache[key] = fu
        return fu

    def scale_of(self, values: np.ndarray, floor: bool = False) -> tuple[float, float, float]:
        """``(median, spread, gain)`` of the reference's combined raw ``values`` (``bulk``, ``tail_gain``).

        With ``floor`` (a scene scored against itself, anomalies included), the spread is at most the
        one that puts 0.7 at the reference's ``floor`` percentile: where anomalies fill more than about
        5 % of the scene (large targets), its 95th percentile lies among them and the spread alone would
        put 0.7 beyond most of them; so 0.7 flags at least ``100 - floor`` % of such a scene. A separate
        (normal) reference has no floor: a clean scene against it flags almost nothing."""
        med, spread = bulk(values, self.quantile)
        if floor and self.floor is not None:
            v = np.asarray(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            top = float(np.percentile(v, self.floor)) if v.size else med
            if top > med:
                spread = min(spread, (top - med) / self.z0)
        return med, spread, tail_gain(values, med, spread, self.z0)

    @property
    def total_weight(self) -> float:
        """The parts' weights summed (the mean's divisor; the number of parts when unweighted)."""
        return float(sum(self.weights))

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {f"sample{i}": np.asarray(s) for i, s in enumerate(self.samples)}
        meta = {"kinds": self.kinds, "ranges": [list(map(float, r)) for r in self.ranges],
                "z0": self.z0, "quantile": self.quantile, "weights": self.weights, "floor": self.floor,
                "scene_reference": self.scene_reference, "fusion": self.fusion,
                "shapes": None if self.shapes is None else [list(sh) for sh in self.shapes]}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> Calibration:
        kinds = list(meta["kinds"])
        samples = [np.asarray(arrays[f"sample{i}"]) for i in range(len(kinds))]
        out = cls(kinds, samples, [tuple(r) for r in meta["ranges"]], meta["z0"], meta["quantile"],
                  meta.get("weights"),  # profiles saved before weights: every part 1
                  meta.get("floor"),  # ... before the floor: none
                  meta.get("fusion"), meta.get("shapes"))  # ... before the peaks: the weighted mean
        out.scene_reference = bool(meta.get("scene_reference", False))
        return out


GATE_QUANTILE = 50.0  # spatial parts count fully where GLOSH's odds reach the reference's median
PEAK_STEPS = 32768  # glosh_peaks quantises the reference's range above its median in this many steps


@dataclass
class Fusion:
    """What ``spectral-spatial``'s rule needs from the reference at one ``p_min`` (``Calibration.fusion``:
    ``peak_weight`` w_p and ``spectral_max`` c).

    Its raw value is ``R = max((m - m_med) / m_spread, (o - o_med) / (c * o_spread))``: ``m`` the
    weighted sum of the parts (GLOSH ``g``, the scaled fixed parts) plus ``w_p`` times the scaled GLOSH
    peaks (``morphology.glosh_peaks``), ``o`` GLOSH's odds alone, each against the reference's median and
    spread (``bulk``). The spatial parts rank small and large targets; the maximum lets a pixel that
    GLOSH alone puts far beyond the reference (a regional anomaly: haze, a field) score as high as
    GLOSH would, whatever the spatial parts say (they see nothing in a large uniform region)."""

    level: float  # the reference's median of sqrt(odds): glosh_peaks holds the image at least there
    step: float | None  # glosh_peaks' quantisation step
    peak_range: tuple[float, float]  # the reference's peaks: (min, 99.9th percentile) -> [0, 1]
    mean_bulk: tuple[float, float]  # (median, spread) of m over the reference
    odds_bulk: tuple[float, float]  # (median, spread) of o over the reference
    peak_weight: float
    spectral_max: float
    glosh_weight: float
    gate_level: float  # the reference's GATE_QUANTILE percentile of GLOSH's odds
    sample: np.ndarray  # R at the reference's sampled pixels (its calibration)
    peaks: np.ndarray | None  # the reference's peak map (flat): reused where the target is the reference

    @classmethod
    def of_reference(cls, cal: Calibration, scores: np.ndarray, base: Fusion | None = None) -> Fusion:
        """From the reference hierarchy's ``scores`` (every reference pixel, in reference order);
        ``base``: the peaks (level, step, map, range) taken from it instead of filtered anew."""
        from napari_hsi_anomaly.core.scoring.morphology import peak_image

        k = cal.kinds.index("glosh")
        rows, gw = cal.samples[k].astype(np.int64), float(cal.weights[k])
        pw, c = float(cal.fusion["peak_weight"]), float(cal.fusion["spectral_max"])
        scores = np.asarray(scores, dtype=np.float32)
        if base is not None:
            level, step, peaks, prange = base.level, base.step, base.peaks, base.peak_range
        else:
            img = peak_image(scores)
            fin = img[np.isfinite(img)]
            level = float(np.median(fin)) if fin.size else 0.0
            top = float(fin.max()) if fin.size else level
            step = (top - level) / PEAK_STEPS if top > level else None
            peaks, prange = None, (0.0, 1.0)
        if base is None and pw > 0 and cal.shapes:
            peaks = _peaks_of(scores, cal.shapes, level, step)
            ok = peaks[np.isfinite(peaks)]
            if ok.size:
                prange = (float(np.percentile(ok, RX_SCALE_PERCENTILES[0])),
                          float(np.percentile(ok, RX_SCALE_PERCENTILES[1])))
        g = scores[rows]
        o = stretch(g)
        o = o[np.isfinite(o)]
        gate = float(np.percentile(o, GATE_QUANTILE)) if o.size else 1.0
        fu = cls(level, step, prange, (0.0, 1.0), (0.0, 1.0), pw, c, gw, gate if gate > 0 else 1.0,
                 np.zeros(0), peaks)
        m = fu.mean_raw(g, cal.fixed_reference(), None if peaks is None else peaks[rows])
        fu.mean_bulk, fu.odds_bulk = bulk(m), bulk(stretch(g))
        fu.sample = fu.combine(m, g)
        return fu

    def mean_raw(self, g: np.ndarray, fixed: np.ndarray, peaks: np.ndarray | None) -> np.ndarray:
        """``m``: GLOSH weighted, the fixed parts (already scaled and weighted) and the peaks."""
        g = np.asarray(g, dtype=np.float32)
        gate = np.minimum(stretch(g) * np.float32(1.0 / self.gate_level), np.float32(1.0))
        m = np.float32(self.glosh_weight) * g + fixed * gate
        if peaks is not None and self.peak_weight > 0:
            m = m + np.float32(self.peak_weight) * scale_fixed(peaks, self.peak_range)
        return m

    def combine(self, m: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``R`` (float32) from ``m`` and GLOSH's scores ``g`` (NaN stays NaN)."""
        (mm, ms), (om, os_) = self.mean_bulk, self.odds_bulk
        out = (np.asarray(m, dtype=np.float32) - np.float32(mm)) * np.float32(1.0 / ms)
        if self.spectral_max > 0:
            z = (stretch(g) - np.float32(om)) * np.float32(1.0 / (os_ * self.spectral_max))
            out = np.where(z > out, z, out)
        return out

    def reference_sample(self, cal: Calibration, scores: np.ndarray, peak_scores: np.ndarray | None = None
                         ) -> np.ndarray:
        """``R`` at the reference's sampled pixels with GLOSH's ``scores`` of every reference pixel (a
        hierarchy refitted after "Mark as normal" scores them anew; this fit's statistics stay);
        ``peak_scores``: those the peaks are filtered from (the peaks' own ``p_min``; default ``scores``)."""
        n = sum(r * c for r, c in cal.shapes or [])
        scores = np.asarray(scores, dtype=np.float32)[:n]
        rows = cal.samples[cal.kinds.index("glosh")].astype(np.int64)
        src = scores if peak_scores is None else np.asarray(peak_scores, dtype=np.float32)[:n]
        peaks = _peaks_of(src, cal.shapes, self.level, self.step) if self.peak_weight > 0 else None
        g = scores[rows]
        m = self.mean_raw(g, cal.fixed_reference(), None if peaks is None else peaks[rows])
        return self.combine(m, g)

    def target_peaks(self, g: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
        """The target's peak map (flat), filtered on the reference's level and step."""
        from napari_hsi_anomaly.core.scoring.morphology import glosh_peaks

        if self.peak_weight <= 0:
            return None
        return glosh_peaks(np.asarray(g).reshape(shape), self.level, self.step).reshape(-1)

    def describe(self) -> dict:
        return {"peak_weight": self.peak_weight, "spectral_max": self.spectral_max,
                "peak_range": list(self.peak_range), "mean_bulk": list(self.mean_bulk),
                "odds_bulk": list(self.odds_bulk)}


def _peaks_of(scores: np.ndarray, shapes: Sequence[tuple[int, int]], level: float, step: float | None
              ) -> np.ndarray:
    """``morphology.glosh_peaks`` of each reference image in ``scores`` (every pixel, in reference order),
    flat."""
    from napari_hsi_anomaly.core.scoring.morphology import glosh_peaks

    maps, at = [], 0
    for r, c in shapes:
        maps.append(glosh_peaks(scores[at:at + r * c].reshape(r, c), level, step).reshape(-1))
        at += r * c
    return np.concatenate(maps)


def scale_fixed(values: np.ndarray, rng: tuple[float, float]) -> np.ndarray:
    """A fixed part in a combination: ``(values - lo) / (hi - lo)`` (float32, new array), at least 0,
    not clipped above (``rng``: the reference's minimum and 99.9th percentile)."""
    lo, hi = rng
    out = np.asarray(values, dtype=np.float32) - np.float32(lo)
    out *= np.float32(1.0 / (hi - lo)) if hi > lo else np.float32(0.0)
    return np.maximum(out, 0.0, out=out)


def _z0_of(scorer: Any) -> float:
    """The fitted scorer's own detector's ``calibration_z0`` (``Z0`` for a scorer without one)."""
    return float(getattr(getattr(scorer, "detector_class", None), "calibration_z0", Z0))


def _sample_positions(valids: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    flat = np.concatenate([v.ravel() for v in valids])
    pos = np.flatnonzero(flat)
    if pos.size > SAMPLE:
        pos = np.sort(np.random.default_rng(seed).choice(pos, SAMPLE, replace=False))
    return pos


def calibration_from(scorer: Any, valids: Sequence[np.ndarray], raws_per_part: list[list[Raw]]
                     ) -> Calibration:
    """The calibration from the reference cubes' raws (``raws_per_part[part][cube]``)."""
    pos = _sample_positions(valids)
    kinds, samples, ranges = [], [], []
    for raws in raws_per_part:
        first = raws[0]
        if first.glosh is not None:
            kinds.append("glosh")
            if first.regions is not None:  # windows/sections: every finite reference row
                finite = getattr(first.reference, "finite", None)
                n = first.reference.n_points
                rows = np.flatnonzero(finite) if finite is not None else np.arange(n)
            else:
                rows = pos
            samples.append(rows.astype(np.int64))
            ranges.append((0.0, 1.0))
        else:
            kinds.append("fixed")
            flat = np.concatenate([r.fixed.ravel() for r in raws]).astype(np.float32)
            ok = np.concatenate([v.ravel() for v in valids]) & np.isfinite(flat)
            lo, hi = np.percentile(flat[ok], RX_SCALE_PERCENTILES) if ok.any() else (0.0, 1.0)
            samples.append(np.nan_to_num(flat[pos], nan=float(lo)))
            ranges.append((float(lo), float(hi)))
    fusion = scorer.fusion() if hasattr(scorer, "fusion") else None
    if fusion is not None and (kinds.count("glosh") != 1
                               or raws_per_part[kinds.index("glosh")][0].regions is not None):
        fusion = None  # the rule reads one GLOSH part per pixel
    return Calibration(kinds, samples, ranges, _z0_of(scorer), weights=scorer.part_weights(), fusion=fusion,
                       shapes=[v.shape for v in valids])


def iter_calibrate(scorer: Any, cubes: Sequence[Cube]) -> Generator[Progress, None, None]:
    """Compute the reference cubes' raws (kept for scoring them again) and ``scorer.calibration``."""
    parts = scorer.parts()
    per_part: list[list[Raw]] = [[] for _ in parts]
    for cube in cubes:
        for i, part in enumerate(parts):
            raw = yield from part.raw_for(cube)
            part.remember_raw(cube, raw)
            per_part[i].append(raw)
    scorer.calibration = calibration_from(scorer, [c.valid_mask() for c in cubes], per_part)
    scorer.calibration.refs = [weakref.ref(c) for c in cubes]


def compose(scorer: Any, cube: Cube, valid: np.ndarray, raws: list[Raw]) -> Detection:
    """The ``Detection`` of ``cube`` from its parts' ``raws`` (GLOSH parts stay live for ``rescore``)."""
    from napari_hsi_anomaly.core.scoring.maps import to_score_map

    shape = (cube.rows, cube.cols)
    cal = scorer.calibration
    own = cal is None or cal.is_reference(cube)  # the scene is (part of) its own reference: floor
    own = own and (cal is None or cal.floor is not None)  # none after the user marked pixels normal
    if cal is None:  # fitted without a calibration: the target is its own reference
        cal = calibration_from(scorer, [valid], [[r] for r in raws])
    params: dict = {"method": scorer.detector}
    extras: dict = {"valid": valid}
    for r in raws:
        extras.update(r.extras)
    params.update(scorer.detection_params())
    model = extras.get("model")
    if model is not None:
        params["model"] = model.describe() if hasattr(model, "describe") else str(model)
    n, total = len(raws), cal.total_weight
    fixed_sum = None
    for r, rng, w in zip(raws, cal.ranges, cal.weights):
        if r.fixed is not None:
            f = np.array(r.fixed, dtype=np.float32) if n == 1 else scale_fixed(r.fixed, rng)
            if w != 1.0:
                f *= np.float32(w)
            fixed_sum = f if fixed_sum is None else np.add(fixed_sum, f, out=fixed_sum)
    invalid = ~valid

    def finish(out: np.ndarray) -> np.ndarray:
        out[invalid] = 0.0
        np.nan_to_num(out, copy=False, nan=0.0)
        return out

    glosh = [r for r in raws if r.glosh is not None]
    if not glosh:
        med, spread, gain = cal.scale_of(cal.fixed_reference() / total, own)
        comb = fixed_sum / np.float32(total) if n > 1 else fixed_sum
        extras["calibration"] = {"median": med, "spread": spread, "z0": cal.z0, "gain": gain, "floor": own}
        return Detection(finish(to_score(comb, med, spread, cal.z0, gain)), scorer.detector, "pixel",
                         params, extras)

    feature = "+".join(r.feature for r in glosh)
    extras.setdefault("regions", glosh[0].regions if len(glosh) == 1 else None)
    p_min = scorer.params.get("p_min")
    if p_min is None:
        p_min = auto_p_min(glosh[0].n_points, per_pixel=glosh[0].per_pixel)
        params["p_min_auto"] = True
    params.update(feature=feature, p_min=int(p_min))
    params.update({k: int(scorer.params[k]) for k in ("min_samples", "max_fit")
                   if scorer.params.get(k) is not None})  # a GLOSH part may declare neither
    refs = [r.reference if r.reference is not None else r.glosh for r in glosh]
    regions = glosh[0].regions if n == 1 else None
    # the fixed parts, precomposed once (float32): their sum, -inf where a pixel has no data
    fixed_pre = np.zeros(shape, np.float32) if fixed_sum is None else fixed_sum
    fixed_pre[invalid | ~np.isfinite(fixed_pre)] = -np.inf
    fixed_flat = fixed_pre.reshape(-1)
    kernel = _fused_kernel()

    # spectral-spatial: the GLOSH peaks are those of the automatic p_min whatever p_min is set or moved to
    # (the same map on every path; a move re-filters nothing)
    peaks_p = auto_p_min(glosh[0].n_points, per_pixel=glosh[0].per_pixel) if cal.fusion is not None else None
    frozen: dict[str, Any] = {}

    def compose_maps(results: list[Any]) -> np.ndarray:
        p = int(results[0].p_min)
        med, spread, gain = cal.reference_bulk(refs, p, own, peaks_p=peaks_p)
        extras["calibration"] = {"median": med, "spread": spread, "z0": cal.z0, "gain": gain, "floor": own}
        if regions is not None:  # one window/section GLOSH part: calibrate points, then map back
            pts = to_score(stretch(results[0].scores), med, spread, cal.z0, gain)
            return finish(to_score_map(pts, regions, shape))
        if cal.fusion is not None and len(results) == 1:  # spectral-spatial: peaks and spectral floor
            fu = cal.fusion_at(refs, p, peaks_p)
            g = np.asarray(results[0].scores, dtype=np.float32).reshape(-1)
            if "peaks" not in frozen:  # one area filter of the map per detection, not per p_min move
                same = glosh[0].glosh is refs[0] and cal.shapes == [shape]  # the reference's own map
                g0 = g if p == peaks_p else np.asarray(glosh[0].glosh.score(peaks_p).scores, np.float32)
                frozen["peaks"] = fu.peaks if same else fu.target_peaks(g0.reshape(-1), shape)
            peaks = frozen["peaks"]
            extras["calibration"]["fusion"] = fu.describe()
            fused = _fusion_kernel()
            if fused is None:  # pragma: no cover - no numba
                r = fu.combine(fu.mean_raw(g, fixed_flat, peaks), g)
                return finish(to_score(r.reshape(shape), med, spread, cal.z0, gain))
            if "scaled" not in frozen:  # the peaks' term of m, as ``Fusion.mean_raw`` adds it
                use = peaks is not None and fu.peak_weight > 0
                frozen["scaled"] = (np.float32(fu.peak_weight) * scale_fixed(peaks, fu.peak_range) if use
                                    else np.zeros(1, np.float32))
            (mm, ms), (om, os_) = fu.mean_bulk, fu.odds_bulk
            out = np.empty(shape, np.float32)
            pk = frozen["scaled"]
            fused(g, fixed_flat, pk, pk.size == g.size, np.float32(fu.glosh_weight),
                  np.float32(1.0 / fu.gate_level), np.float32(mm), np.float32(1.0 / ms), np.float32(om),
                  np.float32(1.0 / (os_ * fu.spectral_max)) if fu.spectral_max > 0 else np.float32(0.0),
                  fu.spectral_max > 0, np.float32(med), np.float32(1.0 / (spread * cal.z0)), gain,
                  out.reshape(-1))
            return finish(out)
        gw = [w for kind, w in zip(cal.kinds, cal.weights) if kind == "glosh"]
        g = results[0].scores if gw[0] == 1.0 else results[0].scores * np.float32(gw[0])
        for res, w in zip(results[1:], gw[1:]):
            g = g + (res.scores if w == 1.0 else res.scores * np.float32(w))
        k = 1.0 / (total * spread * cal.z0)
        out = np.empty(shape, np.float32)
        kernel(np.ascontiguousarray(g, dtype=np.float32).reshape(-1), fixed_flat, k, med * total * k,
               out.reshape(-1), n == 1, gain)
        return out

    det = Detection(np.zeros(shape, np.float32), scorer.detector, feature, params, extras,
                    [r.glosh for r in glosh], compose_maps)
    det.rescore(int(p_min))
    return det
