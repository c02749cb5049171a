"""Checkpoints: safetensors + config.json round trip, atomic replace, clear errors."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import napari_hsi_anomaly.core.model.checkpoint as ckpt
from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model import (
    CAE,
    PRESETS,
    MinMaxScaler,
    TrainedModel,
    extract_features,
    load_model,
    save_model,
)

CFG = dataclasses.replace(PRESETS["fast"], window=16, kernels=(3, 4))


def make(bands=5, seed=0):
    cube = Cube(np.random.default_rng(seed).random((bands, 20, 18), dtype=np.float32))
    torch.manual_seed(seed)
    cfg = CFG.with_bands(bands)
    scaler = MinMaxScaler.fit([cube], "band")
    return TrainedModel(CAE(cfg).eval(), cfg, scaler, {"epochs": 1, "loss": 0.1}), cube


def test_roundtrip_identical_features(tmp_path):
    model, cube = make()
    out = save_model(model, tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == [".hsi-anomaly-owned", "config.json", "model.safetensors"]
    loaded = load_model(out)
    assert loaded.config == model.config and loaded.summary["loss"] == 0.1
    np.testing.assert_array_equal(loaded.scaler.lo, model.scaler.lo)
    for kind in ("f1", "pixel"):
        np.testing.assert_array_equal(extract_features(loaded, cube, kind).values,
                                      extract_features(model, cube, kind).values)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["bands"] == 5 and cfg["scaling"]["mode"] == "band"


def test_failed_save_keeps_previous_model(tmp_path, monkeypatch):
    model, _ = make(seed=0)
    target = save_model(model, tmp_path / "m")
    before = (target / "model.safetensors").read_bytes()
    other, _ = make(seed=1)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(ModelError, match="Could not save the model"):
        save_model(other, target)
    assert (target / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary left behind
    monkeypatch.undo()
    save_model(other, target)  # a complete save replaces it
    assert (target / "model.safetensors").read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_interrupt_during_json_leaves_nothing(tmp_path, monkeypatch):
    model, _ = make()
    monkeypatch.setattr(ckpt.json, "dumps", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_model(model, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    model, _ = make()
    d = save_model(model, tmp_path / "m")
    with pytest.raises(ModelError, match="not a model directory"):
        load_model(tmp_path / "nothing")
    cfg = json.loads((d / "config.json").read_text())
    cfg["format_version"] = 99
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="format version 99"):
        load_model(d)
    cfg["format_version"] = 1
    cfg["architecture"]["kernels"] = [3, 6]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="does not match its config"):
        load_model(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model.safetensors is missing"):
        load_model(d)


def test_other_minor_version_warns(tmp_path):
    model, _ = make()
    d = save_model(model, tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    cfg["package_version"] = "0.9.0"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="0.9.0"):
        load_model(d)


def test_loaded_model_rejects_other_band_count(tmp_path):
    model, _ = make(bands=5)
    loaded = load_model(save_model(model, tmp_path / "m"))
    with pytest.raises(ModelError, match="trained on 5 bands; this cube has 7"):
        extract_features(loaded, Cube(np.zeros((7, 8, 8), np.float32)), "pixel")


def test_save_never_replaces_a_folder_of_other_files(tmp_path):
    """Saving replaces its folder whole: a folder with a user's files is refused and left as it was."""
    model, _ = make()
    user = tmp_path / "results"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match="other files than a saved model"):
        save_model(model, user)
    assert (user / "notes.txt").read_text() == "keep me"
    # a saved model, an empty folder and a new name may be (re)written
    save_model(model, tmp_path / "m")
    save_model(model, tmp_path / "m")
    (tmp_path / "empty").mkdir()
    save_model(model, tmp_path / "empty")
    assert ckpt.replaceable(tmp_path / "new") and not ckpt.replaceable(user)
