"""The one list of detectors: the CLI's ``--method`` choices, the Detect dock, benchmarks, README table.

Adding a detector is one module with a ``Detector`` subclass decorated with ``@register`` and one import
line in ``core/detectors/__init__.py``. Tests may ``register`` (and ``unregister``) their own.
"""

from __future__ import annotations

from napari_hsi_anomaly.core.detectors.base import Detector
from napari_hsi_anomaly.core.errors import HsiAnomalyError

REGISTRY: dict[str, type[Detector]] = {}
DEFAULT_METHOD = "spectral-spatial"  # chosen by benchmarks/bench_scenes.py (dev, stress, LOSO, Sentinel-2)
DISPLAY_ORDER = ("spectral-spatial", "spectral-rx", "ensemble", "glosh", "glosh-spectral", "glosh-rx", "rx",
                 "rx-local", "attribute", "recon", "ssim-recon", "iforest-cae")


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: add ``cls`` under ``cls.name`` (display order = registration order)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'name' to be registered.")
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


def detector_names() -> list[str]:
    """Registered detector names: the default first, the built-in ones, then others as registered."""
    rank = {n: i for i, n in enumerate(DISPLAY_ORDER)}
    names = sorted(REGISTRY, key=lambda n: rank.get(n, len(rank)))  # stable: others keep their order
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
    return cls.scorer_class.from_state(arrays, meta, model=model)  # type: ignore[attr-defined]
