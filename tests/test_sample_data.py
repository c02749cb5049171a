"""The committed sample scene, the npe2 sample data and the ``sample`` CLI command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_hsi_anomaly import _sample_data
from napari_hsi_anomaly.cli import sample_commands
from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.scene import make_scene
from napari_hsi_anomaly.core.scene.files import SAMPLE_NAME, make_sample_scene, quantize, write_sample

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"


def _committed(name: str) -> Path:
    path = SAMPLE_DIR / name
    assert path.is_file(), f"{path} is missing: run `hsi-anomaly sample --out sample_data --repo-sample`"
    return path


def test_committed_sample_reproduces_from_generator(tmp_path):
    paths = write_sample(tmp_path)
    for suffix in (".hdr", "_gt.npy"):
        name = SAMPLE_NAME + suffix
        assert (tmp_path / name).read_bytes() == _committed(name).read_bytes(), name
    new, old = (read_cube(d / f"{SAMPLE_NAME}.hdr") for d in (tmp_path, SAMPLE_DIR))
    assert new.shape == old.shape == (12, 256, 256) and old.dtype == np.uint16
    a, b = np.asarray(new.data, np.int32), np.asarray(old.data, np.int32)
    # byte-identical on the machine that made it; other CPUs' libm may move a rare value by 1 count
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-4
    classes_new = np.load(paths["classes"])
    classes_old = np.load(_committed(f"{SAMPLE_NAME}_classes.npy"))
    assert (classes_new == classes_old).mean() > 0.999


def test_committed_sample_content():
    cube = read_cube(_committed(f"{SAMPLE_NAME}.hdr"))
    gt = np.load(_committed(f"{SAMPLE_NAME}_gt.npy"))
    assert cube.scale_factor == 10000.0
    assert cube.band_names[3] == "B04" and cube.wavelengths[3] == pytest.approx(664.6)
    assert [cube.band_names[i] for i in cube.rgb_bands()] == ["B04", "B03", "B02"]
    refl = cube.as_float32()
    assert float(refl.min()) >= 0.0 and float(refl.max()) < 6.5
    assert gt.dtype == np.uint8 and gt.shape == (256, 256) and int(gt.sum()) == 400
    scene = make_sample_scene()
    assert [a[:2] for a in scene.planted.anomalies] == [(41, 105), (18, 241), (210, 0), (222, 74)]
    np.testing.assert_array_equal(scene.gt, gt)
    np.testing.assert_allclose(refl, scene.cube.data, atol=0.5e-4 + 1e-4)


def _check_layers(layers):
    kinds = [kind for _, _, kind in layers]
    names = [kw["name"] for _, kw, _ in layers]
    assert kinds == ["image", "image", "labels", "labels"]
    assert names == [SAMPLE_NAME, f"{SAMPLE_NAME} RGB", "ground truth", "land cover"]
    stack, kwargs, _ = layers[0]
    cube = kwargs["metadata"]["cube"]
    assert isinstance(cube, Cube) and cube.data is stack and stack.shape == (12, 256, 256)
    assert layers[1][0].shape == (256, 256, 3) and layers[1][1]["rgb"]
    gt = layers[2][0]
    assert gt.dtype == np.uint8 and int(gt.sum()) == 400
    return cube


def test_sample_scene_reads_committed_file():
    cube = _check_layers(_sample_data.sample_scene())
    assert cube.source is not None and cube.source.name == f"{SAMPLE_NAME}.hdr"


def test_sample_scene_generates_when_files_are_missing(tmp_path):
    cube = _check_layers(_sample_data.sample_scene(tmp_path / "absent"))
    assert cube.source is None and cube.dtype == np.uint16
    committed = read_cube(SAMPLE_DIR / f"{SAMPLE_NAME}.hdr")
    assert np.abs(np.asarray(cube.data, np.int32) - np.asarray(committed.data, np.int32)).max() <= 1


def test_quantize_keeps_reflectance():
    scene = make_scene(32, 32, anomalies=False)
    q = quantize(scene.cube)
    assert q.dtype == np.uint16 and q.scale_factor == 10000.0
    np.testing.assert_allclose(q.as_float32(), scene.cube.data, atol=0.51e-4)


def test_cli_sample_writes_readable_envi(tmp_path, capsys):
    rc = main(["sample", "--out", str(tmp_path), "--rows", "48", "--cols", "40", "--scenes", "2",
               "--seed", "3", "--window", "16", "--p-anom", "0.25", "--s-anom", "4"])  # fmt: skip
    assert rc == 0
    out, err = capsys.readouterr()
    assert "2 scene(s) of 48x40" in err and "scene 2/2" in err
    for seed in (3, 4):
        cube = read_cube(tmp_path / f"scene_{seed:03d}.hdr")
        gt = np.load(tmp_path / f"scene_{seed:03d}_gt.npy")
        classes = np.load(tmp_path / f"scene_{seed:03d}_classes.npy")
        assert cube.shape == (12, 48, 40) and gt.shape == classes.shape == (48, 40)
        ref = make_scene(48, 40, seed=seed, window=16, p_anom=0.25, s_anom=4)
        np.testing.assert_array_equal(gt, ref.gt)
        assert ref.planted.n_anomalies == 2  # 9 windows of 16 px (overlapping at the right)
        assert 16 < int(gt.sum()) <= 32
        np.testing.assert_allclose(cube.as_float32(), ref.cube.data, atol=1.01e-4)
        assert str(tmp_path / f"scene_{seed:03d}.hdr") in out
    assert (tmp_path / "scene_manifest.json").is_file()


def test_cli_sample_npy_and_float32(tmp_path):
    assert main(["sample", "--out", str(tmp_path), "--rows", "24", "--cols", "24", "--window", "12",
                 "--format", "npy", "--name", "x"]) == 0  # fmt: skip
    cube = read_cube(tmp_path / "x_000.npy")
    assert cube.shape == (12, 24, 24) and cube.dtype == np.float32
    assert main(["sample", "--out", str(tmp_path), "--rows", "24", "--cols", "24", "--window", "12",
                 "--float32", "--no-anomalies", "--name", "y"]) == 0  # fmt: skip
    cube = read_cube(tmp_path / "y_000.hdr")
    assert cube.dtype == np.float32 and np.load(tmp_path / "y_000_gt.npy").sum() == 0


def test_cli_sample_errors(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path), "--rows", "4"]) == 1
    assert "error" in capsys.readouterr().err
    assert main(["sample", "--out", str(tmp_path), "--rows", "16", "--cols", "16", "--window", "8",
                 "--s-anom", "12"]) == 1  # fmt: skip
    assert "does not fit" in capsys.readouterr().err


def test_cli_thesis_preset(tmp_path, capsys, monkeypatch):
    seen = []

    def small_scene(rows, cols, **kw):  # the preset's parameters, a tiny scene
        seen.append((rows, cols, kw["window"], kw["s_anom"], kw["p_anom"], kw.get("stats") is not None))
        return make_scene(16, 16, **{**kw, "window": 16, "s_anom": 4})

    monkeypatch.setattr(sample_commands, "make_scene", small_scene)
    assert main(["sample", "--out", str(tmp_path), "--thesis"]) == 0
    err = capsys.readouterr().err
    assert "13 scene(s) of 1830x1830 px x 12 bands" in err and "warning" in err
    assert len(seen) == 26  # a statistics pass, then the scenes with population statistics
    assert set(seen[13:]) == {(1830, 1830, 128, 20, 0.05, True)}
    assert len(list(tmp_path.glob("scene_*_gt.npy"))) == 13


@pytest.mark.gui
def test_napari_opens_sample(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-hsi-anomaly", "scene")
    names = [layer.name for layer in viewer.layers]
    assert names == [SAMPLE_NAME, f"{SAMPLE_NAME} RGB", "ground truth", "land cover"]
    assert viewer.layers["ground truth"].data.sum() == 400
