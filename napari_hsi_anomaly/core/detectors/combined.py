"""Combinations: several detectors fitted on the same reference, their calibrated scores averaged.

A combination is declared by its parts; its parameters are the union of theirs. See
``calibration.compose`` for how the parts' raw values become one score map, and ``calibration.Fusion``
for the default's peaks of GLOSH's map and its spectral floor.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, ClassVar

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.attribute import AttributeDetector
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer, check_cubes, prefixed
from napari_hsi_anomaly.core.detectors.glosh_cae import CaeGloshDetector, get_model
from napari_hsi_anomaly.core.detectors.glosh_spectral import GloshSpectralDetector
from napari_hsi_anomaly.core.detectors.registry import get_detector, register
from napari_hsi_anomaly.core.detectors.rx_local import RxLocalDetector
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.schema import PART_WEIGHT_PARAMS
from napari_hsi_anomaly.core.scoring.morphology import LADDER


def union_params(parts: Sequence[type[Detector]], drop: tuple[str, ...] = ()) -> tuple[Param, ...]:
    seen: dict[str, Param] = {}
    for p in parts:
        for q in p.params:
            if q.name not in drop:
                seen.setdefault(q.name, q)
    return tuple(seen.values())


WEIGHT_PARAMS = PART_WEIGHT_PARAMS  # part -> the parameter that weighs it (profiles record it: schema.py)


class CombinedScorer(Scorer):
    """The parts' scorers, fitted on the same reference cubes."""

    def __init__(self, name: str, parts: list[Scorer], params: dict) -> None:
        self.detector, self.params, self._parts = name, dict(params), parts
        self.bands, self.wavelengths = parts[0].bands, parts[0].wavelengths

    def parts(self) -> list[Scorer]:
        return list(self._parts)

    def part_weights(self) -> list[float]:
        """Each part's weight parameter (``WEIGHT_PARAMS``; 1 where the combination has none)."""
        return [float(self.params.get(WEIGHT_PARAMS.get(p.detector, ""), 1.0)) for p in self._parts]

    def fusion(self) -> dict | None:
        """``spectral-spatial``'s rule beyond the weighted mean (``calibration.Fusion``): the GLOSH peaks'
        weight and the spectral floor's divisor; None where both are 0 (or a profile saved before them)."""
        pw, c = (float(self.params.get(k) or 0.0) for k in ("peak_weight", "spectral_max"))
        return {"peak_weight": pw, "spectral_max": c} if pw > 0 or c > 0 else None

    def halo(self) -> int:
        """The GLOSH peaks filter objects of up to ``LADDER[-1]`` px: as many rows (0 without them)."""
        return LADDER[-1] if float(self.params.get("peak_weight") or 0.0) > 0 else 0

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:  # pragma: no cover - not a part
        raise NotImplementedError("a combination is scored through its parts")

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for i, p in enumerate(self._parts):
            a, m = p.state()
            arrays.update({f"part{i}.{k}": v for k, v in a.items()})
            metas.append(m)
        return arrays, {**self._meta(), "parts": metas}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> CombinedScorer:
        parts = []
        for i, m in enumerate(meta["parts"]):
            part_cls = get_detector(m["detector"])
            scorer_cls = part_cls.scorer_class  # type: ignore[attr-defined]
            parts.append(scorer_cls.from_state(prefixed(arrays, f"part{i}."), m, model=model))
        return cls(meta["detector"], parts, meta["params"])


class Combined(Detector):
    """Base of combinations: ``parts`` are detector classes fitted with their share of the params."""

    scorer_class = CombinedScorer
    parts: ClassVar[tuple[type[Detector], ...]] = ()

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, CombinedScorer]:
        cubes = check_cubes(cubes)
        if self.needs_model:
            model = yield from get_model(cubes, model, self.params["preset"], train_options)
        scorers = []
        for part in self.parts:
            weight = WEIGHT_PARAMS.get(part.name)
            if weight is not None and float(self.params.get(weight, 1.0)) == 0.0:
                continue  # a part weighed 0 adds nothing to the mean: neither fitted nor scored
            own = {p.name: self.params[p.name] for p in part.params if p.name in self.params}
            scorer = yield from part(**own)._iter_fit(cubes, model=model if part.needs_model else None)
            scorers.append(scorer)
        return CombinedScorer(self.name, scorers, self.params)


