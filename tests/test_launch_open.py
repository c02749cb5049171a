"""``hsi-anomaly view FILE`` opens a file the way napari's reader does (ground truth, stacks)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_view_opens_the_ground_truth_and_stacks(make_napari_viewer, tmp_path):
    from napari_hsi_anomaly._launch import _open

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    gt = np.zeros((20, 20), np.uint8)
    gt[5:8, 5:8] = 1
    np.savez(tmp_path / "scene.npz", cube=rng.random((20, 20, 6)).astype(np.float32), gt=gt)
    _open(viewer, str(tmp_path / "scene.npz"))
    assert "ground truth" in viewer.layers
    np.testing.assert_array_equal(np.asarray(viewer.layers["ground truth"].data), gt)
    np.save(tmp_path / "dates.npy", rng.random((3, 20, 20, 6)).astype(np.float32))  # dates x r x c x b
    _open(viewer, str(tmp_path / "dates.npy"))
    assert viewer.layers["dates"].data.ndim == 4  # one layer with a date and a band slider
