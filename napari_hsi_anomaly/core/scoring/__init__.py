"""Detection (thesis phase 3): GLOSH on CAE features, RX baselines, score maps and metrics."""

from napari_hsi_anomaly.core.scoring.detect import (
    DEFAULT_METHOD,
    FEATURES,
    METHODS,
    Detection,
    detect,
    iter_detect,
)
from napari_hsi_anomaly.core.scoring.glosh import GloshResult, GloshScorer, minmax_scale
from napari_hsi_anomaly.core.scoring.maps import rank01, scale01, threshold, to_score_map
from napari_hsi_anomaly.core.scoring.metrics import Metrics, auc_score, evaluate, roc_curve
from napari_hsi_anomaly.core.scoring.rx import background_stats, pca_reduce, rx_global, rx_local

__all__ = [
    "DEFAULT_METHOD",
    "FEATURES",
    "METHODS",
    "Detection",
    "GloshResult",
    "GloshScorer",
    "Metrics",
    "auc_score",
    "background_stats",
    "detect",
    "evaluate",
    "iter_detect",
    "minmax_scale",
    "pca_reduce",
    "rank01",
    "roc_curve",
    "rx_global",
    "rx_local",
    "scale01",
    "threshold",
    "to_score_map",
]
