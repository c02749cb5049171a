"""Local (dual-window) RX: each pixel against its own neighbourhood in the target, at several scales.

One dual window sees a target as anomalous only while the target fits inside its inner (guard) window:
a larger target fills the ring and is scored as background. So by default the distance is taken at
``rx_scales`` window pairs, the given ``(rx_inner, rx_outer)`` and then ``LADDER`` (inner windows 15, 25
and 41 px: targets up to about 20 x 20 px), each scale's distance normalised by the reference's median
and spread (median to 95th percentile, the same robust spread as the calibration), and the pixel's
score is the largest over the scales. Scales whose inner window does not fit in the reference are left
out. ``rx_scales 1`` is the single dual window.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.calibration import bulk
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

RX_INNER = Param("rx_inner", int, 7, "local RX guard window (odd, pixels)", minimum=1, maximum=255)
RX_OUTER = Param("rx_outer", int, 25, "local RX outer window (odd, pixels)", minimum=3, maximum=511)
LOCAL_RIDGE = Param("local_ridge", float, 1e-3, "local RX: covariance shrinkage (ridge x mean variance "
                    "on the diagonal)", minimum=0.0, maximum=10.0)
RX_SCALES = Param("rx_scales", int, 4, "local RX: window scales (1 = the rx_inner/rx_outer pair only; more "
                  "adds inner windows of 15, 25, 41 px for larger targets)", minimum=1, maximum=4)
RX_PARAMS = (RX_INNER, RX_OUTER, LOCAL_RIDGE, RX_SCALES)
LADDER = ((15, 41), (25, 61), (41, 81))  # (inner, outer) after the given pair, larger targets in turn


def check_windows(params: dict) -> tuple[int, int]:
    inner, outer = int(params["rx_inner"]), int(params["rx_outer"])
    if inner % 2 == 0 or outer % 2 == 0 or inner >= outer:
        raise HsiAnomalyError(f"Local RX needs odd windows with inner < outer; got {inner}, {outer}.")
    return inner, outer


def window_scales(params: dict, rows: int, cols: int) -> list[tuple[int, int]]:
    """The ``(inner, outer)`` pairs of ``params`` for a reference of ``rows x cols`` (module doc)."""
    inner, outer = check_windows(params)
    extra = [p for p in LADDER if p[0] > inner and p[0] < min(rows, cols)]
    return [(inner, outer), *extra][: int(params.get("rx_scales", 1))]


class RxLocalScorer(Scorer):
    """The window scales and each scale's reference ``(median, spread)`` (local RX has no global
    background; the reference sets the normalisation and the calibration)."""

    def __init__(self, params: dict, bands: int, wavelengths=None,
                 scales: Sequence[tuple[int, int]] | None = None, norms: np.ndarray | None = None) -> None:
        self.detector, self.params = "rx-local", dict(params)
        self.bands, self.wavelengths = int(bands), wavelengths
        self.scales = [tuple(map(int, s)) for s in scales] if scales else [check_windows(params)]
        self.norms = None if norms is None else np.asarray(norms, np.float64).reshape(-1, 2)

    def halo(self) -> int:
        return max(o for _, o in self.scales) // 2

    def detection_params(self) -> dict:
        out: dict = {"rx_window": (int(self.params["rx_inner"]), int(self.params["rx_outer"]))}
        if len(self.scales) > 1:
            out["rx_scales"] = [list(s) for s in self.scales]
        return out

    def distances(self, cube: Cube) -> Generator[Progress, None, list[np.ndarray]]:
        """The local RX distance at each scale."""
        from napari_hsi_anomaly.core.scoring.rx import rx_local

        ridge = float(self.params.get("local_ridge", 1e-6))
        out = []
        for k, (inner, outer) in enumerate(self.scales):
            yield Progress(k, len(self.scales), f"local RX: window {inner}/{outer}")
            out.append(rx_local(cube, inner, outer, ridge=ridge))
        return out

    def combine(self, dists: list[np.ndarray]) -> np.ndarray:
        """One scale: its distance; several: the largest normalised distance (NaN where all are)."""
        if len(dists) == 1 or self.norms is None:
            return dists[0]
        acc = np.full(dists[0].shape, np.nan, np.float32)
        for d, (med, spread) in zip(dists, self.norms):
            z = (d - np.float32(med)) * np.float32(1.0 / spread)
            np.fmax(acc, z, out=acc)
        return acc

    def raw_of(self, dists: list[np.ndarray]) -> Raw:
        """The raw map (``combine``); extras: ``rx_distance``, the distance at ``(rx_inner, rx_outer)``,
        and with several scales ``rx_scale``, the index of the scale that gave each pixel its value."""
        raw = Raw(fixed=self.combine(dists), extras={"rx_distance": dists[0]})
        if len(dists) > 1 and self.norms is not None:
            z = np.stack([(d - m) / s for d, (m, s) in zip(dists, self.norms)])
            raw.extras["rx_scale"] = np.argmax(np.nan_to_num(z, nan=-np.inf), axis=0).astype(np.uint8)
        return raw

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        dists = yield from self.distances(cube)
        return self.raw_of(dists)

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {} if self.norms is None else {"norms": self.norms}
        return arrays, {**self._meta(), "scales": [list(s) for s in self.scales]}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> RxLocalScorer:
        return cls(meta["params"], meta["bands"], meta.get("wavelengths"), meta.get("scales"),
                   arrays.get("norms"))  # profiles saved before scales: the single pair


@register
class RxLocalDetector(Detector):
    scorer_class = RxLocalScorer
    order = 7
    name = "rx-local"
    label = "RX (local, dual window)"
    calibration_z0 = 2.35  # fitted on the development scenes (bench_scenes.py): 9 of 9 in [0.25, 4]
    summary = "dual-window RX at several window scales: each pixel against the ring around it"
    params = RX_PARAMS

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, RxLocalScorer]:
        cubes = check_cubes(cubes)
        scales = window_scales(self.params, cubes[0].rows, cubes[0].cols)
        scorer = RxLocalScorer(self.params, cubes[0].bands, cubes[0].wavelengths, scales)
        if len(scales) == 1:
            yield Progress(0, 1, "rx-local: ready")
            return scorer
        per_cube = []
        for cube in cubes:  # the reference's distances set each scale's normalisation
            dists = yield from scorer.distances(cube)
            per_cube.append(dists)
        scorer.norms = np.array([bulk(np.concatenate([d[k].ravel() for d in per_cube]))
                                 for k in range(len(scales))])
        for cube, dists in zip(cubes, per_cube):  # kept: the calibration reads the same maps
            scorer.remember_raw(cube, scorer.raw_of(dists))
        return scorer
