"""The one-cube convenience: ``iter_detect(cube, method)`` fits ``method`` on ``[cube]`` and scores ``cube``
(``core.pipeline``: a scene too large for one task is fitted on strips and scored in row blocks).

Detectors live in ``core.detectors`` (one module each, one registry: ``detector_names()``); a
``Detector`` fitted on reference cubes gives a ``Scorer`` that scores any target with the same bands.
``Detection`` (``core.detectors.detection``) is the result: ``score_map`` float32 in [0, 1], no-data
pixels 0, ``.rescore(p_min)`` for GLOSH-based methods, ``.mask(t_anom)``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.detectors import (
    DEFAULT_METHOD,
    Detection,
    auto_p_min,
    detector_names,
    get_detector,
    model_detector_names,
)
from napari_hsi_anomaly.core.detectors.calibration import (
    PIXEL_P_MIN_FRACTION,
    RX_SCALE_PERCENTILES,
    THESIS_P_MIN_FRACTION,
)
from napari_hsi_anomaly.core.detectors.glosh_cae import FEATURES, default_train_options
from napari_hsi_anomaly.core.detectors.glosh_spectral import COMPONENTS
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress, run

# the built-in names at import time (legacy); read detector_names() at call time for registered ones
METHODS = tuple(detector_names())
MODEL_METHODS = tuple(model_detector_names())
SPECTRAL_COMPONENTS = int(COMPONENTS.default)
DEFAULT_RX_WINDOW = (7, 25)

__all__ = [
    "DEFAULT_METHOD", "DEFAULT_RX_WINDOW", "FEATURES", "METHODS", "MODEL_METHODS", "PIXEL_P_MIN_FRACTION",
    "RX_SCALE_PERCENTILES", "SPECTRAL_COMPONENTS", "THESIS_P_MIN_FRACTION", "Detection", "auto_p_min",
    "default_train_options", "detect", "iter_detect",
]


def iter_detect(
    cube: Cube | np.ndarray,
    method: str = DEFAULT_METHOD,
    *,
    model: Any = None,
    feature: str = "pixel",
    p_min: int | None = None,
    min_samples: int = 10,
    train_options: Any = None,
    preset: str = "fast",
    rx_window: tuple[int, int] = DEFAULT_RX_WINDOW,
    max_fit: int | None = None,
    seed: int | None = None,
    **params: Any,
) -> Generator[Progress, None, Detection]:
    """Fit ``method`` on ``[cube]`` and score ``cube`` (a ``Cube`` or ``(bands, rows, cols)`` array).

    The keyword arguments are passed to the detector where it declares them (others are ignored);
    ``rx_window=(inner, outer)`` sets ``rx_inner``/``rx_outer``; extra ``params`` must be declared.
    ``max_fit``/``seed`` None: the detector's own defaults (GLOSH fits 20,000 points, KNN 3,000).
    """
    cls = get_detector(method)
    if feature not in FEATURES:
        raise HsiAnomalyError(f"Unknown feature {feature!r}; choose one of {', '.join(FEATURES)}.")
    cube = as_cube(cube, "Detection")
    if not cube.valid_mask().any():
        raise HsiAnomalyError("The cube has no valid pixel (every pixel has NaN or no-data in some band).")
    from napari_hsi_anomaly.core.pipeline import Job, detector_kwargs, iter_score

    offered = {"feature": feature, "p_min": p_min, "min_samples": min_samples, "preset": preset,
               "rx_inner": rx_window[0], "rx_outer": rx_window[1], "max_fit": max_fit, "seed": seed}
    kwargs = {**detector_kwargs(cls.name, offered, strict=False), **params}
    cls(**kwargs)  # unknown or bad parameters: one line before any work
    outcome = yield from iter_score(Job(cls.name, kwargs, model=model, train_options=train_options), cube)
    outcome.detection.extras.setdefault("scorer", outcome.scorer)  # the normal model (core.feedback)
    return outcome.detection


def detect(cube: Cube | np.ndarray, method: str = DEFAULT_METHOD, **kwargs: Any) -> Detection:
    """``iter_detect`` run to the end."""
    return run(iter_detect(cube, method, **kwargs))
