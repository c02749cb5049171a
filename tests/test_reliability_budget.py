"""Issue 19, class 2: free space is checked before long work, and every allocation sized from user
input is budgeted before it happens (fill detection, .npz members, stacks, sidecars, pixel features)."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.guards import BUDGET_ENV, MemoryBudgetError, check_free_space

Usage = namedtuple("Usage", "total used free")


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture()
def C(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    p = tmp_path / "scene.npy"
    np.save(p, (1 + 0.1 * rng.standard_normal((32, 32, 6))).astype(np.float32))
    return p


def test_free_space_is_checked_before_training(C, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(HsiAnomalyError, match="only 4.0 KB is free"):
        check_free_space(tmp_path, 10**6, "Saving")
    rc, _, err = run(["train", C, "--layout", "bands-last", "--out", tmp_path / "m", "--epochs", "1"], capsys)
    assert rc == 1 and "disk space" in err and "Traceback" not in err
    assert "loss" not in err  # refused before any training step
    assert not (tmp_path / "m").exists()
    rc, _, err = run(["synth", C, "--layout", "bands-last", "--out", tmp_path / "s", "--window", "16",
                      "--s-anom", "4"], capsys)
    assert rc == 1 and "disk space" in err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_npz_member_without_suffix_is_budgeted(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.io import read_cube

    p = tmp_path / "c.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("cube", _npy_bytes(np.zeros((64, 64, 64), np.float32)))  # 1 MB, compresses to ~1 KB
    assert p.stat().st_size < 10_000
    monkeypatch.setenv(BUDGET_ENV, "256K")
    with pytest.raises(MemoryBudgetError, match="c.npz"):
        read_cube(p, layout="bands-first")
    monkeypatch.setenv(BUDGET_ENV, "8M")
    assert read_cube(p, layout="bands-first").shape == (64, 64, 64)


def test_compressed_stack_is_budgeted_before_decompression(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.stack import read_stack

    p = tmp_path / "s.npz"
    np.savez_compressed(p, stack=np.zeros((4, 64, 64, 16), np.float32))  # 1 MB of zeros
    monkeypatch.setenv(BUDGET_ENV, "256K")
    with pytest.raises(MemoryBudgetError, match="stack of dates"):
        read_stack(p)
    monkeypatch.setenv(BUDGET_ENV, "8M")
    assert read_stack(p).n_dates == 4


def test_ground_truth_sidecar_shape_checked_from_its_header(tmp_path, monkeypatch):
    from napari_hsi_anomaly._reader import find_ground_truth
    from napari_hsi_anomaly.core.io import read_cube

    c = tmp_path / "scene.npy"
    np.save(c, np.ones((16, 16, 4), np.float32))
    side = tmp_path / "scene_gt.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (200000, 200000)})
    side.write_bytes(b"\x93NUMPY" + header.getvalue()[6:] + b"\0" * 100)  # claims 40 GB, holds 100 bytes
    cube = read_cube(c, layout="bands-last")
    assert find_ground_truth(cube) is None  # the header alone says it is not this cube's
    np.save(side, np.ones((16, 16), np.uint8))
    gt, _ = find_ground_truth(cube)
    assert gt.shape == (16, 16) and isinstance(gt, np.ndarray) and not isinstance(gt, np.memmap)
    monkeypatch.setenv(BUDGET_ENV, "100")
    with pytest.raises(MemoryBudgetError):
        find_ground_truth(cube)


def test_fill_detection_decides_from_the_budget_first(monkeypatch):
    from napari_hsi_anomaly.core.nodata import detect_fill

    rng = np.random.default_rng(1)
    data = (1 + 0.1 * rng.standard_normal((4, 64, 64))).astype(np.float32)
    data[:, :, :20] = 0  # a fill strip on the left border
    assert detect_fill(Cube(data.copy())).sum() == 64 * 20
    monkeypatch.setenv(BUDGET_ENV, "16K")  # smaller than the full-size maps (64 x 64 x 20 bytes)
    cube = Cube(data.copy())
    assert detect_fill(cube) is None
    assert any("memory budget" in n for n in cube.metadata["notes"])


def test_pixel_features_of_a_big_model_are_budgeted(monkeypatch):
    from napari_hsi_anomaly.core.model import CAE, CAEConfig, MinMaxScaler, TrainedModel, extract_features

    cube = Cube(np.random.default_rng(0).random((4, 32, 32)).astype(np.float32))
    cfg = CAEConfig(bands=4, window=8, kernels=(256,), pooling=((1, 2, 2),), kernel_size=3)
    model = TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([cube], "band"), {})
    monkeypatch.setenv(BUDGET_ENV, "2M")  # the features: 32 x 32 px x 1024 values x 4 bytes = 4 MB
    with pytest.raises(MemoryBudgetError, match="Pixel features"):
        extract_features(model, cube, "pixel")
