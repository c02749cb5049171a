"""Detectors written as model code on pixel matrices (``pixel_model.PixelDetector``): a detector in a
module of its own, registered with ``@register``, appears in the CLI and the Detect dock with its
options; fitted parts carry their detector; PyOD's KNN on the adapter gives PyOD's own distances."""

import importlib.util
import sys
import textwrap
import uuid

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import (
    REGISTRY,
    detector_names,
    get_detector,
    scorer_from_state,
    unregister,
)
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.profile import load_profile, save_profile
from napari_hsi_anomaly.core.scoring import detect

PLUGIN = '''
"""A detector in one file: scikit-learn-shaped model code, nothing else."""
import numpy as np

from napari_hsi_anomaly.core.detectors import Param, register
from napari_hsi_anomaly.core.detectors.base import MIN_SAMPLES, P_MIN
from napari_hsi_anomaly.core.detectors.pixel_model import PixelDetector


class Centroid:
    """Standardised distance to the mean spectrum (fit / decision_function, as PyOD)."""

    def __init__(self, shrink):
        self.shrink = shrink

    def fit(self, X):
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0) + self.shrink
        return self

    def decision_function(self, X):
        return np.sqrt((((X - self.mean_) / self.scale_) ** 2).sum(axis=1))


@register
class CentroidDetector(PixelDetector):
    name = "test-centroid"
    label = "Centroid distance (test)"
    summary = "standardised distance to the reference's mean spectrum"
    params = (Param("shrink", float, 0.01, "added to every band's spread", minimum=0.0, maximum=5.0),)
    calibration_z0 = 3.0

    def estimator(self, n_rows):
        return Centroid(self.params["shrink"])

    def save_estimator(self, est):
        return {"mean": est.mean_, "scale": est.scale_}

    def load_estimator(self, arrays):
        est = Centroid(self.params["shrink"])
        est.mean_, est.scale_ = arrays["mean"], arrays["scale"]
        return est


@register
class UnsavedDetector(CentroidDetector):
    name = "test-unsaved"
    label = "Centroid, not saveable (test)"
    save_estimator = load_estimator = PixelDetector.save_estimator


class Projection:
    """The two leading principal axes (fit / transform, as scikit-learn's PCA)."""

    def fit(self, X):
        self.mean_ = X.mean(axis=0)
        self.axes_ = np.linalg.svd(X - self.mean_, full_matrices=False)[2][:2].T
        return self

    def transform(self, X):
        return (X - self.mean_) @ self.axes_


@register
class ProjectedGlosh(PixelDetector):
    name = "test-glosh-lite"
    label = "GLOSH on two axes (test)"
    summary = "GLOSH on the two leading principal axes; declares no max_fit"
    params = (P_MIN, MIN_SAMPLES)
    glosh = True
    refit_on_load = True

    def estimator(self, n_rows):
        return Projection()
'''


def _cube(rows=24, cols=24, bands=5, seed=0, target=True):
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (bands, rows, cols)).astype(np.float32)
    if target:
        data[:, 5:7, 9:11] += 0.8
    data[:, 0, 0] = np.nan
    return data


def _auc(scores, truth):
    """Rank AUC (Mann-Whitney) of ``scores`` against a boolean ``truth``."""
    ranks = np.argsort(np.argsort(scores.ravel(), kind="stable")).astype(float)
    pos = truth.ravel()
    return (ranks[pos].sum() - pos.sum() * (pos.sum() - 1) / 2) / (pos.sum() * (~pos).sum())


@pytest.fixture
def plugin(tmp_path):
    """The detectors of ``PLUGIN``, imported from a file as a user's module would be; removed after."""
    name = f"hsi_test_plugin_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(PLUGIN))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    for det in ("test-centroid", "test-unsaved", "test-glosh-lite"):
        unregister(det)
    sys.modules.pop(name, None)


def test_plugin_detector_fits_scores_and_saves(plugin, tmp_path):
    names = detector_names()
    assert names[-3:] == ["test-centroid", "test-unsaved", "test-glosh-lite"]  # no order: at the end
    ref = [Cube(_cube(seed=1, target=False)), Cube(_cube(seed=2, target=False))]
    scorer = get_detector("test-centroid")(shrink=0.02).fit(ref)
    assert scorer.detector_class is plugin.CentroidDetector and scorer.halo() == 0
    target = Cube(_cube(seed=3))
    det = scorer.score(target)
    m = det.score_map
    assert m[0, 0] == 0 and m[5:7, 9:11].min() > 0.7 > np.median(m)
    assert det.extras["calibration"]["z0"] == 3.0  # the fitted part's own detector, not a registry look-up
    again = scorer_from_state(*scorer.state()).score(target)
    np.testing.assert_array_equal(again.score_map, m)
    loaded = load_profile(save_profile(scorer, tmp_path / "prof"))
    np.testing.assert_array_equal(loaded.score(target).score_map, m)


def test_calibration_needs_no_registry(plugin):
    scorer = get_detector("test-centroid")().fit([_cube(seed=1, target=False)])
    unregister("test-centroid")
    det = scorer.score(_cube(seed=3))
    assert det.extras["calibration"]["z0"] == 3.0 and det.score_map[5:7, 9:11].min() > 0.7


def test_estimator_without_arrays_is_refused_in_one_line(plugin, tmp_path):
    scorer = get_detector("test-unsaved")().fit([_cube()])
    assert scorer.score(_cube()).score_map[5:7, 9:11].min() > 0.7
    with pytest.raises(HsiAnomalyError, match="test-unsaved: its fitted model cannot be saved") as err:
        save_profile(scorer, tmp_path / "prof")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "prof").exists()


