"""Issue 19 leftovers: the valid-pixel mask of ``check_usable`` budgeted and built by row blocks, SAFE
metadata read within a size limit, and a loaded profile's scorer knowing its detector (its own z0)."""

from __future__ import annotations

import argparse
import zipfile

import numpy as np
import pytest

from napari_hsi_anomaly.cli import common
from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError, HsiAnomalyError
from napari_hsi_anomaly.core.guards import MemoryBudgetError

ARGS = argparse.Namespace(no_fill_detect=True)


def _cube(seed: int = 0, bands: int = 4, rows: int = 40, cols: int = 30) -> Cube:
    rng = np.random.default_rng(seed)
    return Cube(rng.normal(1.0, 0.1, (bands, rows, cols)).astype(np.float32))


def test_valid_mask_by_blocks_equals_the_whole_mask(monkeypatch):
    cube = _cube()
    cube.data[1, 3, 4] = np.nan
    cube.data[2, 17, 0] = -9999.0
    cube.nodata = -9999.0
    cube.fill = np.zeros((40, 30), bool)
    cube.fill[-2:] = True
    monkeypatch.setattr(common, "VALID_BLOCK_BYTES", 4 * 30 * 4 * 3)  # three rows a block
    np.testing.assert_array_equal(common.valid_mask_budgeted(cube), cube.valid_mask())
    common.check_usable(cube, ARGS)
    assert cube.metadata["valid_pixels"] == 40 * 30 - 2 - 60


def test_valid_mask_over_the_budget_is_refused_before_allocating(monkeypatch):
    # a 200000 x 200000 x 10 scene on disk is sparse; as a broadcast view it costs nothing here
    huge = Cube(np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (10, 200_000, 200_000)))
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1G")
    with pytest.raises(MemoryBudgetError, match="valid-pixel mask"):
        common.check_usable(huge, ARGS)


def test_constant_check_by_blocks_sees_a_pixel_the_sample_misses(monkeypatch):
    from napari_hsi_anomaly.core import nodata

    monkeypatch.setattr(nodata, "CHECK_BLOCK_BYTES", 2 * 300 * 4 * 7)
    data = np.ones((2, 300, 300), np.float32)
    flat = Cube(data.copy())
    with pytest.raises(HsiAnomalyError, match="constant cube"):
        common.check_usable(flat, ARGS)
    data[1, 151, 151] = 2.0  # off the strided sample's grid (stride 3)
    assert common.check_usable(Cube(data), ARGS).metadata["valid_pixels"] == 300 * 300


def test_huge_sparse_envi_scene_refused_in_one_line(tmp_path, monkeypatch, capsys):
    rows = cols = 200_000
    (tmp_path / "big.hdr").write_text(
        f"ENVI\nsamples = {cols}\nlines = {rows}\nbands = 10\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 1\ninterleave = bsq\nbyte order = 0\n")
    with open(tmp_path / "big.img", "wb") as fh:  # sparse: no block on disk
        fh.truncate(10 * rows * cols)
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1G")
    out = tmp_path / "s.npy"
    assert main(["score", str(tmp_path / "big.hdr"), "--method", "rx", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "memory budget" in err[-1] and "internal error" not in err[-1]
    assert not out.exists()


def _fake_safe_zip(path, mtd_bytes: int) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("S2A_MSIL1C_X.SAFE/MTD_MSIL1C.xml", b"<a>" + b" " * mtd_bytes + b"</a>")
        zf.writestr("S2A_MSIL1C_X.SAFE/GRANULE/G/IMG_DATA/T_B02.jp2", b"x")


def test_safe_metadata_over_the_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.io import safe

    monkeypatch.setattr(safe, "MTD_MAX_BYTES", 4096)
    ok, big = tmp_path / "S2A_ok.zip", tmp_path / "S2A_big.zip"
    _fake_safe_zip(ok, 100)
    _fake_safe_zip(big, 10_000)
    assert safe.find_product(ok).mtd_xml.startswith("<a>")
    with pytest.raises(CubeReadError, match="MTD_MSIL1C.xml is over"):
        safe.find_product(big)
    folder = tmp_path / "S2A_MSIL1C_Y.SAFE"
    with zipfile.ZipFile(big) as zf:
        zf.extractall(tmp_path / "x")
    (tmp_path / "x" / "S2A_MSIL1C_X.SAFE").rename(folder)
    with pytest.raises(CubeReadError, match="is over"):
        safe.find_product(folder)


def test_loaded_profile_scorer_has_its_detector_and_z0(tmp_path):
    from napari_hsi_anomaly.core.detectors import get_detector
    from napari_hsi_anomaly.core.detectors.calibration import Z0, _z0_of
    from napari_hsi_anomaly.core.profile import iter_fit_profile, load_profile, save_profile
    from napari_hsi_anomaly.core.progress import run

    cls = get_detector("rx-local")
    assert cls.calibration_z0 != Z0  # else this test could not tell
    refs = [_cube(1, rows=24, cols=24), _cube(2, rows=24, cols=24)]
    fitted = run(iter_fit_profile(refs, "rx-local"))
    loaded = load_profile(save_profile(fitted, tmp_path / "p"))
    assert loaded.detector_class is cls and _z0_of(loaded) == cls.calibration_z0
    # an old profile without a calibration: the target is its own reference, at the detector's z0
    target = _cube(5, rows=24, cols=24)
    target.data[:, 4:6, 4:6] += 1.0
    fitted.calibration = loaded.calibration = None
    np.testing.assert_allclose(loaded.score(target).score_map, fitted.score(target).score_map, atol=1e-6)
