"""Real labelled scenes (../shared/data/hsi-ad): published global-RX AUCs and the default detector."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.scoring import DEFAULT_METHOD, detect, rx_global

README_RX = {
    "abu-airport-1": 0.8221, "abu-airport-3": 0.9288, "abu-beach-1": 0.9807, "abu-beach-2": 0.9106,
    "abu-urban-1": 0.9907, "abu-urban-3": 0.9513, "abu-urban-5": 0.9692, "san-diego": 0.8885,
    "san-diego-plane": 0.9403,
}


def _load(shared_data, name):
    z = np.load(shared_data / "hsi-ad" / f"{name}.npz", allow_pickle=False)
    return np.moveaxis(z["cube"], -1, 0), z["gt"]


@pytest.mark.parametrize("name", sorted(README_RX))
def test_global_rx_reproduces_readme_auc(shared_data, name):
    cube, gt = _load(shared_data, name)
    assert round(roc_auc_score(gt.ravel(), rx_global(cube).ravel()), 4) == README_RX[name]


@pytest.mark.parametrize("name", ["abu-airport-1", "san-diego"])
def test_default_detector_beats_global_rx(shared_data, name):
    cube, gt = _load(shared_data, name)
    det = detect(cube, DEFAULT_METHOD)
    auc = roc_auc_score(gt.ravel(), det.score_map.ravel())
    assert auc > README_RX[name] + 0.05 and auc > 0.95
