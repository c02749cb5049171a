"""Detectors as first-class parts: one module per detector, one registry (see ``registry.py``).

``get_detector(name)(**params).fit(reference_cubes)`` -> ``Scorer``; ``scorer.score(target)`` ->
``Detection``. ``core.scoring.iter_detect`` is the one-cube convenience. Every module in this package
(except ``_private`` ones) is imported here, so a module defining a ``@register``-ed detector is all a
new detector needs.
"""

import importlib
import pkgutil

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

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):  # importing registers them
    if not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

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
