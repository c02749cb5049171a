"""Compare detectors on the analyst's own labels: which detector fits this scene?

``labels``: ``(rows, cols)``; 1 (any value but 2) = marked as anomaly, 2 = marked as normal, 0 = not
marked. With pixels marked normal, only marked pixels are evaluated (anomaly vs normal); without, every
valid pixel that is not marked as anomaly counts as normal (as a ground truth).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run

NORMAL_LABEL = 2


@dataclass
class Comparison:
    """One detector on the labels: AUC, precision and recall at ``t_anom``, flagged pixels, seconds."""

    detector: str
    auc: float
    precision: float
    recall: float
    flagged: int
    seconds: float
    error: str = ""


def label_truth(labels: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(evaluated mask, truth)`` from the labels (see the module docstring)."""
    lab = np.asarray(labels)
    anomaly = (lab > 0) & (lab != NORMAL_LABEL)
    normal = lab == NORMAL_LABEL
    use = (anomaly | normal) if normal.any() else np.ones_like(anomaly)
    use = use & valid
    if not (anomaly & use).any() or (anomaly & use).all() or not (use & ~anomaly).any():
        raise HsiAnomalyError("Mark some pixels as anomalies (and leave or mark some as normal) to compare "
                              "detectors on your labels.")
    return use, anomaly


def iter_compare_detectors(cube: Cube | np.ndarray, labels: np.ndarray, t_anom: float = 0.7,
                           names: list[str] | None = None) -> Generator[Progress, None, list[Comparison]]:
    """Fit and score every detector that needs no trained model (or ``names``) on ``cube``; evaluate
    each against ``labels``. A detector that fails is a row with its error."""
    from napari_hsi_anomaly.core.detectors import REGISTRY, detector_names, get_detector
    from napari_hsi_anomaly.core.scoring.metrics import evaluate

    cube = as_cube(cube, "Compare")
    if np.shape(labels) != (cube.rows, cube.cols):
        raise ShapeError(f"Labels {np.shape(labels)} do not match the {cube.rows}x{cube.cols} scene.")
    use, truth = label_truth(labels, cube.valid_mask())
    names = names or [n for n in detector_names() if not REGISTRY[n].needs_model]
    rows = []
    for i, name in enumerate(names):
        yield Progress(i, len(names), f"comparing: {name}")
        t0 = time.perf_counter()
        try:
            scorer = yield from get_detector(name)().iter_fit([cube])
            det = yield from scorer.iter_score(cube)
        except HsiAnomalyError as exc:
            rows.append(Comparison(name, float("nan"), float("nan"), float("nan"), 0,
                                   time.perf_counter() - t0, str(exc)))
            continue
        secs = time.perf_counter() - t0
        s = np.asarray(det.score_map)
        m = evaluate(s[use], truth[use], t_anom)
        rows.append(Comparison(name, m.auc, m.precision, m.tpr, int((s >= np.float32(t_anom)).sum()), secs))
    yield Progress(len(names), len(names), "compared")
    return rows


def compare_detectors(cube: Cube | np.ndarray, labels: np.ndarray, t_anom: float = 0.7,
                      names: list[str] | None = None) -> list[Comparison]:
    """``iter_compare_detectors`` run to the end: one ``Comparison`` per detector."""
    return run(iter_compare_detectors(cube, labels, t_anom, names))
