"""Issue 19, class 1 (data loss): the tool replaces or overwrites only what it wrote, every write is
atomic, and a failed save keeps the result (named in the one-line error)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error, run

from napari_hsi_anomaly.core import atomic
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    from napari_hsi_anomaly.core.scene import make_scene
    from napari_hsi_anomaly.core.scene.files import write_scene

    d = tmp_path_factory.mktemp("scene")
    write_scene(make_scene(64, 64, seed=0), d, "scene_000", fmt="npy", scale=None)
    return d


@pytest.fixture()
def C(scene_dir, tmp_path) -> Path:
    p = tmp_path / "scene.npy"
    p.write_bytes((scene_dir / "scene_000.npy").read_bytes())
    return p




def tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# --- the helper ------------------------------------------------------------------------------------


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "a.npy"
    atomic.save_npy(target, np.arange(5))
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary left
    atomic.write_text(tmp_path / "t.txt", "x")
    atomic.save_npz(tmp_path / "z.npz", a=np.ones(3))
    assert np.load(tmp_path / "z.npz")["a"].sum() == 3


def test_folder_ownership_checks_nested_contents(tmp_path):
    with atomic.atomic_folder(tmp_path / "m", "model") as d:
        (d / "config.json").write_text("{}")
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(b"1")
    assert atomic.owned_kind(tmp_path / "m") == "model"
    assert atomic.replaceable(tmp_path / "m", ["model"])
    assert not atomic.replaceable(tmp_path / "m", ["profile"])  # another kind
    (tmp_path / "m" / "sub" / "mine.txt").write_text("a user's file, nested")
    assert not atomic.replaceable(tmp_path / "m", ["model"])
    with pytest.raises(atomic.OwnershipError, match="mine.txt"):
        atomic.check_replaceable(tmp_path / "m", ["model"], "--out")
    results = tmp_path / "results"
    (results / "model").mkdir(parents=True)  # a folder holding only a folder: not ours
    assert not atomic.replaceable(results, ["profile"])
    (tmp_path / "empty").mkdir()
    assert atomic.replaceable(tmp_path / "empty", ["profile"]) and atomic.replaceable(tmp_path / "new", ["x"])
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / atomic.MARKER).write_text("[1, 2]")  # not a marker the tool wrote
    (tmp_path / "fake" / "x").write_text("x")
    assert not atomic.replaceable(tmp_path / "fake", ["model"])


def test_rename_failure_keeps_the_complete_result(tmp_path, monkeypatch):
    target = tmp_path / "out"
    real_rename = Path.rename

    def no_rename(self, dst):
        if Path(dst) == target:
            raise OSError(28, "No space left on device")
        return real_rename(self, dst)

    monkeypatch.setattr(Path, "rename", no_rename)
    with pytest.raises(HsiAnomalyError, match="kept complete in") as err, \
            atomic.atomic_folder(target, "model", keep_on_error=True) as d:
        (d / "w").write_text("weights")
    kept = Path(str(err.value).split("kept complete in ")[1].split(":")[0])
    assert (kept / "w").read_text() == "weights" and not target.exists()


# --- models and profiles -----------------------------------------------------------------------------


def _model():
    from napari_hsi_anomaly.core.model import CAE, CAEConfig, MinMaxScaler, TrainedModel

    cfg = CAEConfig(bands=4, window=8, kernels=(2,), pooling=((1, 2, 2),), kernel_size=3)
    from napari_hsi_anomaly.core import Cube

    cube = Cube(np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    return TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([cube], "band"), {"epochs": 1})


def test_model_never_replaces_a_users_config(tmp_path):
    from napari_hsi_anomaly.core.model import save_model

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.json").write_text('{"mine": true}')  # the name of a model file, not the tool's
    with pytest.raises(ModelError, match="other files"):
        save_model(_model(), proj)
    assert (proj / "config.json").read_text() == '{"mine": true}'
    save_model(_model(), tmp_path / "m")
    save_model(_model(), tmp_path / "m")  # its own model: replaced


def test_failed_model_save_keeps_the_model_elsewhere(tmp_path, monkeypatch):
    import napari_hsi_anomaly.core.model.checkpoint as ckpt
    from napari_hsi_anomaly.core.model import load_model

    real = ckpt.save_file
    calls = []

    def full_disk_once(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", full_disk_once)
    with pytest.raises(ModelError, match="no space left") as err:
        ckpt.save_model(_model(), tmp_path / "m")
    spare = Path(str(err.value).split("kept in ")[1].split(":")[0])
    try:
        assert load_model(spare).config.kernels == (2,)  # nothing lost
        assert not (tmp_path / "m").exists()
        assert [p.name for p in tmp_path.iterdir()] == []  # no half-written folder beside it
    finally:
        import shutil

        shutil.rmtree(spare, ignore_errors=True)


def test_fit_never_replaces_a_folder_holding_a_users_model(C, tmp_path, capsys):
    from napari_hsi_anomaly.core.model import save_model

    results = tmp_path / "results"
    save_model(_model(), results / "model")  # the user's CAE (trained with train --out results/model)
    before = tree(results)
    rc, _, err = run(["fit", C, "--layout", "bands-last", "--method", "rx", "--out", results], capsys)
    one_line_error(rc, err, "other files")
    assert tree(results) == before
    rc, _, err = run(["fit", C, "--layout", "bands-last", "--method", "rx", "--out", tmp_path / "p"], capsys)
    assert rc == 0, err
    rc, _, err = run(["fit", C, "--layout", "bands-last", "--method", "rx", "--out", tmp_path / "p"], capsys)
    assert rc == 0, err  # its own profile is replaced


def test_train_refuses_a_users_folder_before_training(C, tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.json").write_text("{}")
    rc, _, err = run(["train", C, "--layout", "bands-last", "--out", proj, "--epochs", "1"], capsys)
    one_line_error(rc, err, "other files")
    assert [p.name for p in proj.iterdir()] == ["config.json"]


# --- synth and sample ----------------------------------------------------------------------------------


def test_synth_never_overwrites_a_users_ground_truth(C, tmp_path, capsys):
    out = tmp_path / "u"
    out.mkdir()
    np.save(out / "gt.npy", np.full((3, 3), 7, np.uint8))  # the user's own
    args = ["synth", C, "--layout", "bands-last", "--out", out, "--window", "32", "--s-anom", "4"]
    rc, _, err = run(args, capsys)
    one_line_error(rc, err, "gt.npy", "not written by this tool")
    assert np.load(out / "gt.npy").max() == 7 and sorted(p.name for p in out.iterdir()) == ["gt.npy"]
    fresh = tmp_path / "v"
    args[args.index("--out") + 1] = fresh
    rc, _, err = run(args, capsys)
    assert rc == 0, err
    first = np.load(fresh / "gt.npy")
    assert first.sum() > 0 and json.loads((fresh / atomic.MARKER).read_text())["files"]["gt.npy"] == "synth"
    rc, _, err = run([*args, "--seed", "3"], capsys)  # its own outputs: a re-run replaces them
    assert rc == 0, err


def test_sample_never_overwrites_a_users_manifest(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "scene_manifest.json").write_text("mine")
    argv = ["sample", "--out", out, "--rows", "32", "--cols", "32", "--window", "16", "--format", "npy"]
    rc, _, err = run(argv, capsys)
    one_line_error(rc, err, "scene_manifest.json")
    assert (out / "scene_manifest.json").read_text() == "mine" and len(list(out.iterdir())) == 1
    (out / "scene_manifest.json").unlink()
    (out / "scene_000_gt.npy").write_bytes(b"an earlier file of the user")
    rc, _, err = run(argv, capsys)
    one_line_error(rc, err, "scene_000_gt.npy")
    (out / "scene_000_gt.npy").unlink()
    rc, _, err = run(argv, capsys)
    assert rc == 0, err
    rc, _, err = run(argv, capsys)  # the tool's own scenes: written again
    assert rc == 0, err
    assert json.loads((out / "scene_manifest.json").read_text())["scenes"][0]["seed"] == 0
