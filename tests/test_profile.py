"""Profiles: a normal model fitted on reference cubes, saved, loaded, and scoring other cubes."""

import json
import shutil

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.profile import (
    ARRAYS,
    PROFILE_JSON,
    iter_fit_profile,
    iter_score_profile,
    load_profile,
    prepare_target,
    save_profile,
)
from napari_hsi_anomaly.core.progress import run

WL = np.array([450.0, 500.0, 550.0, 600.0, 650.0, 700.0])


def _cube(seed: int, rows=30, cols=32, shift=0.0, wl=WL) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (len(wl), rows, cols)).astype(np.float32) + shift
    data[:, 5:8, 9:12] += 1.5  # a small target
    return Cube(data, wavelengths=wl)


@pytest.fixture(scope="module")
def refs():
    return [_cube(0), _cube(1)]


@pytest.mark.parametrize("method", ["rx", "spectral-rx"])
def test_round_trip_scores_equal(refs, tmp_path, method):
    scorer = run(iter_fit_profile(refs, method))
    target = _cube(5, shift=0.02)
    before = scorer.score(target)
    path = save_profile(scorer, tmp_path / "p")
    info = json.loads((path / PROFILE_JSON).read_text())
    assert info["detector"] == method and info["bands"] == 6 and info["format_version"] == 1
    assert info["wavelengths"] == list(WL) and (path / ARRAYS).is_file()
    loaded = load_profile(path)
    after = run(iter_score_profile(loaded, target))
    np.testing.assert_array_equal(before.score_map, after.score_map)
    if before.can_rescore:  # a live p_min re-condenses the reference hierarchy
        assert after.can_rescore
        np.testing.assert_array_equal(before.rescore(50), after.rescore(50))
        np.testing.assert_array_equal(before.mask(0.7), after.mask(0.7))


def test_round_trip_with_a_cae(refs, tmp_path):
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=1, batch_size=2,
                        val_fraction=0.0, threads=1)
    model = train(refs, "fast", opts)
    scorer = run(iter_fit_profile(refs, "glosh", model=model, p_min=20, min_samples=5))
    target = _cube(7)
    before = scorer.score(target)
    path = save_profile(scorer, tmp_path / "cae")
    assert (path / "model" / "model.safetensors").is_file()
    after = run(iter_score_profile(load_profile(path), target))
    np.testing.assert_allclose(before.score_map, after.score_map, atol=1e-6)
    shutil.rmtree(path / "model")
    with pytest.raises(HsiAnomalyError, match="model/"):
        load_profile(path)


def test_band_selection_cuts_targets(refs, tmp_path):
    scorer = run(iter_fit_profile(refs, "rx", band_selection=[0, 2, 4]))
    path = save_profile(scorer, tmp_path / "sel")
    loaded = load_profile(path)
    assert loaded.bands == 3 and list(loaded.band_selection) == [0, 2, 4] and loaded.source_bands == 6
    target = _cube(3)
    assert prepare_target(loaded, target).bands == 3
    det = run(iter_score_profile(loaded, target))
    np.testing.assert_array_equal(det.score_map, scorer.score(target.select_bands([0, 2, 4])).score_map)


def test_bad_references_and_targets(refs, tmp_path):
    with pytest.raises(HsiAnomalyError, match="bands"):
        run(iter_fit_profile([refs[0], _cube(2, wl=WL[:5])], "rx"))
    with pytest.raises(HsiAnomalyError, match="wavelengths"):
        run(iter_fit_profile([refs[0], _cube(2, wl=WL + 40)], "rx"))
    path = save_profile(run(iter_fit_profile(refs, "rx")), tmp_path / "p")
    loaded = load_profile(path)
    with pytest.raises(HsiAnomalyError, match="fitted on 6"):
        prepare_target(loaded, _cube(2, wl=WL[:5]))
    with pytest.raises(HsiAnomalyError, match="wavelengths"):
        prepare_target(loaded, _cube(2, wl=WL + 40))


def _profile(refs, tmp_path, name="p"):
    return save_profile(run(iter_fit_profile(refs, "spectral-rx")), tmp_path / name)