def test_glosh_part_without_max_fit(plugin):
    data = _cube(32, 32)
    det = detect(data, "test-glosh-lite", p_min=30, min_samples=5, rx_window=(3, 9))
    assert det.can_rescore and det.params["p_min"] == 30 and det.params["min_samples"] == 5
    assert "max_fit" not in det.params and "rx_window" not in det.params
    truth = np.zeros((32, 32), bool)
    truth[5:7, 9:11] = True
    assert _auc(det.score_map, truth) > 0.95
    before = det.score_map.copy()
    det.rescore(60)
    assert det.params["p_min"] == 60 and not np.array_equal(det.score_map, before)
    ref = _cube(32, 32, seed=1, target=False)
    scorer = get_detector("test-glosh-lite")(p_min=30, min_samples=5).fit([ref])
    other = Cube(_cube(32, 32, seed=4))
    np.testing.assert_allclose(scorer_from_state(*scorer.state()).score(other).score_map,
                               scorer.score(other).score_map, atol=1e-6)


def test_plugin_detector_in_the_cli(plugin, tmp_path):
    from napari_hsi_anomaly.cli.main import build_parser, main

    parser = build_parser("score")
    score = parser._subparsers._group_actions[0].choices["score"]
    method = next(a for a in score._actions if a.dest == "method")
    assert {"test-centroid", "test-glosh-lite"} <= set(method.choices)
    assert "--shrink" in score._option_string_actions  # generated from its Param
    cube = tmp_path / "c.npy"
    np.save(cube, np.moveaxis(_cube(16, 16), 0, -1))
    out = tmp_path / "s.npy"
    assert main(["score", str(cube), "--method", "test-centroid", "--shrink", "0.5", "--out", str(out)]) == 0
    s = np.load(out)
    assert s.dtype == np.float32 and s[5:7, 9:11].min() > s[10:, 12:].max()
    assert main(["score", str(cube), "--method", "rx", "--shrink", "0.5", "--out", str(out)]) == 1


def test_plugin_detector_in_the_dock(plugin, qtbot):
    from napari_hsi_anomaly._widgets.detect_params import ParamsForm

    form = ParamsForm()
    qtbot.addWidget(form)
    assert form.method.findData("test-centroid") >= 0
    form.set_method("test-centroid")
    assert [w.name for w in form.form()] == ["shrink"] and form.values() == {"shrink": 0.01}
    form.set_param("shrink", 0.25)
    assert form.values() == {"shrink": 0.25}
    assert not form._p_row.isVisibleTo(form)
    form.set_method("test-glosh-lite")
    assert [w.name for w in form.form()] == ["min_samples"] and form._p_row.isVisibleTo(form)
    assert form.values() == {"min_samples": 10, "p_min": None}


def test_detection_params_come_from_the_parts():
    data = _cube(32, 32)
    assert detect(data, "rx-local", rx_window=(3, 9)).params["rx_window"] == (3, 9)
    both = detect(data, "spectral-rx", rx_window=(5, 11), p_min=30, min_samples=5)
    assert both.params["rx_window"] == (5, 11)
    assert "rx_window" not in detect(data, "rx").params


# ---------------------------------------------------------------- PyOD KNN on the adapter
@pytest.fixture
def knn():
    pytest.importorskip("pyod")  # an optional extra: knn is registered only where it is installed
    from pyod.models.knn import KNN

    assert "knn" in REGISTRY and detector_names()[-1] == "knn"
    return KNN


def _raw(scorer, cube):
    from napari_hsi_anomaly.core.progress import run

    return run(scorer.iter_raw(cube)).fixed


def test_knn_is_pyods_distance(knn, tmp_path):
    ref = [Cube(_cube(seed=1, target=False)), Cube(_cube(seed=2, target=False))]
    target = Cube(_cube(seed=3))
    px = [c.as_float32().reshape(c.bands, -1).T for c in ref]
    x = np.vstack(px)
    ok = np.isfinite(x).all(axis=1)
    scorer = get_detector("knn")(n_neighbors=7).fit(ref)
    own = knn(n_neighbors=7).fit(x[ok])
    t = target.as_float32().reshape(target.bands, -1).T
    t_ok = np.isfinite(t).all(axis=1)
    want = np.full(t.shape[0], np.nan, np.float32)
    want[t_ok] = own.decision_function(t[t_ok])
    np.testing.assert_allclose(_raw(scorer, target).ravel(), want, rtol=1e-6, equal_nan=True)
    # every valid reference pixel fitted: the reference's own scores leave themselves out (PyOD's)
    self_ref = np.full(x.shape[0], np.nan, np.float32)
    self_ref[ok] = own.decision_scores_
    np.testing.assert_allclose(_raw(scorer, ref[1]).ravel(), self_ref[px[0].shape[0]:], rtol=1e-6,
                               equal_nan=True)
    det = scorer.score(target)
    loaded = load_profile(save_profile(scorer, tmp_path / "knn"))  # the fitted spectra, refitted
    np.testing.assert_array_equal(loaded.score(target).score_map, det.score_map)


def test_knn_subsample_and_auc_floor(knn):
    data = _cube(40, 40)
    det = detect(data, "knn", max_fit=300, seed=1)
    truth = np.zeros((40, 40), bool)
    truth[5:7, 9:11] = True
    assert _auc(det.score_map, truth) > 0.99
    scorer = get_detector("knn")(max_fit=300, seed=1).fit([data])
    assert scorer.fit.rows.shape == (300, 5) and scorer.fit.self_scores is None
    with pytest.raises(HsiAnomalyError, match="knn needs at least 52 valid pixels"):
        get_detector("knn")(n_neighbors=50).fit([_cube(5, 5)])
