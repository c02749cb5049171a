"""Mark as normal: a planted group marked normal stops being flagged, other planted targets stay."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.feedback import FeedbackStack, Mark, mark_normal, marks_from_json, marks_to_json
from napari_hsi_anomaly.core.scene import make_scene


def planted_scene() -> tuple[Cube, np.ndarray, np.ndarray]:
    """A 96x96 scene with group A (one 6x6 patch, bright in band 2) and group B (two 5x5 patches,
    bright in band 10): spectrally distinct groups."""
    cube = make_scene(96, 96, seed=3, anomalies=False).cube
    data = np.array(cube.as_float32(), dtype=np.float32)
    rng = np.random.default_rng(0)
    a = np.zeros(data.shape[1:], bool)
    b = np.zeros(data.shape[1:], bool)
    a[10:16, 10:16] = True
    b[60:65, 60:65] = True
    b[20:25, 70:75] = True
    spread = data.reshape(data.shape[0], -1).std(axis=1)
    for mask, band in ((a, 2), (b, 10)):
        bump = np.zeros(data.shape[0], np.float32)
        bump[band] = 6 * spread[band]
        bump[band - 1] = 3 * spread[band - 1]
        n = int(mask.sum())
        data[:, mask] += bump[:, None] * (1 + 0.05 * rng.standard_normal(n))[None, :]
    out = Cube(data, wavelengths=cube.wavelengths, band_names=cube.band_names, units=cube.units)
    return out, a, b


@pytest.fixture(scope="module")
def scene():
    return planted_scene()


@pytest.mark.parametrize("method", ["rx", "glosh-spectral"])
def test_marked_group_drops_below_t_anom_others_stay(scene, method):
    cube, a, b = scene
    scorer = get_detector(method)().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    assert det.mask(0.7)[a].mean() > 0.9 and det.mask(0.7)[b].mean() > 0.9  # both flagged first
    new = mark_normal(det, cube, a, scene="planted")
    assert new is not det
    assert new.mask(0.7)[a].mean() < 0.1, np.percentile(new.score_map[a], [50, 90])
    assert new.mask(0.7)[b].mean() > 0.9, np.percentile(new.score_map[b], [10, 50])
    assert det.mask(0.7)[a].mean() > 0.9  # undo: the old detection is untouched
    assert new.extras["calibration"]["z0"] == det.extras["calibration"]["z0"]  # the detector's own z0
    marks = new.extras["marked_normal"]
    assert len(marks) == 1 and marks[0].scene == "planted" and len(marks[0].pixels) == a.sum()


def test_default_detector_marked_group_falls_others_keep_their_score(scene):
    """spectral-spatial: the GLOSH part learns the group, the spatial parts are unchanged."""
    cube, a, b = scene
    scorer = get_detector("spectral-spatial")().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    new = mark_normal(det, cube, a)
    assert np.median(det.score_map[a]) > 0.65 and np.percentile(new.score_map[a], 90) < 0.5
    assert abs(np.median(new.score_map[b]) - np.median(det.score_map[b])) < 0.03
    assert new.extras["calibration"]["z0"] == det.extras["calibration"]["z0"] != 1.5  # not the default
    assert new.extras["scorer"].detector_class is scorer.detector_class
    assert det.mask(0.7)[b].mean() > 0.9 and new.mask(0.7)[b].mean() > 0.9  # the other group stays flagged
    again = mark_normal(new, cube, b)  # a second mark refits the refitted tree
    assert again.mask(0.7)[b].mean() < 0.1 and again.mask(0.7)[a].mean() < 0.1
    assert new.extras["scorer"].parts()[1] is scorer.parts()[1]  # local RX kept as it was


def test_mark_normal_scorer_and_profile_state_roundtrip(scene):
    from napari_hsi_anomaly.core.detectors import scorer_from_state

    cube, a, b = scene
    scorer = get_detector("glosh-spectral")().fit(cube)
    new = mark_normal(scorer, cube, np.argwhere(a))  # (n, 2) pixels work as well as a mask
    arrays, meta = new.state()
    again = scorer_from_state(arrays, meta)
    s1, s2 = new.score(cube).score_map, again.score(cube).score_map
    assert (s2[a] < 0.7).mean() > 0.9 and (s2[b] >= 0.7).mean() > 0.9
    assert np.corrcoef(s1.ravel(), s2.ravel())[0, 1] > 0.95  # a target scored by prediction


def test_marks_json_and_stack():
    m = Mark("normal", "scene 1", np.array([[1, 2], [3, 4]]))
    back = marks_from_json(marks_to_json([m]))
    assert back[0].scene == "scene 1" and back[0].pixels.tolist() == [[1, 2], [3, 4]]
    st = FeedbackStack()
    st.reset("d0")
    st.push("d1")
    assert st.current == "d1" and st.can_undo
    assert st.undo() == "d0" and not st.can_undo and st.undo() == "d0"


def test_mark_normal_errors(scene):
    cube, a, _ = scene
    local = get_detector("rx-local")().fit(cube)
    with pytest.raises(HsiAnomalyError, match="spatial"):
        mark_normal(local, cube, a)
    rx = get_detector("rx")().fit(cube)
    with pytest.raises(HsiAnomalyError, match="No pixel"):
        mark_normal(rx, cube, np.zeros_like(a))
    det = rx.score(cube)
    det.extras.pop("scorer", None)
    with pytest.raises(HsiAnomalyError, match="normal model"):
        mark_normal(det, cube, a)


def test_extended_glosh_matches_a_full_neighbour_search():
    """The refit keeps each far row's neighbour: the result equals recomputing every row's."""
    from napari_hsi_anomaly.core.feedback import extended_glosh
    from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

    rng = np.random.default_rng(0)
    ref = np.vstack([rng.normal(0, 1, (3000, 3)), rng.normal(6, 0.3, (40, 3))])
    old = GloshScorer(ref, min_samples=10, max_fit=1000, seed=0)
    extra = rng.normal(6, 0.3, (300, 3))
    new = extended_glosh(old, ref, extra, seed=1)
    arrays, meta = new.state(rows=True)
    fitted = meta["n_drawn"] - 1000  # the copies fitted in the old share; the others count as weight
    assert 50 < fitted < 200 and meta["n_points"] == 3040 + fitted and meta["n_finite"] == 3340
    x = np.vstack([ref, extra])[arrays["rest"]]  # neighbours() scales them
    nb, lam, exact, same = new.neighbours(x, None)
    np.testing.assert_allclose(arrays["rest_lam"], lam)
    assert (arrays["rest_same"] == same).all() and (arrays["rest_exact"].astype(bool) == exact).all()
    p = 200
    before, after = old.score(p).scores, new.score(p).scores
    assert after[3000:3040].mean() < before[3000:3040].mean() - 0.2  # the marked kind is normal now
    far = np.linalg.norm(ref[:3000], axis=1) < 1.5
    np.testing.assert_allclose(after[:3000][far], before[:3000][far], atol=0.05)


def test_refit_tree_is_the_one_a_full_fit_builds():
    """The refit skips hdbscan's labelling, not its tree: the same points, tree and core distances."""
    from napari_hsi_anomaly.core.feedback import _fit_added
    from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

    rng = np.random.default_rng(1)
    old = GloshScorer(rng.normal(0, 1, (1500, 4)), min_samples=10, scale=False)
    old_fit = old.state(rows=False)[0]["fit_x"]
    new = np.vstack([rng.normal(4, 0.2, (120, 4)), old_fit[:3], old_fit[:1]])  # duplicates too
    fo, fo_fit = _fit_added(old_fit, None, new, 10)  # without the old tree: hdbscan's own step
    full = GloshScorer(np.vstack([old_fit, new]), min_samples=10, scale=False, max_fit=10**6)
    fa, ref = fo.state(rows=False)[0], full.state(rows=True)[0]
    assert fo.n_fit == full.n_fit == 1500 + 120
    np.testing.assert_array_equal(fa["fit_x"], ref["fit_x"])
    np.testing.assert_array_equal(fa["tree"], ref["tree"])
    np.testing.assert_allclose(fa["core"], ref["core"])
    np.testing.assert_array_equal(fo_fit, ref["drawn_fit"])


