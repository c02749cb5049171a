"""Metrics agree with scikit-learn; NaN scores and single-class ground truth."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.scoring import auc_score, evaluate, roc_curve


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    gt = rng.random((30, 40)) < 0.2
    scores = np.round(rng.random((30, 40)) * 0.6 + 0.4 * gt, 2)  # ties included
    fpr, tpr, thr = roc_curve(scores, gt)
    f2, t2, th2 = sk_roc_curve(gt.ravel(), scores.ravel(), drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])
    assert auc_score(scores, gt) == pytest.approx(roc_auc_score(gt.ravel(), scores.ravel()))
    m = evaluate(scores, gt, t_anom=0.6)
    pred = scores.ravel() >= 0.6
    assert m.tpr == pytest.approx(recall_score(gt.ravel(), pred))
    assert m.precision == pytest.approx(precision_score(gt.ravel(), pred))
    assert m.f_score == pytest.approx(f1_score(gt.ravel(), pred))
    assert m.fnr == pytest.approx(1 - m.tpr)
    assert m.tp + m.fp + m.fn + m.tn == gt.size


def test_nan_scores_are_ignored():
    scores = np.array([0.1, 0.9, np.nan, 0.8, 0.2])
    gt = np.array([0, 1, 1, 1, 0])
    m = evaluate(scores, gt, 0.5)
    assert m.n_ignored == 1 and m.auc == 1.0 and m.tp == 2 and "ignored" in m.note


def test_single_class_gt():
    with pytest.raises(HsiAnomalyError, match="no anomaly"):
        roc_curve(np.arange(5.0), np.zeros(5))
    m = evaluate(np.arange(5.0) / 4, np.zeros(5), 0.7)
    assert np.isnan(m.auc) and "no anomaly" in m.note and m.fp == 2
