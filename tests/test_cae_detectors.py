"""The sources' CAE methods as detectors: ``iforest-cae`` (CAE pixel features + scikit-learn's
IsolationForest) and ``ssim-recon`` (per-pixel SSIM of the reconstruction): a planted target found,
profiles round-trip without pickle, the SSIM formula itself."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (6, 40, 40)).astype(np.float32)
    data += np.linspace(0, 0.2, 40, dtype=np.float32)[None, None, :]
    gt = np.zeros((40, 40), bool)
    for r, c, s in ((5, 9, 2), (25, 25, 4)):
        data[:, r:r + s, c:c + s] += 0.8 * rng.uniform(0.7, 1.0, (6, 1, 1)).astype(np.float32)
        gt[r:r + s, c:c + s] = True
    return data, gt


@pytest.fixture(scope="module")
def model():
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=4, batch_size=2,
                        val_fraction=0.0, threads=1)
    return train(Cube(_scene(1)[0]), "fast", opts)


@pytest.mark.parametrize(("name", "floor"), [("iforest-cae", 0.95), ("ssim-recon", 0.9)])
def test_finds_planted_targets_and_round_trips(name, floor, model):
    data, gt = _scene()
    scorer = get_detector(name)().fit([Cube(data)], model=model)
    det = scorer.score(Cube(data))
    assert roc_auc_score(gt.ravel(), det.score_map.ravel()) > floor
    arrays, meta = scorer.state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    again = scorer_from_state(arrays, meta, model=model).score(Cube(data))
    np.testing.assert_allclose(again.score_map, det.score_map, atol=1e-5)


def test_ssim_is_one_for_identical_images_and_drops_where_structure_is_lost():
    from napari_hsi_anomaly.core.detectors.ssim_recon import ssim_dissimilarity

    rng = np.random.default_rng(0)
    x = rng.random((2, 20, 20)).astype(np.float32)
    assert np.abs(ssim_dissimilarity(x, x, 5)).max() < 1e-5
    y = x.copy()
    y[:, 8:12, 8:12] = x[:, 8:12, 8:12].mean()  # the reconstruction loses a patch's texture
    d = ssim_dissimilarity(x, y, 5)
    assert d[:, 10, 10].min() > 0.1 and d[:, 1, 1].max() < 1e-5
