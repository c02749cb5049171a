"""The one list of detectors: the CLI's ``--method`` choices, the Detect dock, benchmarks, README table.

Adding a detector is one module in ``core/detectors/`` with a ``Detector`` subclass decorated with
``@register`` (``core/detectors/__init__.py`` imports every module there). Its ``order`` places it in
the lists (default: after the built-in ones), ``requires`` names optional packages it needs (it is
listed only where they are installed). Tests may ``register`` (and ``unregister``) their own.
"""

from __future__ import annotations

import importlib.util

from napari_hsi_anomaly.core.detectors.base import Detector
from napari_hsi_anomaly.core.errors import HsiAnomalyError

REGISTRY: dict[str, type[Detector]] = {}
DEFAULT_METHOD = "spectral-spatial"  # chosen by benchmarks/bench_scenes.py (dev, stress, LOSO, Sentinel-2)


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: add ``cls`` under ``cls.name``; left out where a package in ``cls.requires``
    is not installed (the class is returned either way)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'name' to be registered.")
    if all(importlib.util.find_spec(m) is not None for m in getattr(cls, "requires", ())):
        REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a detector (tests)."""
    REGISTRY.pop(name, None)


def get_detector(name: str) -> type[Detector]:
    """The detector class registered as ``name``; ``HsiAnomalyError`` listing the names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise HsiAnomalyError(f"Unknown method {name!r}; choose one of {', '.join(detector_names())}.") \
            from None


def display_order() -> list[str]:
    """Registered names by their class's ``order`` (ties and the default, infinity: as registered)."""
    return sorted(REGISTRY, key=lambda n: float(getattr(REGISTRY[n], "order", float("inf"))))


def detector_names() -> list[str]:
    """Registered detector names: the default first, then by ``order`` (others as registered)."""
    names = display_order()
    if DEFAULT_METHOD in names:
        names.remove(DEFAULT_METHOD)
        names.insert(0, DEFAULT_METHOD)
    return names


def model_detector_names() -> list[str]:
    """Detectors that use a CAE (they train one on the reference cubes when none is given)."""
    return [n for n in detector_names() if REGISTRY[n].needs_model]


def scorer_from_state(arrays: dict, meta: dict, *, model: object = None):
    """The ``Scorer`` a ``Scorer.state()`` describes (``meta["detector"]`` picks the class)."""
    cls = get_detector(str(meta.get("detector")))
    scorer = cls.scorer_class.from_state(arrays, meta, model=model)  # type: ignore[attr-defined]
    if scorer.detector_class is None:
        scorer.detector_class = cls
    return scorer
