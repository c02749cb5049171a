"""Detectors as first-class parts: one module per detector, one registry (see ``registry.py``).

``get_detector(name)(**params).fit(reference_cubes)`` -> ``Scorer``; ``scorer.score(target)`` ->
``Detection``. ``core.scoring.iter_detect`` is the one-cube convenience.
"""

import importlib.util

from napari_hsi_anomaly.core.detectors import (  # noqa: F401  (importing registers them)
    attribute,
    combined,
    glosh_cae,
    glosh_spectral,
    pyod_knn,
    recon,
    rx,
    rx_classic,
    rx_local,
)
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer
from napari_hsi_anomaly.core.detectors.calibration import auto_p_min
from napari_hsi_anomaly.core.detectors.detection import Detection
from napari_hsi_anomaly.core.detectors.registry import (
    DEFAULT_METHOD,
    REGISTRY,
    detector_names,
    get_detector,
    model_detector_names,
    register,
    scorer_from_state,
    unregister,
)

if importlib.util.find_spec("pyod") is not None:  # optional extra: listed only where it can run
    register(pyod_knn.KnnDetector)

__all__ = [
    "DEFAULT_METHOD",
    "REGISTRY",
    "Detection",
    "Detector",
    "Param",
    "Raw",
    "Scorer",
    "auto_p_min",
    "detector_names",
    "get_detector",
    "model_detector_names",
    "register",
    "scorer_from_state",
    "unregister",
]
