"""CLI: ``hsi-anomaly train`` and ``features`` end to end on a tiny .npy cube."""

import importlib

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.model import load_model

FAST = ["--window", "16", "--crop", "16", "--epochs", "1", "--steps-per-epoch", "2",
        "--batch-size", "2", "--threads", "1", "--device", "cpu"]


@pytest.fixture
def cube_file(tmp_path):
    data = np.random.default_rng(0).random((24, 20, 4), dtype=np.float32)  # (rows, cols, bands)
    path = tmp_path / "cube.npy"
    np.save(path, data)
    return path


def test_train_then_features(tmp_path, cube_file, capsys):
    model_dir = tmp_path / "model"
    assert main(["train", str(cube_file), "--out", str(model_dir), *FAST]) == 0
    err = capsys.readouterr().err
    assert "loss" in err and "saved" in err
    model = load_model(model_dir)
    assert model.bands == 4 and model.window == 16 and model.preset == "fast"

    out = tmp_path / "f.npy"
    assert main(["features", str(cube_file), "--model", str(model_dir), "--feature", "f2",
                 "--out", str(out)]) == 0
    values = np.load(out)
    regions = np.load(tmp_path / "f.regions.npy")
    assert values.shape == (30 * 16, 4 * 32) and regions.shape == (480, 4)  # 4-px windows fit 24x20
    assert main(["features", str(cube_file), "--model", str(model_dir), "--feature", "pixel",
                 "--out", str(tmp_path / "p.npz")]) == 0
    z = np.load(tmp_path / "p.npz")
    assert z["values"].shape == (480, 16 * 4) and "regions" not in z and z["valid"].all()  # conv1 x 4 groups


def test_interrupted_training_writes_nothing(tmp_path, cube_file, monkeypatch, capsys):
    mc = importlib.import_module("napari_hsi_anomaly.core.model")  # the command imports it when run
    real = mc.iter_train

    def interrupted(*a, **k):
        gen = real(*a, **k)
        yield next(gen)
        gen.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(mc, "iter_train", interrupted)
    assert main(["train", str(cube_file), "--out", str(tmp_path / "m"), *FAST]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.npy"]


def test_band_mismatch_is_one_line_error(tmp_path, cube_file, capsys):
    model_dir = tmp_path / "model"
    assert main(["train", str(cube_file), "--out", str(model_dir), *FAST]) == 0
    other = tmp_path / "other.npy"
    np.save(other, np.random.default_rng(1).random((8, 8, 7), dtype=np.float32))
    capsys.readouterr()
    assert main(["features", str(other), "--model", str(model_dir), "--out", str(tmp_path / "x.npy")]) == 1
    assert "trained on 4 bands; this cube has 7" in capsys.readouterr().err


def test_bad_out_suffix_fails_before_work(tmp_path, cube_file, capsys):
    rc = main(["features", str(cube_file), "--model", str(tmp_path / "missing"), "--out",
               str(tmp_path / "f.txt")])
    assert rc == 1 and "unknown extension '.txt'; use one of .npy, .npz" in capsys.readouterr().err
