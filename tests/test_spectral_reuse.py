"""The spectral parts' reuse of work within one fit: pooled statistics per cube object, and the
attribute filters' fit projection (both must give exactly what a fresh computation gives)."""

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import _spectral
from napari_hsi_anomaly.core.detectors.attribute import AttributeDetector
from napari_hsi_anomaly.core.progress import run


def _cube(seed: int) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.normal(100.0, 5.0, (6, 40, 50)).astype(np.float32)
    data[:, 10:13, 20:23] += 40.0
    return Cube(data)


def test_pooled_stats_kept_only_for_the_same_cube_and_data():
    a, b = _cube(0), _cube(1)
    first = _spectral.pooled_stats([a])
    again = _spectral.pooled_stats([a])
    for x, y in zip(first[:2], again[:2]):
        np.testing.assert_array_equal(x, y)
    again[0][:] = 0  # the caller's copy: the kept result is not changed through it
    np.testing.assert_array_equal(_spectral.pooled_stats([a])[0], first[0])
    other = _spectral.pooled_stats([b])
    assert not np.array_equal(other[0], first[0])
    a.data = a.data * 2  # new data on the same cube object: computed again
    np.testing.assert_allclose(_spectral.pooled_stats([a])[0], 2 * first[0], rtol=1e-6)
    np.testing.assert_array_equal(_spectral.pooled_stats([_cube(0)])[0], first[0])  # a new object


def test_attribute_fit_projection_used_once_and_equal():
    cube = _cube(2)
    scorer = run(AttributeDetector()._iter_fit([cube]))
    assert scorer._fit_coords is not None
    reused = run(scorer.iter_raw(cube)).fixed
    assert scorer._fit_coords is None  # dropped after its one use
    fresh = run(scorer.iter_raw(cube)).fixed
    np.testing.assert_array_equal(reused, fresh)
    other = run(AttributeDetector()._iter_fit([cube]))
    copy = Cube(cube.data.copy())
    np.testing.assert_array_equal(run(other.iter_raw(copy)).fixed, fresh)  # another cube: projected
    assert other._fit_coords is None