LOCAL_WEIGHT = Param("local_weight", float, 0.67, "weight of local RX in the mean (GLOSH spectra: 1)",
                     minimum=0.0, maximum=10.0)


@register
class SpectralRx(Combined):
    order = 1
    name = "spectral-rx"
    label = "GLOSH spectra + local RX"
    calibration_z0 = 1.25  # 8/9 dev scenes in [0.25, 4], Sentinel-2 hazy target kept (bench_scenes.py)
    summary = "weighted mean of glosh-spectral (1) and rx-local (local_weight); no CAE needed"
    parts = (GloshSpectralDetector, RxLocalDetector)
    # local_weight 0.67: picked by leave-one-scene-out (bench_scenes.py, spectral-rx columns)
    params = (*union_params(parts), LOCAL_WEIGHT)
    uses_p_min = True


ATTRIBUTE_WEIGHT = Param("attribute_weight", float, 1.8, "weight of the attribute filters in the mean "
                         "(GLOSH spectra: 1)", minimum=0.0, maximum=10.0)
PEAK_WEIGHT = Param("peak_weight", float, 1.6, "weight of the GLOSH peaks in the mean (bright objects of up "
                    "to 400 px in GLOSH's own map; GLOSH spectra: 1)", minimum=0.0, maximum=10.0)
SPECTRAL_MAX = Param("spectral_max", float, 2.0, "a pixel scores at least as GLOSH alone would, its distance "
                     "beyond the reference divided by this (0: the mean only)", minimum=0.0, maximum=100.0)
LOCAL_WEIGHT_SPATIAL = Param("local_weight", float, 0.0, LOCAL_WEIGHT.help, minimum=0.0, maximum=10.0)


@register
class SpectralSpatial(Combined):
    order = 0
    name = "spectral-spatial"
    label = "GLOSH spectra + area filters"
    calibration_z0 = 1.7  # 8/9 dev, 36/36 stress in [0.25, 4] (1.6-2.9); higher binds the floor (feedback)
    summary = ("weighted mean of glosh-spectral (1), the attribute filters (attribute_weight), the peaks of "
               "GLOSH's map (peak_weight) and, when local_weight > 0, rx-local; at least GLOSH's own "
               "outlyingness / spectral_max; no CAE needed")
    parts = (GloshSpectralDetector, RxLocalDetector, AttributeDetector)
    # weights: picked by leave-one-scene-out among those meeting the Sentinel-2 haze target (bench_scenes.py,
    # screen_fusion.py). The spatial parts (attribute filters on the spectra, peaks of GLOSH's map) rank
    # targets of 1 to 400 px; they see nothing in a large uniform anomaly (haze), which the spectral floor
    # (spectral_max) keeps; local RX (local_weight 0 by default) costs time for little more
    params = (*union_params(parts), LOCAL_WEIGHT_SPATIAL, ATTRIBUTE_WEIGHT, PEAK_WEIGHT, SPECTRAL_MAX)
    uses_p_min = True


@register
class Ensemble(Combined):
    order = 2
    name = "ensemble"
    label = "CAE GLOSH + spectra + local RX"
    calibration_z0 = 1.27  # pick_z0 with multi-scale local RX (bench_cae.py --report-detect): 8/9 dev
    summary = "mean of CAE glosh (per pixel), glosh-spectral and rx-local"
    parts = (CaeGloshDetector, GloshSpectralDetector, RxLocalDetector)
    params = union_params(parts, drop=("feature",))
    needs_model = True
    uses_p_min = True


@register
class GloshRx(Combined):
    order = 5
    name = "glosh-rx"
    label = "CAE GLOSH + local RX"
    calibration_z0 = 1.45  # pick_z0 with multi-scale local RX (bench_cae.py --report-detect): 8/9 dev
    summary = "mean of CAE glosh (per pixel) and rx-local"
    parts = (CaeGloshDetector, RxLocalDetector)
    params = union_params(parts, drop=("feature",))
    needs_model = True
    uses_p_min = True