def test_damaged_profiles_give_one_clear_error(refs, tmp_path):
    good = _profile(refs, tmp_path)
    cases = {}
    for case in ("no_json", "no_arrays", "bad_json", "truncated_arrays", "newer", "wrong_shape", "folder"):
        d = tmp_path / case
        shutil.copytree(good, d)
        cases[case] = d
    (cases["no_json"] / PROFILE_JSON).unlink()
    (cases["no_arrays"] / ARRAYS).unlink()
    text = (cases["bad_json"] / PROFILE_JSON).read_text()
    (cases["bad_json"] / PROFILE_JSON).write_text(text[: len(text) // 2])
    raw = (cases["truncated_arrays"] / ARRAYS).read_bytes()
    (cases["truncated_arrays"] / ARRAYS).write_bytes(raw[: len(raw) // 2])
    info = json.loads(text)
    (cases["newer"] / PROFILE_JSON).write_text(json.dumps({**info, "format_version": 99,
                                                           "package_version": "9.0"}))
    key = next(iter(info["arrays"]))
    info["arrays"][key]["shape"] = [12345]
    (cases["wrong_shape"] / PROFILE_JSON).write_text(json.dumps(info))
    expected = {"no_json": "profile.json is missing", "no_arrays": "arrays.safetensors is missing",
                "bad_json": "damaged", "truncated_arrays": "damaged or truncated",
                "newer": "update napari-hsi-anomaly", "wrong_shape": "damaged"}
    for case, words in expected.items():
        with pytest.raises(HsiAnomalyError, match=words) as err:
            load_profile(cases[case])
        assert str(cases[case]) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(HsiAnomalyError, match="not a profile folder"):
        load_profile(tmp_path / "missing")


def test_save_is_atomic_and_never_replaces_other_files(refs, tmp_path):
    scorer = run(iter_fit_profile(refs, "rx"))
    path = save_profile(scorer, tmp_path / "p")
    save_profile(scorer, path)  # replacing a profile is fine
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(HsiAnomalyError, match="other files"):
        save_profile(scorer, other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_cli_fit_and_score_with_profile(tmp_path, capsys):
    rng = np.random.default_rng(0)
    stack = rng.normal(1.0, 0.05, (3, 30, 30, 5)).astype(np.float32)
    stack[0, 10:14, 10:14] += 1.0
    np.save(tmp_path / "stack.npy", stack)
    prof = tmp_path / "prof"
    assert main(["fit", str(tmp_path / "stack.npy"), "--dates", "2,3", "--out", str(prof),
                 "--method", "rx"]) == 0
    info = json.loads((prof / PROFILE_JSON).read_text())
    assert len(info["references"]) == 2 and info["detector"] == "rx"
    out, mask = tmp_path / "s.npy", tmp_path / "m.npy"
    assert main(["score", str(tmp_path / "stack.npy"), "--date", "1", "--profile", str(prof),
                 "--out", str(out), "--mask-out", str(mask), "--t-anom", "0.7"]) == 0
    s = np.load(out)
    assert s.shape == (30, 30) and s[11, 11] > np.percentile(s, 95)
    assert np.load(mask).dtype == np.uint8
    capsys.readouterr()
    # a target with other bands, a profile from a newer version: one line each, exit 1
    np.save(tmp_path / "four.npy", stack[0, ..., :4])
    assert main(["score", str(tmp_path / "four.npy"), "--profile", str(prof), "--out",
                 str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "fitted on 5" in err and len([x for x in err.splitlines() if "error:" in x]) == 1
    info["format_version"] = 7
    (prof / PROFILE_JSON).write_text(json.dumps(info))
    assert main(["score", str(tmp_path / "stack.npy"), "--date", "1", "--profile", str(prof), "--out",
                 str(tmp_path / "y.npy")]) == 1
    err = capsys.readouterr().err
    assert "format 7" in err and len([x for x in err.splitlines() if "error:" in x]) == 1
    assert not (tmp_path / "y.npy").exists()
    # references with different band counts
    np.save(tmp_path / "five.npy", stack[1])
    assert main(["fit", str(tmp_path / "five.npy"), str(tmp_path / "four.npy"), "--out",
                 str(tmp_path / "p2")]) == 1
    assert "bands" in capsys.readouterr().err


HAZY, CLEAR, NORMAL = (0, 1), 2, (3, 4)


def test_sentinel2_hazy_dates_flagged_clear_date_clean(shared_data, tmp_path, capsys):
    """The issue's target through the CLI's own forms: normal from dates 3-4, default detector and
    bands, t_anom 0.7: the hazy dates 0 and 1 flag >= 30 % of their pixels on average, the clear date
    2 <= 5 %."""
    stack = str(shared_data / "sentinel2" / "sentinel2-eolearn-ref.npz")  # names its bands
    prof = tmp_path / "s2-profile"
    assert main(["fit", stack, "--dates", "4,5", "--out", str(prof)]) == 0  # dates count from 1
    assert "left out: B09, B10" in capsys.readouterr().err
    flagged = {}
    for k in (*HAZY, CLEAR):
        mask = tmp_path / f"d{k}_mask.npy"
        assert main(["score", stack, "--date", str(k + 1), "--profile", str(prof), "--out",
                     str(tmp_path / f"d{k}.npy"), "--mask-out", str(mask)]) == 0
        flagged[k] = float(np.load(mask).mean())
    hazy = np.mean([flagged[k] for k in HAZY])
    assert hazy >= 0.30, flagged
    assert flagged[CLEAR] <= 0.05, flagged


def test_cli_fit_trains_a_cae_and_keeps_it(tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "ref.npy", rng.normal(1.0, 0.05, (32, 32, 4)).astype(np.float32))
    prof = tmp_path / "recon"
    assert main(["fit", str(tmp_path / "ref.npy"), "--method", "recon", "--preset", "fast", "--epochs", "1",
                 "--out", str(prof)]) == 0
    assert (prof / "model" / "config.json").is_file()
    assert main(["score", str(tmp_path / "ref.npy"), "--profile", str(prof), "--out",
                 str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (32, 32)
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "ref.npy"), "--method", "rx", "--epochs", "1", "--out",
                 str(tmp_path / "x")]) == 1
    assert "uses no CAE" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "ref.npy"), "--method", "rx", "--p-min", "50", "--out",
                 str(tmp_path / "x")]) == 1
    assert "does not apply to method rx" in capsys.readouterr().err
