"""``hsi-anomaly info`` and ``view`` (the viewer itself is replaced by a stub here)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main

REAL = [
    ("envi/jasperRidge2_R198.hdr", 198),
    ("envi/can_tmr.hdr", 6),
    ("envi/can_tmr.img", 6),
    ("sentinel2/sentinel2-eolearn-ref.npz", 13),
    ("hsi-ad/abu-airport-1.npz", 205),
    ("hsi-ad/abu-airport-3.npz", 205),
    ("hsi-ad/abu-beach-1.npz", 188),
    ("hsi-ad/abu-beach-2.npz", 193),
    ("hsi-ad/abu-urban-1.npz", 204),
    ("hsi-ad/abu-urban-3.npz", 191),
    ("hsi-ad/abu-urban-5.npz", 205),
    ("hsi-ad/san-diego.npz", 189),
    ("hsi-ad/san-diego-plane.npz", 189),
]


@pytest.mark.parametrize(("rel", "bands"), REAL)
def test_info_on_real_files(shared_data, capsys, rel, bands):
    assert main(["info", str(shared_data / rel)]) == 0
    out = capsys.readouterr().out
    assert f"bands:        {bands}" in out
    assert f"{bands} bands x " in out


def test_info_reports_non_monotonic_wavelengths_and_scale(shared_data, capsys):
    assert main(["info", str(shared_data / "envi/jasperRidge2_R198.hdr")]) == 0
    out = capsys.readouterr().out
    assert "not monotonic" in out and "10000" in out and "interleave:   bil" in out


def test_info_on_time_series_is_one_line_error(shared_data, capsys):
    assert main(["info", str(shared_data / "sentinel2/eo-learn_REFERENCE_SCENES.npy")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4-D" in err and err.startswith("hsi-anomaly info: error:")


def test_info_on_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    assert main(["info", str(bad)]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.count("\n") == 1 and "bad.npy" in cap.err


def test_info_layout_option(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.zeros((4, 5, 6), np.float32))
    assert main(["info", str(tmp_path / "c.npy"), "--layout", "bands-first"]) == 0
    assert "4 bands x 5 rows x 6 cols" in capsys.readouterr().out


def test_view_bad_file_exits_before_the_viewer(tmp_path, capsys, monkeypatch):
    import napari_hsi_anomaly._launch as launch_mod

    def no_viewer(*a, **k):
        raise AssertionError("the viewer must not open")

    monkeypatch.setattr(launch_mod, "launch", no_viewer)
    assert main(["view", str(tmp_path / "missing.hdr")]) == 1
    assert "missing.hdr does not exist" in capsys.readouterr().err


def test_view_passes_file_and_options(tmp_path, monkeypatch):
    import napari_hsi_anomaly._launch as launch_mod
    import napari_hsi_anomaly.cli.io_commands as io_mod

    monkeypatch.setattr(io_mod, "display_problem", lambda: None)
    calls = []
    monkeypatch.setattr(launch_mod, "launch", lambda *a, **k: calls.append((a, k)))
    np.save(tmp_path / "c.npy", np.zeros((4, 5, 6), np.float32))
    assert main(["view", str(tmp_path / "c.npy"), "--layout", "auto"]) == 0
    assert main(["view"]) == 0
    assert calls[0] == ((str(tmp_path / "c.npy"),), {"layout": "auto", "key": "cube"})
    assert calls[1][0] == (None,)
