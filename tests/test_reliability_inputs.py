"""Issue 19, classes 5 and 6: inputs whose meaning is unknown are refused or reported, and the Python
API raises the project's own one-line errors (the argument named), as the CLI does."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from cli_helpers import one_line_error, run

from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, HsiAnomalyError, ModelError


def _scene(seed: int = 0, rows: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1 + 0.1 * rng.standard_normal((rows, rows, 6))).astype(np.float32)  # bands last


# --- evaluate ----------------------------------------------------------------------------------------


def test_evaluate_refuses_ground_truth_that_is_not_0_1(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "s.npy", rng.random((16, 16)).astype(np.float32))
    gt = np.zeros((16, 16), np.uint8)
    gt[2:5, 2:5] = 255
    np.save(tmp_path / "gt255.npy", gt)
    rc, out, err = run(["evaluate", "--scores", tmp_path / "s.npy", "--gt", tmp_path / "gt255.npy"], capsys)
    one_line_error(rc, err, "gt255.npy", "255", "0 (normal) and 1 (anomaly)")
    assert "AUC" not in out
    np.save(tmp_path / "gt.npy", (gt > 0).astype(np.uint8))
    rc, out, err = run(["evaluate", "--scores", tmp_path / "s.npy", "--gt", tmp_path / "gt.npy"], capsys)
    assert rc == 0 and "AUC" in out, err


def test_evaluate_refuses_scores_outside_0_1(tmp_path, capsys):
    scores = (np.random.default_rng(1).random((16, 16)) * 255).astype(np.uint8)
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "gt.npy", np.zeros((16, 16), np.uint8))
    rc, out, err = run(["evaluate", "--scores", tmp_path / "s.npy", "--gt", tmp_path / "gt.npy"], capsys)
    one_line_error(rc, err, "s.npy", "outside [0, 1]")
    assert "TPR" not in out


# --- cube contents ---------------------------------------------------------------------------------


def test_unknown_wavelength_units_are_not_read_as_micrometres(tmp_path):
    from napari_hsi_anomaly.core.io import read_cube

    data = np.ones((3, 4, 4), np.float32)
    data.tofile(tmp_path / "c.img")
    (tmp_path / "c.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 4\nbands = 3\nheader offset = 0\ndata type = 4\ninterleave = bsq\n"
        "byte order = 0\nwavelength units = GHz\nwavelength = {10.5, 20.5, 30.5}\n")
    cube = read_cube(tmp_path / "c.hdr")
    assert cube.wavelengths is None
    assert any("GHz" in w for w in cube.metadata.get("warnings", []))
    (tmp_path / "c.hdr").write_text((tmp_path / "c.hdr").read_text().replace("GHz", "Micrometers"))
    np.testing.assert_allclose(read_cube(tmp_path / "c.hdr").wavelengths, [10500, 20500, 30500])


def test_infinite_pixels_are_counted_reported_and_scored_as_nodata(tmp_path, capsys):
    data = _scene()
    data[3, 4, :] = np.inf
    data[10, 11, 2] = np.inf
    np.save(tmp_path / "c.npy", data)
    rc, _, err = run(["score", tmp_path / "c.npy", "--layout", "bands-last", "--method", "rx",
                      "--out", tmp_path / "s.npy"], capsys)
    assert rc == 0, err
    assert "2 pixel(s) hold an infinite value" in err
    scores = np.load(tmp_path / "s.npy")
    assert scores[3, 4] == 0 and scores[10, 11] == 0  # no-data: never flagged


def test_synth_refuses_a_cube_it_cannot_plant_in(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.full((32, 32, 6), 0.3, np.float32))
    out = tmp_path / "o"
    rc, out_text, err = run(["synth", tmp_path / "flat.npy", "--layout", "bands-last", "--out", out,
                             "--window", "16", "--s-anom", "4"], capsys)
    assert rc == 1 and "anomalies" not in out_text and "Traceback" not in err, err
    assert "constant" in err
    assert not out.exists() or not any(out.iterdir())
    from napari_hsi_anomaly.core.synth import plant_anomalies

    with pytest.raises(HsiAnomalyError, match="Cannot plant"):
        plant_anomalies(np.full((3, 32, 32), 7.0, np.float32), window=16, s_anom=4)


# --- the Python API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arr", [np.zeros((0, 5, 5)), np.full((3, 5, 5), "a"), np.ones((3, 5, 5), object),
                                 np.zeros((3, 5, 0), np.float32)])
def test_detect_raises_the_projects_error(arr):
    from napari_hsi_anomaly.core.scoring.detect import detect

    with pytest.raises(HsiAnomalyError) as err:
        detect(arr, "rx")
    assert "\n" not in str(err.value) and "Detection" in str(err.value)


def test_tiff_with_zero_width_is_a_read_error(tmp_path):
    import tifffile

    from napari_hsi_anomaly.core.io import read_cube

    p = tmp_path / "w0.tif"
    tifffile.imwrite(p, np.ones((3, 8, 8), np.uint16), planarconfig="separate")
    raw = bytearray(p.read_bytes())
    with tifffile.TiffFile(p) as t:
        tag = t.pages[0].tags["ImageWidth"]
        fmt, off = ("<H" if tag.dtype == 3 else "<I"), tag.valueoffset
    struct.pack_into(fmt, raw, off, 0)
    p.write_bytes(bytes(raw))
    with pytest.raises(CubeReadError, match="w0.tif"):
        read_cube(p)


def test_model_with_negative_kernels_names_the_field(tmp_path):
    import json

    from napari_hsi_anomaly.core.model import (
        CAE,
        CAEConfig,
        MinMaxScaler,
        TrainedModel,
        load_model,
        save_model,
    )

    cube = Cube(np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    cfg = CAEConfig(bands=4, window=8, kernels=(2, 2), pooling=((1, 2, 2), (1, 2, 2)), kernel_size=3)
    d = save_model(TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([cube], "band"), {}), tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    config["architecture"]["kernels"] = [-16, 16]
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"kernels\[0\]"):
        load_model(d)
    with pytest.raises(ModelError, match="kernels must be"):
        CAEConfig(bands=4, window=8, kernels=(-16, 16), pooling=((1, 2, 2), (1, 2, 2)))


def test_profile_p_min_beyond_the_reference_is_refused(tmp_path):
    from napari_hsi_anomaly.core.profile import iter_fit_profile, iter_score_profile
    from napari_hsi_anomaly.core.progress import run as drive

    ref = Cube(np.moveaxis(_scene(1), 2, 0))
    scorer = drive(iter_fit_profile([ref], "glosh-spectral"))
    det = drive(iter_score_profile(scorer, Cube(np.moveaxis(_scene(2), 2, 0))))
    with pytest.raises(HsiAnomalyError, match="p_min 100000000 is larger than"):
        det.rescore(100_000_000)
    from napari_hsi_anomaly.core.profile import check_profile_p_min, load_profile, save_profile

    loaded = load_profile(save_profile(scorer, tmp_path / "p"))
    with pytest.raises(HsiAnomalyError, match="--p-min 100000000 is larger than the 1,024 points"):
        check_profile_p_min(loaded, 100_000_000)  # before any scoring
    assert check_profile_p_min(loaded, 50) == 50
    det.rescore(50)  # inside the population: fine
