"""From the parts' raw outlyingness to one score map in [0, 1]: ``compose``."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Raw
from napari_hsi_anomaly.core.detectors.detection import Detection

PIXEL_P_MIN_FRACTION = 0.01  # per pixel: a cluster holds at least 1 % of the scene (and >= 100 pixels)
THESIS_P_MIN_FRACTION = 100 / 2925  # per window/section: the thesis's p_min = 100 of 2925 windows
RX_SCALE_PERCENTILES = (0.0, 99.9)


def auto_p_min(n_points: int, *, per_pixel: bool = True) -> int:
    """Default ``p_min`` for ``n_points`` feature rows.

    Per pixel: ``max(100, ceil(1 % of the pixels))``. A group of similar pixels at least ``p_min``
    strong forms a cluster of its own and stops being an outlier, so ``p_min`` must exceed the size of
    what should be found. Per window/section: the thesis's ratio, 100 of 2925 points (at least 5).
    """
    if per_pixel:
        return max(100, int(np.ceil(PIXEL_P_MIN_FRACTION * n_points)))
    return max(5, int(round(THESIS_P_MIN_FRACTION * n_points)))


def _finish(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.where(valid & np.isfinite(score), score, 0.0).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)


def compose(scorer: Any, cube: Cube, valid: np.ndarray, raws: list[Raw]) -> Detection:
    """The ``Detection`` of ``cube`` from its parts' ``raws`` (GLOSH parts stay live for ``rescore``)."""
    from napari_hsi_anomaly.core.scoring.maps import scale01, to_score_map

    shape = (cube.rows, cube.cols)
    params: dict = {"method": scorer.detector}
    extras: dict = {"valid": valid}
    for r in raws:
        extras.update(r.extras)
    if "rx_inner" in scorer.params:
        params["rx_window"] = (int(scorer.params["rx_inner"]), int(scorer.params["rx_outer"]))
    model = extras.get("model")
    if model is not None:
        params["model"] = model.describe() if hasattr(model, "describe") else str(model)
    glosh = [r for r in raws if r.glosh is not None]
    fixed = [r.fixed for r in raws if r.fixed is not None]
    if not glosh:
        if len(fixed) == 1:
            m = scale01(fixed[0])
        else:
            m = np.mean([scale01(np.where(valid, f, np.nan), percentiles=RX_SCALE_PERCENTILES)
                         for f in fixed], axis=0)
        return Detection(_finish(m, valid), scorer.detector, "pixel", params, extras)

    feature = "+".join(r.feature for r in glosh)
    extras.setdefault("regions", glosh[0].regions if len(glosh) == 1 else None)
    p_min = scorer.params.get("p_min")
    if p_min is None:
        p_min = auto_p_min(glosh[0].n_points, per_pixel=glosh[0].per_pixel)
        params["p_min_auto"] = True
    params.update(feature=feature, p_min=int(p_min), min_samples=int(scorer.params["min_samples"]),
                  max_fit=int(scorer.params["max_fit"]))
    scaled = [scale01(np.where(valid, f, np.nan), percentiles=RX_SCALE_PERCENTILES) for f in fixed]
    regions = [r.regions for r in glosh]

    def compose_maps(results: list[Any]) -> np.ndarray:
        maps = [to_score_map(res.scores, reg, shape) for res, reg in zip(results, regions)]
        if len(maps) == 1 and not scaled:
            return _finish(maps[0], valid)
        return _finish(np.mean(maps + scaled, axis=0), valid)

    det = Detection(np.zeros(shape, np.float32), scorer.detector, feature, params, extras,
                    [r.glosh for r in glosh], compose_maps)
    det.rescore(int(p_min))
    return det
