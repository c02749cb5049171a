"""The generated multispectral scene: determinism, bands, classes, spectra, planted anomalies."""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.scene import CLASS_NAMES, make_scene
from napari_hsi_anomaly.core.scene.spectra import S2_BANDS, band_set, spectrum
from napari_hsi_anomaly.core.scene.terrain import fractal


@pytest.fixture(scope="module")
def scene():
    return make_scene(seed=0)


def _band(scene, name):
    return scene.cube.data[scene.cube.band_names.index(name)]


def test_deterministic_bytes_and_seed_matters(scene):
    again = make_scene(seed=0)
    assert again.cube.data.tobytes() == scene.cube.data.tobytes()
    assert again.gt.tobytes() == scene.gt.tobytes()
    assert again.classes.tobytes() == scene.classes.tobytes()
    other = make_scene(seed=1)
    assert not np.array_equal(other.cube.data, scene.cube.data)
    assert not np.array_equal(other.classes, scene.classes)


def test_bands_and_cube_metadata(scene):
    cube = scene.cube
    assert cube.shape == (12, 256, 256) and cube.dtype == np.float32
    assert cube.band_names == [f"B{i:02d}" for i in range(1, 9)] + ["B8A", "B10", "B11", "B12"]
    np.testing.assert_allclose(cube.wavelengths, [S2_BANDS[b] for b in cube.band_names])
    assert cube.units == "reflectance"
    assert [cube.band_names[i] for i in cube.rgb_bands()] == ["B04", "B03", "B02"]
    assert cube.rgb().shape == (256, 256, 3)
    names, wl = band_set("s2-13")
    assert len(names) == 13 and wl[9] == pytest.approx(945.1)
    assert make_scene(32, 40, bands="s2-l2a", anomalies=False).cube.shape == (12, 32, 40)


def test_value_ranges(scene):
    d = scene.cube.data
    assert np.isfinite(d).all()
    assert d.min() >= 0.0
    clean = d[:, scene.gt == 0]
    assert clean.max() < 2.0
    assert 0.02 < float(np.median(clean)) < 0.5


def test_every_class_present_with_plausible_fractions(scene):
    f = scene.class_fractions()
    assert scene.class_names == CLASS_NAMES
    assert f["none"] == 0.0
    assert 0.01 < f["water"] < 0.15
    assert 0.2 < f["vegetation"] < 0.7
    assert 0.01 < f["rock"] < 0.2
    assert 0.03 < f["snow"] < 0.3
    assert 0.03 < f["cloud"] < 0.25
    assert f["soil"] > 0.05
    assert scene.classes.dtype == np.uint8


def test_class_spectra_shapes(scene):
    cls = scene.classes
    clear = scene.gt == 0

    def mean(name, cid):
        return float(_band(scene, name)[(cls == cid) & clear].mean())

    names = ("water", "vegetation", "rock", "snow", "cloud")
    water, veg, rock, snow, cloud = (CLASS_NAMES.index(n) for n in names)
    assert mean("B08", veg) > 3 * mean("B04", veg)  # NIR plateau >> red
    assert mean("B06", veg) > mean("B05", veg) > mean("B04", veg)  # red edge
    assert mean("B03", snow) > 0.5 and mean("B11", snow) < 0.2  # snow: bright VIS, dark SWIR
    assert mean("B11", cloud) > 0.4  # cloud stays bright in SWIR
    assert mean("B11", cloud) > 2 * mean("B11", snow)
    assert mean("B08", water) < 0.06
    assert mean("B11", rock) > mean("B04", rock)
    # the material table itself
    names, _ = band_set("s2")  # noqa: F811
    snow_s, cloud_s = spectrum("snow", names), spectrum("cloud", names)
    assert snow_s[names.index("B03")] > 0.8 and snow_s[names.index("B12")] < 0.1
    assert cloud_s[names.index("B12")] > 0.4


def test_terrain_has_structure(scene):
    # elevation is spatially smooth (neighbours correlate) and snow sits high, water low
    e = scene.elevation
    assert np.corrcoef(e[:, :-1].ravel(), e[:, 1:].ravel())[0, 1] > 0.95
    snow = scene.classes == CLASS_NAMES.index("snow")
    water = scene.classes == CLASS_NAMES.index("water")
    assert e[snow].mean() > np.percentile(e, 75) > e[water].mean()
    f = fractal((64, 64), 3.0, np.random.default_rng(0))
    assert f.dtype == np.float32 and abs(f.mean()) < 1e-5 and f.std() == pytest.approx(1, abs=1e-4)


def test_planted_anomalies(scene):
    p = scene.planted
    assert p is not None and p.n_anomalies == 1  # 16 windows of 64 px, p_anom 0.05 -> at least 1
    r, c, s = p.anomalies[0]
    assert s == 10  # default side: 20/128 of the window
    assert int(scene.gt.sum()) == 100 and scene.gt[r : r + s, c : c + s].all()
    many = make_scene(128, 128, seed=3, p_anom=0.5, window=32, s_anom=4)
    assert many.planted.n_anomalies == 8 and int(many.gt.sum()) == 8 * 16
    none = make_scene(64, 64, anomalies=False)
    assert none.planted is None and none.gt.sum() == 0
    # planting changes only the anomaly pixels
    base = make_scene(128, 128, seed=3, anomalies=False)
    m = many.gt.astype(bool)
    np.testing.assert_array_equal(base.cube.data[:, ~m], many.cube.data[:, ~m])
    assert (many.cube.data[:, m] > base.cube.data[:, m]).mean() > 0.9


def test_switches_and_errors():
    clear = make_scene(64, 64, clouds=0.0, haze=0.0, anomalies=False)
    assert not (clear.classes == CLASS_NAMES.index("cloud")).any()
    with pytest.raises(ShapeError):
        make_scene(4, 4)
    with pytest.raises(ValueError):
        make_scene(32, 32, bands="landsat")


def test_fast_enough():
    t0 = time.perf_counter()
    make_scene(256, 256, seed=5)
    assert time.perf_counter() - t0 < 2.0
