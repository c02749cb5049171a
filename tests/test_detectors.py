"""The detector registry: every registered detector on a small cube, Param checks, reference fitting,
state round trips, and a detector registered in a test showing up in the CLI."""

from collections.abc import Generator

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import (
    DEFAULT_METHOD,
    REGISTRY,
    Detector,
    Param,
    Raw,
    Scorer,
    detector_names,
    get_detector,
    register,
    scorer_from_state,
    unregister,
)
from napari_hsi_anomaly.core.detectors.base import check_cubes
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.scoring import detect


def _cube(rows=32, cols=32, bands=6, seed=0, target=True):
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (bands, rows, cols)).astype(np.float32)
    data += np.linspace(0, 0.2, cols, dtype=np.float32)[None, None, :]  # a gentle gradient
    if target:
        data[:, 5:7, 9:11] += 0.8
    return data


@pytest.fixture(scope="module")
def tiny_model():
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=2, batch_size=2,
                        val_fraction=0.0, threads=1)
    return train(Cube(_cube()), "fast", opts)


def test_names_default_first_and_lookup():
    names = detector_names()
    assert names[0] == "spectral-spatial" == DEFAULT_METHOD
    assert {"rx", "rx-local", "glosh-spectral", "glosh", "recon", "spectral-rx", "spectral-spatial",
            "attribute", "glosh-rx", "ensemble"} <= set(names)
    with pytest.raises(HsiAnomalyError, match="Unknown method 'nope'.*spectral-spatial"):
        get_detector("nope")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_detector_runs_on_a_small_cube(name, tiny_model):
    data = _cube()
    data[:, 0, 0] = np.nan
    cls = get_detector(name)
    det = detect(data, name, model=tiny_model if cls.needs_model else None, p_min=30, min_samples=5,
                 rx_window=(3, 9))
    m = det.score_map
    assert m.dtype == np.float32 and m.shape == (32, 32)
    assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
    assert m[0, 0] == 0 and det.method == name
    assert det.can_rescore == cls.uses_p_min
    assert isinstance(cls.summary, str) and cls.label


def test_params_are_checked():
    cls = get_detector("glosh-spectral")
    assert cls().params["components"] == 5 and cls().params["p_min"] is None  # None = auto
    with pytest.raises(HsiAnomalyError, match="unknown parameter.*colour"):
        cls(colour=1)
    with pytest.raises(HsiAnomalyError, match="p_min must be at least 2"):
        cls(p_min=1)
    with pytest.raises(HsiAnomalyError, match="components must be an integer"):
        cls(components="many")
    with pytest.raises(HsiAnomalyError, match="feature must be one of"):
        get_detector("glosh")(feature="f9")
    assert Param("x", int, 1, "h").option == "--x" and cls.params[0].option == "--components"


@pytest.mark.parametrize("name", ["rx", "rx-local"])
def test_fit_on_reference_score_other_target(name):
    ref = [Cube(_cube(seed=1, target=False)), Cube(_cube(seed=2, target=False))]
    scorer = get_detector(name)(rx_inner=3, rx_outer=9) if name == "rx-local" else get_detector(name)()
    scorer = scorer.fit(ref)
    det = scorer.score(Cube(_cube(seed=3)))
    assert det.score_map[5:7, 9:11].min() > 0.7 > np.median(det.score_map)
    arrays, meta = scorer.state()
    again = scorer_from_state(arrays, meta).score(Cube(_cube(seed=3)))
    np.testing.assert_allclose(again.score_map, det.score_map, atol=1e-6)


def test_reference_with_other_bands_is_refused():
    with pytest.raises(HsiAnomalyError, match="same bands"):
        get_detector("rx")().fit([_cube(bands=6), _cube(bands=5)])
    scorer = get_detector("rx")().fit([_cube()])
    with pytest.raises(HsiAnomalyError, match="6"):
        scorer.score(_cube(bands=5))


class _Brightness(Detector):
    name = "test-brightness"
    label = "brightness (test)"
    summary = "mean over bands"
    params = (Param("gain", float, 1.0, "multiplier", minimum=0.0),)

    def iter_fit(self, cubes, *, model=None, train_options=None) -> Generator[Progress, None, Scorer]:
        yield Progress(0, 1, "nothing to fit")
        return _BrightnessScorer(self.params, check_cubes(cubes)[0].bands)


class _BrightnessScorer(Scorer):
    def __init__(self, params, bands):
        self.detector, self.params, self.bands, self.wavelengths = "test-brightness", params, bands, None

    def iter_raw(self, cube) -> Generator[Progress, None, Raw]:
        yield Progress(0, 1, "mean")
        return Raw(fixed=self.params["gain"] * cube.as_float32().mean(axis=0))

    def state(self):
        return {}, self._meta()

    @classmethod
    def from_state(cls, arrays, meta, *, model=None):
        return cls(meta["params"], meta["bands"])


_Brightness.scorer_class = _BrightnessScorer


@pytest.fixture
def brightness():
    register(_Brightness)
    yield _Brightness
    unregister(_Brightness.name)


def test_registered_detector_appears_in_the_cli(brightness, tmp_path, capsys):
    from napari_hsi_anomaly.cli.main import build_parser, main

    parser = build_parser("score")
    score = parser._subparsers._group_actions[0].choices["score"]
    method = next(a for a in score._actions if a.dest == "method")
    assert "test-brightness" in method.choices and detector_names()[-1] == "test-brightness"
    cube = tmp_path / "c.npy"
    np.save(cube, np.moveaxis(_cube(16, 16), 0, -1))
    assert main(["score", str(cube), "--method", "test-brightness", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.dtype == np.float32 and s.max() <= 1 and s[5:7, 9:11].min() > s[10:, 10:].max()


def test_unregistered_detector_is_not_a_choice():
    assert "test-brightness" not in detector_names()
