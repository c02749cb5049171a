"""``hsi-anomaly score / evaluate / synth`` end to end on tiny cubes."""

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main


@pytest.fixture()
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(1.0, 0.05, (40, 40, 5)).astype(np.float32)  # (rows, cols, bands)
    cube[10:13, 20:23] += 1.0
    gt = np.zeros((40, 40), np.uint8)
    gt[10:13, 20:23] = 1
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", gt)
    return tmp_path


def test_score_rx_and_evaluate(tiny, capsys):
    out = tiny / "scores.npy"
    assert main(["score", str(tiny / "cube.npy"), "--method", "rx", "--out", str(out),
                 "--mask-out", str(tiny / "mask.npy"), "--t-anom", "0.5"]) == 0
    scores = np.load(out)
    assert scores.dtype == np.float32 and scores.shape == (40, 40)
    assert scores.min() >= 0 and 0.7 < scores.max() <= 1  # calibrated: 1 = most outlying
    mask = np.load(tiny / "mask.npy")
    assert mask.dtype == np.uint8 and mask[11, 21] == 1
    capsys.readouterr()
    assert main(["evaluate", "--scores", str(out), "--gt", str(tiny / "gt.npy"), "--t-anom", "0.5"]) == 0
    text = capsys.readouterr().out
    for key in ("TPR", "FNR", "precision", "F-score", "AUC        1.0000"):
        assert key in text


def test_evaluate_reads_npz_gt(tiny, capsys):
    np.savez(tiny / "scene.npz", cube=np.zeros((40, 40, 2)), gt=np.load(tiny / "gt.npy"))
    main(["score", str(tiny / "cube.npy"), "--method", "rx-local", "--out", str(tiny / "s.npy")])
    capsys.readouterr()
    assert main(["evaluate", "--scores", str(tiny / "s.npy"), "--gt", str(tiny / "scene.npz")]) == 0
    assert "AUC" in capsys.readouterr().out


def test_score_glosh_with_a_model(tiny):
    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.model import TrainOptions, save_model, train

    data = np.moveaxis(np.load(tiny / "cube.npy"), -1, 0)
    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=1, batch_size=2,
                        val_fraction=0.0, threads=1)
    save_model(train(Cube(data), "fast", opts), tiny / "model")
    out = tiny / "g.npy"
    assert main(["score", str(tiny / "cube.npy"), "--model", str(tiny / "model"), "--method", "glosh",
                 "--p-min", "20", "--min-samples", "5", "--out", str(out)]) == 0
    s = np.load(out)
    assert s.shape == (40, 40) and np.isfinite(s).all() and 0 <= s.min() <= s.max() <= 1


