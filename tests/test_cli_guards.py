"""Issue 10: every reproduction case -- checked first, one clear line, no silent wrong answer, no lost
file. Small inputs: a 64x64 generated scene written like ``hsi-anomaly sample --rows 64 --cols 64``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error, run

from napari_hsi_anomaly.cli.main import main


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    from napari_hsi_anomaly.core.scene import make_scene
    from napari_hsi_anomaly.core.scene.files import write_scene

    d = tmp_path_factory.mktemp("scene")
    write_scene(make_scene(64, 64, seed=0), d, "scene_000")
    return d


@pytest.fixture()
def C(scene_dir, tmp_path) -> Path:
    """A fresh copy of ``scene_000.hdr/.img`` (and its ground truth) in ``tmp_path``."""
    for name in ("scene_000.hdr", "scene_000.img", "scene_000_gt.npy"):
        (tmp_path / name).write_bytes((scene_dir / name).read_bytes())
    return tmp_path / "scene_000.hdr"




# --- silent wrong answers ------------------------------------------------------------------------


def test_evaluate_reads_scores_and_gt_by_role(tmp_path, capsys):
    rng = np.random.default_rng(0)
    gt = np.zeros((32, 32), np.uint8)
    gt[5:9, 5:9] = 1
    r = tmp_path / "r.npz"
    np.savez(r, scores=rng.random((32, 32)).astype(np.float32), gt=gt)
    rc, out, err = run(["evaluate", "--scores", r, "--gt", r], capsys)
    assert rc == 0, err
    auc = float(next(ln for ln in out.splitlines() if ln.startswith("AUC")).split()[1])
    assert auc < 0.8  # random scores; reading gt as scores gave 1.0000


def test_evaluate_npz_without_the_role_key_asks_for_it(tmp_path, capsys):
    np.savez(tmp_path / "r.npz", a=np.zeros((4, 4)), b=np.ones((4, 4)))
    np.save(tmp_path / "gt.npy", np.zeros((4, 4), np.uint8))
    rc, _, err = run(["evaluate", "--scores", tmp_path / "r.npz", "--gt", tmp_path / "gt.npy"], capsys)
    one_line_error(rc, err, "no array 'scores'", "--scores-key")
    rc, out, err = run(["evaluate", "--scores", tmp_path / "r.npz", "--scores-key", "b", "--gt",
                        tmp_path / "gt.npy"], capsys)
    assert rc == 0, err


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_evaluate_refuses_non_finite_scores(tmp_path, capsys, bad):
    s = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    s[3, 3] = bad
    gt = np.zeros((16, 16), np.uint8)
    gt[3, 3] = 1
    np.save(tmp_path / "s.npy", s)
    np.save(tmp_path / "gt.npy", gt)
    rc, _, err = run(["evaluate", "--scores", tmp_path / "s.npy", "--gt", tmp_path / "gt.npy"], capsys)
    one_line_error(rc, err, "s.npy", "NaN")


@pytest.mark.parametrize("ext", [".npy", ".tif", ".tiff", ".hdr", ".img"])
def test_evaluate_reads_every_map_format_score_writes(C, tmp_path, capsys, ext):
    out = tmp_path / f"s{ext}"
    mask = tmp_path / f"m{ext}"
    rc, _, err = run(["score", C, "--method", "rx", "--out", out, "--mask-out", mask], capsys)
    assert rc == 0, err
    gt = tmp_path / "scene_000_gt.npy"
    for scores in (out, mask):
        rc, text, err = run(["evaluate", "--scores", scores, "--gt", gt], capsys)
        assert rc == 0 and "AUC" in text, err


def test_evaluate_reads_a_2d_tif_and_npz_map(tmp_path, capsys):
    import tifffile

    s = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    gt = (s > 0.9).astype(np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", s)
    np.savez(tmp_path / "g.npz", gt=gt, scores=1 - s)
    rc, text, err = run(["evaluate", "--scores", tmp_path / "s.tif", "--gt", tmp_path / "g.npz"], capsys)
    assert rc == 0 and "AUC        1.0000" in text, err


def test_bands_first_npy_is_read_as_bands_first_and_said(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((12, 64, 64), dtype=np.float32))
    rc, out, err = run(["info", tmp_path / "c.npy"], capsys)
    assert rc == 0 and "12 bands x 64 rows x 64 cols" in out and "no layout given" in out


def test_ambiguous_npy_needs_a_layout(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((16, 16, 16), dtype=np.float32))
    for cmd in (["info"], ["score", "--out", tmp_path / "s.npy"]):
        rc, _, err = run([cmd[0], tmp_path / "c.npy", *cmd[1:]], capsys)
        one_line_error(rc, err, "--layout")
    rc, out, _ = run(["info", tmp_path / "c.npy", "--layout", "bands-last"], capsys)
    assert rc == 0 and "16 bands x 16 rows x 16 cols" in out


def test_score_and_synth_take_layout_and_key(tmp_path, capsys):
    cube = np.random.default_rng(0).random((5, 24, 24), dtype=np.float32)
    np.savez(tmp_path / "c.npz", data=cube)
    rc, _, err = run(["score", tmp_path / "c.npz", "--key", "data", "--layout", "bands-first", "--method",
                      "rx", "--out", tmp_path / "s.npy"], capsys)
    assert rc == 0, err
    assert np.load(tmp_path / "s.npy").shape == (24, 24)
    rc, _, err = run(["synth", tmp_path / "c.npz", "--key", "data", "--layout", "bands-first",
                      "--window", "8", "--s-anom", "2", "--out", tmp_path / "syn"], capsys)
    assert rc == 0, err


def _padded(tmp_path: Path) -> Path:
    """The scene (12 bands, 64x64) inside a 100x100 frame of zeros: a no-data border."""
    from napari_hsi_anomaly.core.scene import make_scene

    data = make_scene(64, 64, seed=1).cube.data  # (bands, rows, cols) float32
    big = np.zeros((data.shape[0], 100, 100), np.float32)
    big[:, 18:82, 18:82] = data
    path = tmp_path / "padded.npy"
    np.save(path, np.moveaxis(big, 0, -1))
    return path


@pytest.mark.parametrize("method", ["rx", "glosh-spectral"])
def test_border_fill_is_no_data_not_an_anomaly(tmp_path, capsys, method):
    path = _padded(tmp_path)
    rc, _, err = run(["score", path, "--method", method, "--out", tmp_path / "s.npy"], capsys)
    assert rc == 0, err
    assert "treated as no-data fill" in err
    s = np.load(tmp_path / "s.npy")
    frame = np.ones((100, 100), bool)
    frame[18:82, 18:82] = False
    assert s[frame].max() == 0.0  # fill scores 0 (no-data), not 0.947
    assert (s[~frame] >= 0.7).mean() < 0.2


def test_no_fill_detect_keeps_the_border(tmp_path, capsys):
    path = _padded(tmp_path)
    rc, _, err = run(["score", path, "--method", "rx", "--no-fill-detect", "--out", tmp_path / "s.npy"],
                     capsys)
    assert rc == 0 and "no-data fill" not in err
    assert np.load(tmp_path / "s.npy").shape == (100, 100)


def test_constant_cube_refused(tmp_path, capsys):
    np.save(tmp_path / "c.npy", np.full((32, 32, 4), 7.0, np.float32))
    rc, _, err = run(["score", tmp_path / "c.npy", "--method", "rx", "--out", tmp_path / "s.npy"], capsys)
    one_line_error(rc, err, "c", "same spectrum")
    assert not (tmp_path / "s.npy").exists()


def test_complex_cube_refused_with_a_message(tmp_path, capsys):
    c = (np.random.default_rng(0).random((32, 32, 4)) * (1 + 1j)).astype(np.complex64)
    np.save(tmp_path / "c.npy", c)
    rc, _, err = run(["score", tmp_path / "c.npy", "--method", "rx", "--out", tmp_path / "s.npy"], capsys)
    one_line_error(rc, err, "complex", "np.abs")


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        (["--t-anom", "1.5"], "--t-anom must be >= 0 and <= 1"),
        (["--t-anom", "-0.5"], "--t-anom must be >= 0 and <= 1"),
        (["--t-anom", "nan"], "--t-anom must be a finite number"),
        (["--p-min", "1"], "--p-min must be >= 2"),
        (["--p-min", "5000"], "larger than the 4,096 points"),
        (["--min-samples", "0"], "--min-samples must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
    ],
)
def test_score_out_of_range_options_refused(C, tmp_path, capsys, opts, needle):
    rc, _, err = run(["score", C, "--out", tmp_path / "s.npy", *opts], capsys)
    one_line_error(rc, err, needle)
    assert not (tmp_path / "s.npy").exists()


def test_evaluate_threshold_refused(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.zeros((4, 4), np.float32))
    rc, _, err = run(["evaluate", "--scores", tmp_path / "s.npy", "--gt", tmp_path / "s.npy",
                      "--t-anom", "2"], capsys)
    one_line_error(rc, err, "--t-anom")


def test_envi_byte_order_mismatch_is_hinted(C, capsys):
    C.write_text(C.read_text().replace("byte order = 0", "byte order = 1"))
    rc, out, _ = run(["info", C], capsys)
    assert rc == 0 and "byte-swapped" in out and "byte order = 0" in out


def test_envi_float_byte_order_mismatch_is_hinted(tmp_path, capsys):
    data = np.random.default_rng(0).random((3, 16, 16)).astype("<f4")
    data.tofile(tmp_path / "f.img")
    (tmp_path / "f.hdr").write_text("ENVI\nsamples = 16\nlines = 16\nbands = 3\nheader offset = 0\n"
                                    "data type = 4\ninterleave = bsq\nbyte order = 1\n")
    rc, out, _ = run(["info", tmp_path / "f.hdr"], capsys)
    assert rc == 0 and "byte order" in out and "implausible" in out


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [("data type", "12.7", "must be a whole number"), ("lines", "inf", "must be a whole number"),
     ("samples", "nan", "must be a whole number"), ("bands", "1e400", "must be a whole number")],
)
def test_envi_bad_header_numbers(C, capsys, key, value, needle):
    text = C.read_text().splitlines()
    C.write_text("\n".join(f"{key} = {value}" if ln.split("=")[0].strip() == key else ln for ln in text))
    rc, _, err = run(["info", C], capsys)
    one_line_error(rc, err, "scene_000.hdr", needle)


# --- lost files ----------------------------------------------------------------------------------


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "outputs",
    [
        ["--out", "s.npy", "--mask-out", "scene_000.img"],
        ["--out", "s.npy", "--mask-out", "scene_000.hdr"],
        ["--out", "scene_000.img"],
        ["--out", "a.npy", "--mask-out", "a.npy"],
        ["--out", "a.hdr", "--mask-out", "a.img"],
    ],
)
def test_score_never_overwrites_an_input_or_its_other_output(C, capsys, outputs):
    d = C.parent
    before = _snapshot(d)
    argv = ["score", C, "--method", "rx"] + [str(d / o) if not o.startswith("--") else o for o in outputs]
    rc, _, err = run(argv, capsys)
    one_line_error(rc, err)
    assert "overwrite the input" in err or "same file as another output" in err
    assert _snapshot(d) == before


def test_score_npy_onto_itself_refused(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
    before = x.read_bytes()
    rc, _, err = run(["score", x, "--method", "rx", "--out", x], capsys)
    one_line_error(rc, err, "overwrite the input")
    assert x.read_bytes() == before


def test_out_through_a_symlink_keeps_the_link(C, tmp_path, capsys):
    target = tmp_path / "real.npy"
    target.write_bytes(b"old")
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    rc, _, err = run(["score", C, "--method", "rx", "--out", link], capsys)
    assert rc == 0, err
    assert link.is_symlink() and np.load(target).shape == (64, 64)


def test_symlink_to_the_input_refused(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
    (tmp_path / "y.npy").symlink_to(x)
    rc, _, err = run(["score", x, "--method", "rx", "--out", tmp_path / "y.npy"], capsys)
    one_line_error(rc, err, "overwrite the input")


@pytest.mark.parametrize(
    ("out", "needle"),
    [("no/such/dir/s.npy", "does not exist"), ("s.txt", "unknown extension"), (".", "existing folder")],
)
def test_score_bad_out_refused_before_reading(C, tmp_path, capsys, out, needle):
    rc, _, err = run(["score", C, "--out", tmp_path / out], capsys)
    one_line_error(rc, err, needle)


def test_out_with_tilde_is_expanded(C, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, _, err = run(["score", C, "--method", "rx", "--out", "~/s.npy"], capsys)
    assert rc == 0 and (tmp_path / "s.npy").is_file(), err


# --- memory and time before checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        (["--crop", "1024"], "--crop 1024 is larger than the cube"),
        (["--window", "4096"], "memory budget"),
        (["--lr", "nan"], "--lr must be a finite number"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--steps-per-epoch", "-1"], "--steps-per-epoch must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--window", "10"], "multiple"),
    ],
)
def test_train_bad_options_refused_before_training(C, tmp_path, capsys, opts, needle):
    rc, _, err = run(["train", C, "--out", tmp_path / "model", *opts], capsys)
    one_line_error(rc, err, needle)
    assert not (tmp_path / "model").exists()


def test_train_out_not_a_model_folder_refused_first(C, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    rc, _, err = run(["train", C, "--out", folder, "--epochs", "1"], capsys)
    one_line_error(rc, err, "other files than a saved model")
    assert (folder / "notes.txt").read_text() == "keep me"


def test_read_only_outputs_refused_first(C, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: the folder reads as not writable
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if (
            mode & os.W_OK and Path(p).resolve() == ro.resolve()) else real(p, mode, *a, **k))
    try:
        for argv in (["train", C, "--out", ro / "model"], ["score", C, "--out", ro / "s.npy"],
                     ["sample", "--out", ro / "x", "--rows", "8", "--cols", "8"]):
            rc, _, err = run(argv, capsys)
            one_line_error(rc, err, "not writable")
    finally:
        ro.chmod(0o755)


def test_read_only_folder_message(tmp_path):
    from napari_hsi_anomaly.core.errors import HsiAnomalyError
    from napari_hsi_anomaly.core.guards import check_output_path

    with pytest.raises(HsiAnomalyError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "a.npy")


def _model(tmp_path: Path, **arch) -> Path:
    """A saved (untrained) fast model for 12 bands; ``arch`` edits its config.json afterwards."""
    from napari_hsi_anomaly.core.model import CAE, PRESETS, MinMaxScaler, TrainedModel, save_model

    config = PRESETS["fast"].with_bands(12)
    scaler = MinMaxScaler(np.zeros(12), np.ones(12))
    d = save_model(TrainedModel(net=CAE(config), config=config, scaler=scaler), tmp_path / "model")
    if arch:
        cfg = json.loads((d / "config.json").read_text())
        cfg["architecture"].update(arch)
        (d / "config.json").write_text(json.dumps(cfg))
    return d


@pytest.mark.parametrize(
    ("arch", "needle"),
    [
        ({"kernels": [4000, 4000], "pooling": [[1, 2, 2], [1, 2, 2]]}, "weights"),
        ({"kernels": [10**9, 10**9], "pooling": [[1, 2, 2], [1, 2, 2]]}, "memory budget"),
        ({"kernel_size": 10**6 + 1}, "memory budget"),
    ],
)
def test_huge_model_config_refused_before_allocation(C, tmp_path, capsys, arch, needle):
    d = _model(tmp_path, **arch)
    rc, _, err = run(["features", C, "--model", d, "--out", tmp_path / "f.npy"], capsys)
    one_line_error(rc, err, "config.json", needle)


def test_model_config_that_is_a_list(C, tmp_path, capsys):
    d = _model(tmp_path)
    (d / "config.json").write_text("[1, 2, 3]")
    rc, _, err = run(["features", C, "--model", d, "--out", tmp_path / "f.npy"], capsys)
    one_line_error(rc, err, "config.json", "not a model config")


def test_feature_window_from_config_is_bounded(C, tmp_path, capsys):
    d = _model(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["window"] = 10**12
    cfg["architecture"]["window"] = 10**12
    (d / "config.json").write_text(json.dumps(cfg))
    rc, _, err = run(["features", C, "--model", d, "--feature", "f1", "--out", tmp_path / "f.npy"], capsys)
    one_line_error(rc, err)
    assert "memory budget" in err or "window" in err


def test_compressed_tiff_above_the_budget_refused(tmp_path, capsys, monkeypatch):
    import tifffile

    tifffile.imwrite(tmp_path / "z.tif", np.zeros((12, 256, 256), np.uint16), compression="zlib")
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1M")
    rc, _, err = run(["info", tmp_path / "z.tif"], capsys)
    one_line_error(rc, err, "z.tif", "memory budget", "HSI_ANOMALY_MEMORY_BUDGET")


def test_npz_above_the_budget_refused_before_decompressing(tmp_path, capsys, monkeypatch):
    np.savez_compressed(tmp_path / "z.npz", cube=np.zeros((256, 256, 12), np.float32))
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1M")
    rc, _, err = run(["info", tmp_path / "z.npz"], capsys)
    one_line_error(rc, err, "z.npz", "memory budget")


def test_sample_huge_scene_refused(tmp_path, capsys):
    rc, _, err = run(["sample", "--rows", "40000", "--cols", "40000", "--out", tmp_path / "s"], capsys)
    one_line_error(rc, err, "40000x40000", "memory budget")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("cmd", ["sample", "synth"])
def test_sample_and_synth_out_an_existing_file(C, tmp_path, capsys, cmd):
    f = tmp_path / "file.txt"
    f.write_text("x")
    argv = ["sample", "--rows", "8", "--cols", "8", "--out", f] if cmd == "sample" else \
        ["synth", C, "--out", f, "--window", "16", "--s-anom", "4"]
    rc, _, err = run(argv, capsys)
    one_line_error(rc, err, "not a folder")
    assert f.read_text() == "x"


def test_fifo_input_refused_without_hanging(tmp_path):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    for argv in (["info", str(fifo)], ["evaluate", "--scores", str(fifo), "--gt", str(fifo)]):
        p = subprocess.run([sys.executable, "-m", "napari_hsi_anomaly.cli.main", *argv],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "FIFO" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_view_without_a_display_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    p = subprocess.run([sys.executable, "-m", "napari_hsi_anomaly.cli.main", "view"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1 and "xvfb-run" in p.stderr and p.stderr.count("\n") == 1, p.stderr


# --- every command, bad options: one line, exit 1, never a traceback ------------------------------

BAD = {
    "info": [[], ["{missing}"], ["{dir}"], ["{C}", "--layout", "sideways"], ["{C}", "--bogus"],
             ["{txt}"], ["{C}", "extra"]],
    "view": [["{missing}"], ["{dir}"], ["{C}", "--bogus"], ["{txt}"]],
    "sample": [[], ["--out", "{d}/s", "--rows", "x"], ["--out", "{d}/s", "--rows", "2"],
               ["--out", "{d}/s", "--scenes", "0"], ["--out", "{d}/s", "--p-anom", "2"],
               ["--out", "{d}/s", "--clouds", "-1"], ["--out", "{d}/s", "--s-anom", "0"],
               ["--out", "{d}/s", "--name", "a/b"], ["--out", "{txt}"], ["--out", "{d}/s", "--format", "x"]],
    "train": [[], ["{C}"], ["{missing}", "--out", "{d}/m"], ["{C}", "--out", "{d}/m", "--epochs", "-1"],
              ["{C}", "--out", "{d}/m", "--preset", "huge"], ["{C}", "--out", "{d}/m", "--threads", "0"],
              ["{C}", "--out", "{d}/m", "--crop", "0"], ["{C}", "--out", "{txt}"],
              ["{C}", "--out", "{d}/m", "--optimizer", "sgd"], ["{C}", "--out", "{C}"]],
    "features": [[], ["{C}", "--model", "{missing}", "--out", "{d}/f.npy"],
                 ["{C}", "--model", "{d}", "--out", "{d}/f.npy"],
                 ["{C}", "--model", "{d}", "--out", "{d}/f.csv"],
                 ["{C}", "--model", "{d}", "--out", "{d}/f.npy", "--feature", "f9"],
                 ["{C}", "--model", "{d}", "--out", "{d}/f.npy", "--window", "-3"],
                 ["{C}", "--model", "{d}", "--out", "{d}/f.npy", "--batch-size", "0"]],
    "score": [[], ["{C}"], ["{missing}", "--out", "{d}/s.npy"],
              ["{C}", "--out", "{d}/s.npy", "--method", "x"],
              ["{C}", "--out", "{d}/s.npy", "--model", "{missing}"], ["{C}", "--out", "{d}/s.npy", "--model",
                                                                      "{d}"],
              ["{C}", "--out", "{d}/s.npy", "--feature", "f9"], ["{C}", "--out", "{d}/s.npy", "--p-min", "x"],
              ["{C}", "--out", "{txt}"], ["{txt}", "--out", "{d}/s.npy"]],
    "evaluate": [[], ["--scores", "{missing}", "--gt", "{missing}"], ["--scores", "{C}", "--gt", "{gt}"],
                 ["--scores", "{gt}", "--gt", "{small}"], ["--scores", "{txt}", "--gt", "{gt}"],
                 ["--scores", "{gt}", "--gt", "{gt}", "--t-anom", "inf"],
                 ["--scores", "{dir}", "--gt", "{gt}"]],
    "fit": [[], ["{C}"], ["{missing}", "--out", "{d}/p"], ["{C}", "--out", "{txt}"],
            ["{C}", "--out", "{d}/p", "--method", "x"]],
    "batch": [[], ["{C}"], ["{C}", "--out", "{txt}"], ["{C}", "--out", "{d}/o", "--method", "x"]],
    "synth": [[], ["{C}"], ["{C}", "--out", "{d}/o", "--window", "0"],
              ["{C}", "--out", "{d}/o", "--window", "512"],
              ["{C}", "--out", "{d}/o", "--p-anom", "-1"], ["{C}", "--out", "{d}/o", "--s-anom", "999"],
              ["{missing}", "--out", "{d}/o"]],
}


def test_every_command_is_covered():
    from napari_hsi_anomaly.cli.main import COMMANDS

    assert set(COMMANDS) <= set(BAD)


@pytest.mark.parametrize(("command", "argv"), [(c, a) for c, cases in BAD.items() for a in cases])
def test_every_command_with_bad_options_is_one_line(C, tmp_path, capsys, command, argv):
    (tmp_path / "notes.txt").write_text("not a cube")
    np.save(tmp_path / "small.npy", np.zeros((3, 3), np.uint8))
    values = {"C": C, "d": tmp_path, "missing": tmp_path / "missing.npy", "dir": tmp_path,
              "txt": tmp_path / "notes.txt", "gt": tmp_path / "scene_000_gt.npy",
              "small": tmp_path / "small.npy"}
    before = _snapshot(tmp_path)
    rc, _, err = run([command] + [a.format(**values) for a in argv], capsys)
    one_line_error(rc, err)
    assert err.startswith(f"hsi-anomaly {command}: error:") or err.startswith("hsi-anomaly: error:"), err
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost


def test_tiny_cube_min_samples_advice_fits(tmp_path, capsys):
    np.save(tmp_path / "c3.npy", np.random.default_rng(0).random((3, 3, 12), dtype=np.float32))
    c3, out = tmp_path / "c3.npy", tmp_path / "s.npy"
    rc, _, err = run(["score", c3, "--method", "glosh-spectral", "--out", out], capsys)
    one_line_error(rc, err, "9 valid pixels", "--min-samples 8 or less", "--method rx")
    rc, _, err = run(["score", tmp_path / "c3.npy", "--method", "rx", "--out", tmp_path / "s.npy"], capsys)
    assert rc == 0, err  # min_samples means nothing to RX


def test_error_after_a_progress_line_starts_a_new_line(capsys):
    def failing(args):
        sys.stderr.write("\r[1/2] working")
        from napari_hsi_anomaly.core.errors import HsiAnomalyError

        raise HsiAnomalyError("it broke")

    from napari_hsi_anomaly.cli.main import _report, build_parser

    args = build_parser("info").parse_args(["info", "x"])
    args.func = failing
    assert _report(args, "hsi-anomaly info") == 1
    err = capsys.readouterr().err
    assert err.endswith("\nhsi-anomaly info: error: it broke\n")


def test_evaluate_reads_a_compressed_geotiff_map(tmp_path, capsys):
    import rasterio
    from rasterio.transform import from_origin

    s = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    profile = {"driver": "GTiff", "height": 20, "width": 30, "count": 1, "dtype": "float32",
               "crs": "EPSG:32633", "transform": from_origin(500000, 4000000, 60, 60), "compress": "deflate"}
    with rasterio.open(tmp_path / "s.tif", "w", **profile) as f:
        f.write(s, 1)
    np.save(tmp_path / "gt.npy", (s > 0.95).astype(np.uint8))
    rc, text, err = run(["evaluate", "--scores", tmp_path / "s.tif", "--gt", tmp_path / "gt.npy"], capsys)
    assert rc == 0 and "AUC        1.0000" in text, err


@pytest.mark.parametrize("command", sorted(__import__("napari_hsi_anomaly.cli.main", fromlist=["COMMANDS"])
                                           .COMMANDS))
def test_every_command_help_prints(command, capsys):
    """``COMMAND --help`` exits 0 with its usage (a '%' in a parameter's help once crashed argparse)."""

    try:
        code = main([command, "--help"])
    except SystemExit as exc:
        code = exc.code
    assert code == 0
    assert f"usage: hsi-anomaly {command}" in capsys.readouterr().out
