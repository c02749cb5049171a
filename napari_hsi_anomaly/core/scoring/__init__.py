"""Detection (thesis phase 3): GLOSH on CAE features, RX baselines, score maps and metrics.

Names are imported lazily (on first use), so ``import napari_hsi_anomaly.core.scoring.maps`` or the
detector registry do not pull in hdbscan, scikit-learn or numba.
"""

from __future__ import annotations

import importlib
from typing import Any

from napari_hsi_anomaly.core.scoring.detect import (  # light: detectors import heavy libraries lazily
    DEFAULT_METHOD,
    FEATURES,
    METHODS,
    Detection,
    detect,
    iter_detect,
)

_WHERE = {
    "GloshResult": "glosh", "GloshScorer": "glosh", "minmax_scale": "glosh",
    "rank01": "maps", "scale01": "maps", "threshold": "maps", "to_score_map": "maps",
    "Metrics": "metrics", "auc_score": "metrics", "evaluate": "metrics", "roc_curve": "metrics",
    "background_stats": "rx", "pca_reduce": "rx", "rx_global": "rx", "rx_local": "rx",
}

__all__ = [  # noqa: PLE0604
    "DEFAULT_METHOD", "FEATURES", "METHODS", "Detection", "detect", "iter_detect", *sorted(_WHERE),
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    if name in ("glosh", "rx", "maps", "metrics", "validation"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