def test_score_errors_are_one_line(tiny, capsys):
    np.save(tiny / "nan.npy", np.full((8, 8, 3), np.nan, np.float32))
    assert main(["score", str(tiny / "nan.npy"), "--method", "rx", "--out", str(tiny / "x.npy")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hsi-anomaly score: error:") and "no valid pixel" in err[-1]


def test_synth_writes_cube_and_labels(tiny, capsys):
    assert main(["synth", str(tiny / "cube.npy"), "--out", str(tiny / "syn"), "--seed", "1",
                 "--window", "20", "--p-anom", "0.5", "--s-anom", "5"]) == 0
    from napari_hsi_anomaly.core.io import read_cube

    cube = read_cube(tiny / "syn" / "cube_synth.hdr")
    gt = np.load(tiny / "syn" / "gt.npy")
    labels = np.load(tiny / "syn" / "labels.npz")
    assert cube.shape == (5, 40, 40) and gt.shape == (40, 40)
    assert gt.sum() == 2 * 25 and labels["window_labels"].sum() == 2
    assert labels["sections"].shape == (4 * 16, 4)
    assert main(["synth", str(tiny / "cube.npy"), "--out", str(tiny / "s2"), "--window", "64"]) == 1
    assert "smaller than the window" in capsys.readouterr().err


def test_large_scene_is_scored_in_blocks(tiny, monkeypatch, capsys):
    """Over the block threshold, score fits on strips and scores row blocks: same map as iter_detect."""
    import napari_hsi_anomaly.core.pipeline as pipeline
    import napari_hsi_anomaly.core.scoring.blocks as blocks

    monkeypatch.setattr(pipeline, "BLOCK_SCENE_PIXELS", 100)
    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 400)  # 40 x 40 in blocks of 10 rows
    monkeypatch.setattr(blocks, "REFERENCE_PIXELS", 800)  # fitted on strips, not the whole scene
    out = tiny / "blocked.npy"
    assert main(["score", str(tiny / "cube.npy"), "--method", "rx", "--out", str(out),
                 "--mask-out", str(tiny / "bmask.npy")]) == 0
    assert "scored in row blocks" in capsys.readouterr().err
    scores = np.load(out)
    assert scores.shape == (40, 40) and scores.dtype == np.float32
    r, c = np.unravel_index(int(np.argmax(scores)), scores.shape)
    assert 10 <= r < 13 and 20 <= c < 23  # the planted square is the most outlying
    assert np.load(tiny / "bmask.npy")[11, 21] == 1


def test_score_takes_the_detectors_parameters(tiny, tmp_path, capsys):
    """``--rx-ridge 0`` is classic RX (the same ranking as ``rx_global``); an option the method does not
    declare, or any detector option with ``--profile``, is one line and exit 1."""
    from napari_hsi_anomaly.core.io import read_cube
    from napari_hsi_anomaly.core.scoring.rx import rx_global

    cube_path = tiny / "cube.npy"
    out = tmp_path / "classic.npy"
    assert main(["score", str(cube_path), "--method", "rx", "--rx-ridge", "0", "--out", str(out)]) == 0
    classic = rx_global(read_cube(str(cube_path)))
    got = np.load(out)
    assert np.array_equal(np.argsort(got.ravel(), kind="stable"), np.argsort(classic.ravel(), kind="stable"))
    shrunk = tmp_path / "shrunk.npy"
    assert main(["score", str(cube_path), "--method", "rx", "--out", str(shrunk)]) == 0
    assert not np.allclose(np.load(shrunk), got)  # the default ridge changes the distances
    capsys.readouterr()
    assert main(["score", str(cube_path), "--method", "rx-local", "--rx-ridge", "0", "--out",
                 str(tmp_path / "x.npy")]) == 1
    assert "--rx-ridge does not apply to method rx-local" in capsys.readouterr().err
    assert main(["score", str(cube_path), "--profile", str(tmp_path), "--rx-ridge", "0", "--out",
                 str(tmp_path / "y.npy")]) == 1
    assert "cannot be given with --profile" in capsys.readouterr().err


def test_dates_count_from_one(tmp_path, capsys):
    """``--date 1`` is the first date (as the viewer shows it); 0 and past-the-end are one line each."""
    rng = np.random.default_rng(4)
    stack = rng.normal(1.0, 0.05, (3, 20, 20, 4)).astype(np.float32)
    stack[0, 5:8, 5:8] += 1.0
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "first.npy", stack[0])
    assert main(["score", str(tmp_path / "stack.npy"), "--date", "1", "--method", "rx", "--out",
                 str(tmp_path / "d1.npy")]) == 0
    assert main(["score", str(tmp_path / "first.npy"), "--method", "rx", "--out",
                 str(tmp_path / "f.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "d1.npy"), np.load(tmp_path / "f.npy"))
    capsys.readouterr()
    for k, needle in (("0", "dates count from 1"), ("4", "has 3 dates (1-3); --date 4 is out of range")):
        assert main(["score", str(tmp_path / "stack.npy"), "--date", k, "--method", "rx", "--out",
                     str(tmp_path / "x.npy")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert main(["fit", str(tmp_path / "stack.npy"), "--dates", "0,1", "--out", str(tmp_path / "p")]) == 1
    assert "--dates 0: dates count from 1" in capsys.readouterr().err


def test_score_refuses_a_full_disk_before_scoring(tiny, monkeypatch, capsys):
    """The output's room is checked before any scoring: one line, exit 1, nothing written."""
    from napari_hsi_anomaly.core import guards, pipeline

    monkeypatch.setattr(guards, "free_space", lambda path: 1024)
    scored = []
    monkeypatch.setattr(pipeline, "iter_score", lambda *a, **k: scored.append(1))
    out = tiny / "scores.npy"
    assert main(["score", str(tiny / "cube.npy"), "--method", "rx", "--out", str(out)]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("note:")]
    assert len(err) == 1 and "disk space" in err[0] and "scores.npy" in err[0]
    assert not out.exists() and not scored