@pytest.mark.parametrize("seed", [0, 1])
def test_added_points_tree_is_the_minimum_spanning_tree(seed):
    """From an exact old tree, the incremental tree has the exact mutual-reachability MST's heights,
    with the new points in groups of their own (far), inside the old cloud and duplicating nothing."""
    from hdbscan.hdbscan_ import _hdbscan_boruvka_kdtree
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial import cKDTree
    from scipy.spatial.distance import cdist

    from napari_hsi_anomaly.core.feedback_tree import added_points_tree

    rng = np.random.default_rng(seed)
    k = 8
    old = rng.normal(0, 1, (1200, 3))
    new = np.vstack([rng.normal(5, 0.05, (20, 3)) + rng.normal(0, 0.5, (1, 3)) for _ in range(6)]
                    + [rng.normal(0, 0.3, (80, 3))])
    old_tree = _hdbscan_boruvka_kdtree(old, min_samples=k, core_dist_n_jobs=1, approx_min_span_tree=False)[0]
    tree, core = added_points_tree(old, old_tree, new, k)
    x = np.vstack([old, new])
    d, _ = cKDTree(x).query(x, k + 1)
    np.testing.assert_allclose(core, d[:, k - 1])
    mr = np.maximum(np.maximum(d[:, k][:, None], d[:, k][None, :]), cdist(x, x))
    np.fill_diagonal(mr, 0)
    exact = np.sort(minimum_spanning_tree(mr).data)
    assert tree.shape == (len(x) - 1, 4) and tree[-1, 3] == len(x)
    np.testing.assert_allclose(np.sort(tree[:, 2]), exact, rtol=1e-12)


def test_a_mark_lifts_the_self_reference_floor(scene):
    """Scored blind against itself, a scene flags at least the floor's share at 0.7; once pixels are marked
    normal the floor is lifted, so no other pixel is flagged to keep that share and none of the group is."""
    from napari_hsi_anomaly.core.detectors.calibration import FLAG_FLOOR

    cube, a, b = scene
    scorer = get_detector("rx")().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    before = det.mask(0.7)
    assert det.extras["calibration"]["floor"] and before.mean() >= (100 - FLAG_FLOOR) / 100 - 1e-3
    new = mark_normal(det, cube, a)
    after = new.mask(0.7)
    assert not new.extras["calibration"]["floor"]
    assert after[a].sum() == 0 and after[b].mean() > 0.9
    assert not (after & ~before).any()  # nothing newly flagged elsewhere
