"""An AUC floor for every registered detector on a labelled real scene, as PyOD's model tests have.

The scene: a 64x64 crop of ABU Airport-1 (AVIRIS, ``../shared/data/hsi-ad``; rows 0-63, cols 32-95, 101
anomaly pixels) with every 4th band (52 of 205), the scene its own normal population. A hard crop
(global RX 0.80) so that the floors tell the detectors apart. The CAE detectors share one tiny model
(fast preset, 1 epoch of 4 Adam steps on 16-px crops, seed 0, one thread): the floor checks the detector
on top of the network, not the network's training.

``MEASURED`` holds the AUC measured at the commit that added the floor; the floor is that minus
``MARGIN`` (deterministic detectors) or ``CAE_MARGIN`` (a trained network: torch's arithmetic may differ
between builds). A detector registered without an entry here fails: every detector gets a floor.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import REGISTRY, detector_names, get_detector

MARGIN, CAE_MARGIN = 0.03, 0.05
MEASURED = {
    "spectral-spatial": 0.9088,
    "spectral-rx": 0.9006,
    "ensemble": 0.9051,
    "glosh": 0.8737,
    "glosh-spectral": 0.8814,
    "glosh-rx": 0.9065,
    "rx": 0.7986,
    "rx-classic": 0.8113,
    "rx-local": 0.9141,
    "attribute": 0.8801,
    "recon": 0.855,
    "ssim-recon": 0.8603,
    "iforest-cae": 0.7377,
    "knn": 0.8447,  # registered only where PyOD is installed (an optional extra)
}


@pytest.fixture(scope="module")
def scene(shared_data):
    with np.load(shared_data / "hsi-ad" / "abu-airport-1.npz", allow_pickle=False) as z:
        cube = np.moveaxis(z["cube"], -1, 0)[::4, 0:64, 32:96].astype(np.float32)
        gt = z["gt"][0:64, 32:96].astype(bool)
    assert gt.sum() == 101
    return Cube(cube), gt


@pytest.fixture(scope="module")
def model(scene):
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=4, batch_size=2,
                        val_fraction=0.0, threads=1, seed=0)
    return train(scene[0], "fast", opts)


def test_every_registered_detector_has_a_floor():
    assert set(detector_names()) <= set(MEASURED), set(detector_names()) - set(MEASURED)


@pytest.mark.parametrize("name", detector_names())
def test_auc_floor(name, scene, request):
    cube, gt = scene
    needs_model = REGISTRY[name].needs_model
    kwargs = {"model": request.getfixturevalue("model")} if needs_model else {}
    det = get_detector(name)().fit([cube], **kwargs).score(cube)
    auc = roc_auc_score(gt.ravel(), np.nan_to_num(det.score_map).ravel())
    floor = MEASURED[name] - (CAE_MARGIN if needs_model else MARGIN)
    assert auc >= floor, f"{name}: AUC {auc:.4f} below its floor {floor:.4f} (measured {MEASURED[name]})"
