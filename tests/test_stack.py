"""Stacks of dates: the 4-D reader, ``read_cube(path, date=K)`` and the CLI's ``--date``."""

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.stack import is_stack_file, read_stack


@pytest.fixture()
def stack_file(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.normal(1.0, 0.05, (3, 20, 22, 5)).astype(np.float32)  # dates, rows, cols, bands
    arr[1, 5:8, 5:8] += 2.0
    path = tmp_path / "stack.npy"
    np.save(path, arr)
    return path, arr


def test_read_stack_and_date(stack_file):
    path, arr = stack_file
    st = read_stack(path)
    assert st.n_dates == 3 and st.bands == 5 and is_stack_file(path)
    for k in range(3):
        c = st.cube(k)
        assert c.shape == (5, 20, 22) and c.metadata["date"] == k
        np.testing.assert_array_equal(c.data, np.moveaxis(arr[k], -1, 0))
    c = read_cube(path, date=-1)
    np.testing.assert_array_equal(c.data, np.moveaxis(arr[2], -1, 0))
    assert isinstance(st.data, np.memmap)  # nothing read until used


def test_stack_errors(stack_file, tmp_path):
    path, _ = stack_file
    with pytest.raises(HsiAnomalyError, match="--date"):
        read_cube(path)  # a 4-D array without a date says how to pick one
    with pytest.raises(HsiAnomalyError, match="3 dates"):
        read_cube(path, date=3)
    np.save(tmp_path / "cube.npy", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(HsiAnomalyError, match="without --date"):
        read_cube(tmp_path / "cube.npy", date=0)
    assert not is_stack_file(tmp_path / "cube.npy")


def test_npz_stack_with_wavelengths(tmp_path):
    arr = np.ones((2, 6, 7, 3), np.float32)
    arr[1] *= 2
    np.savez(tmp_path / "s.npz", stack=arr, wavelengths=np.array([450.0, 550.0, 650.0]),
             band_names=np.array(["B", "G", "R"]))
    c = read_cube(tmp_path / "s.npz", date=1)
    assert c.shape == (3, 6, 7) and c.data.max() == 2
    assert list(c.wavelengths) == [450.0, 550.0, 650.0] and c.band_names == ["B", "G", "R"]


def test_cli_date(stack_file, tmp_path, capsys):
    path, _ = stack_file
    assert main(["info", str(path), "--date", "2"]) == 0
    out = tmp_path / "s.npy"
    assert main(["score", str(path), "--date", "2", "--method", "rx", "--out", str(out)]) == 0  # 1-based
    s = np.load(out)
    assert s.shape == (20, 22) and s[6, 6] > np.percentile(s, 95)
    capsys.readouterr()
    assert main(["score", str(path), "--method", "rx", "--out", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "--date" in err and len(err.strip().splitlines()) == 1


def test_real_sentinel2_stack(shared_data):
    path = shared_data / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy"
    st = read_stack(path)
    assert st.n_dates == 5 and st.bands == 13
    c = st.cube(2)
    assert c.shape == (13, 101, 100)
    npz = read_cube(shared_data / "sentinel2" / "sentinel2-eolearn-ref.npz", date=2)
    np.testing.assert_array_equal(np.asarray(c.data), np.asarray(npz.data))
    assert npz.wavelengths is not None and npz.wavelengths.size == 13


def test_unnamed_13_band_stack_is_taken_as_sentinel2_l1c(shared_data, tmp_path, capsys):
    """eo-learn's .npy has no band metadata: its 13 bands get the L1C names (said in a note), so the
    default selection leaves out B09/B10 in the CLI as in the viewer, as with the named .npz."""
    path = shared_data / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy"
    c = read_cube(path, date=2)
    assert c.band_names[8:11] == ["B8A", "B09", "B10"] and c.wavelengths[3] == pytest.approx(664.6)
    assert any("taken as Sentinel-2 L1C" in n for n in c.metadata["notes"])
    prof = tmp_path / "p"
    assert main(["fit", str(path), "--dates", "3,4", "--method", "rx", "--out", str(prof)]) == 0
    err = capsys.readouterr().err
    assert "taken as Sentinel-2 L1C" in err and "left out: B09, B10" in err
    other = np.random.default_rng(0).random((2, 4, 4, 13)).astype(np.float32)  # any unnamed 13-band
    np.save(tmp_path / "s.npy", other)
    assert read_stack(tmp_path / "s.npy").band_names[9] == "B09"


def test_score_uses_the_default_bands_and_all_keeps_them(shared_data, tmp_path, capsys):
    """``score`` (no profile) cuts the same default bands as the viewer; ``--bands all`` keeps all 13."""
    path = str(shared_data / "sentinel2" / "sentinel2-eolearn-ref.npz")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert main(["score", path, "--date", "2", "--method", "rx", "--out", str(a)]) == 0
    assert "left out: B09, B10" in capsys.readouterr().err
    assert main(["score", path, "--date", "2", "--method", "rx", "--bands", "all", "--out", str(b)]) == 0
    assert "left out" not in capsys.readouterr().err
    assert not np.allclose(np.load(a), np.load(b))
