"""``core.pipeline``: one job from cube to map. Each normal source gives the same map through the CLI and
the API; blocks (a loop here, or dask tasks on process workers) equal the whole scene; one plan rule."""

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.pipeline import Job, iter_fit, iter_score, plan, train_options_for
from napari_hsi_anomaly.core.progress import run

METHODS = [("rx", {}), ("spectral-spatial", {"min_samples": 5})]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    rng = np.random.default_rng(0)
    for name, shift in (("ref", 0.0), ("target", 0.02)):
        cube = rng.normal(1.0 + shift, 0.05, (36, 40, 5)).astype(np.float32)  # rows, cols, bands
        cube[10:13, 20:23] += 1.0
        np.save(d / f"{name}.npy", cube)
    return d


def _cli(args):
    assert main([str(a) for a in args]) == 0


@pytest.mark.parametrize(("method", "params"), METHODS)
def test_each_normal_source_same_map_through_cli_and_api(files, tmp_path, method, params):
    opts = [x for k, v in params.items() for x in (f"--{k.replace('_', '-')}", v)]
    ref, target = read_cube(files / "ref.npy"), read_cube(files / "target.npy")
    # the scene itself
    _cli(["score", files / "target.npy", "--method", method, *opts, "--out", tmp_path / "self.npy"])
    api = run(iter_score(Job(method, params), target))
    np.testing.assert_array_equal(np.load(tmp_path / "self.npy"), api.score_map)
    assert not api.plan.blocked and api.detection.method == method
    # reference cubes: fit (a profile) + score --profile through the CLI; references or profile in the API
    _cli(["fit", files / "ref.npy", "--method", method, *opts, "--out", tmp_path / "prof"])
    _cli(["score", files / "target.npy", "--profile", tmp_path / "prof", "--out", tmp_path / "prof.npy"])
    by_refs = run(iter_score(Job(method, params, references=[ref]), target)).score_map
    by_profile = run(iter_score(Job(profile=tmp_path / "prof"), target)).score_map
    cli = np.load(tmp_path / "prof.npy")
    np.testing.assert_allclose(cli, by_profile, atol=1e-6)
    np.testing.assert_allclose(cli, by_refs, atol=1e-6)
    fitted = run(iter_fit(Job(method, params), [ref]))
    np.testing.assert_allclose(run(iter_score(Job(scorer=fitted), target)).score_map, cli, atol=1e-6)
    assert not np.allclose(cli, api.score_map)  # another normal, another map


def test_plan_follows_the_memory_budget(monkeypatch):
    cube = Cube(np.zeros((10, 100, 100), np.float32))
    assert not plan(cube).blocked
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1M")
    p = plan(cube)
    assert p.blocked and "budget" in p.reason and 100 <= p.block_pixels < 100 * 100
    from napari_hsi_anomaly.core.guards import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match="with a CAE"):  # CAE detectors score whole, or not at all
        plan(cube, needs_model=True)


def test_budget_blocks_every_path(files, tmp_path, monkeypatch, capsys):
    """A small budget: ``score`` and the API both go to row blocks (the issue: ``batch``, the dock and
    ``--profile`` never did)."""
    target = read_cube(files / "target.npy")
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "60K")
    out = run(iter_score(Job("rx"), target))
    assert out.plan.blocked and out.detection.extras["blocked"]
    _cli(["fit", files / "ref.npy", "--method", "rx", "--out", tmp_path / "p"])
    prof = run(iter_score(Job(profile=tmp_path / "p"), target))
    assert prof.plan.blocked
    _cli(["score", files / "target.npy", "--method", "rx", "--out", tmp_path / "s.npy"])
    assert "scored in row blocks" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), out.score_map)


def test_the_dock_job_goes_through_the_same_plan(files, monkeypatch):
    from napari_hsi_anomaly._widgets.detect_jobs import Target, score_job

    target = read_cube(files / "target.npy")
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "60K")
    res = run(score_job([Target("t", target)], "rx", {}))
    assert res.scenes[0].detection.extras.get("blocked")
    np.testing.assert_array_equal(res.scenes[0].detection.score_map,
                                  run(iter_score(Job("rx"), target)).score_map)


def test_train_defaults_are_the_docks_automatic_ones():
    """The CLI's ``--epochs 1`` keeps the scene-adapted options (Adam, random crops), as the Model dock."""
    from napari_hsi_anomaly.core.model import auto_train_options

    cube = Cube(np.zeros((5, 100, 100), np.float32))
    auto = auto_train_options(cube, "fast")
    opts = train_options_for([cube], "fast", epochs=1)
    assert (opts.optimizer, opts.crop, opts.batch_size, opts.steps_per_epoch) == (
        auto.optimizer, auto.crop, auto.batch_size, auto.steps_per_epoch) == ("adam", 32, 4,
                                                                             auto.steps_per_epoch)
    assert opts.epochs == 1 and opts.steps_per_epoch > 1
    assert train_options_for([cube], optimizer="adadelta").lr() == 1.0  # a given option wins


@pytest.fixture(scope="module")
def process_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


@pytest.mark.parametrize(("method", "params"), [("spectral-spatial", {"min_samples": 5}), ("attribute", {})])
def test_blocks_on_dask_equal_the_whole_scene(process_client, method, params):
    """A 300x300 scene in row blocks of 40 rows (+ halo) as dask tasks on two process workers: the map
    of the whole scene against the same model (fitted once, scattered once)."""
    from napari_hsi_anomaly.core.scene import make_scene
    from napari_hsi_anomaly.core.scoring.blocks import reference_strips

    scene = make_scene(300, 300, seed=5).cube
    target = Cube(np.array(scene.data), wavelengths=scene.wavelengths)
    scorer = run(iter_fit(Job(method, params), reference_strips(scene, pixels=20_000, min_rows=32)))
    whole = run(iter_score(Job(scorer=scorer), target))
    assert not whole.plan.blocked
    spread = run(iter_score(Job(scorer=scorer, block_pixels=40 * 300, client=process_client), target))
    assert spread.plan.blocked
    # float32 roundoff only: a block's projections are summed by BLAS in another order than the scene's
    np.testing.assert_allclose(spread.score_map, whole.score_map, atol=5e-5)
    serial = run(iter_score(Job(scorer=scorer, block_pixels=40 * 300), target))
    np.testing.assert_allclose(spread.score_map, serial.score_map, atol=1e-6)  # workers = this loop
    seen = process_client.run(lambda: __import__("os").getpid())
    assert len(set(seen.values())) == 2


def test_cli_train_uses_the_automatic_options(tmp_path):
    """``train --epochs 1`` on a 100x100 scene: Adam steps on random 32-px crops, several per epoch (as
    the Model dock), not one Adadelta step on a few 64-px windows."""
    import json

    from napari_hsi_anomaly.core.model import auto_train_options

    rng = np.random.default_rng(1)
    np.save(tmp_path / "c.npy", rng.normal(1.0, 0.05, (100, 100, 5)).astype(np.float32))
    _cli(["train", tmp_path / "c.npy", "--out", tmp_path / "m", "--epochs", "1", "--threads", "1"])
    text = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["description"]
    steps = auto_train_options(read_cube(tmp_path / "c.npy"), "fast").steps_per_epoch
    assert text.startswith(f"fast CAE: {steps} Adam steps (1 epochs x {steps}) on random 32x32 crops, "
                           "batch 4")


def test_a_detector_registered_in_a_test_gets_its_cli_options(files, tmp_path, capsys):
    """Options are generated from the ``Param`` declarations at parse time: a new detector's parameter
    is an option of ``score``; another method refuses it with one line."""
    from napari_hsi_anomaly.core.detectors import Param, register, unregister
    from napari_hsi_anomaly.core.detectors.rx import RxDetector

    class Gain(RxDetector):
        name = "rx-gain-test"
        params = (*RxDetector.params, Param("test_gain", float, 1.0, "a test parameter", minimum=0.0))

    register(Gain)
    try:
        _cli(["score", files / "target.npy", "--method", "rx-gain-test", "--test-gain", "2", "--out",
              tmp_path / "g.npy"])
        capsys.readouterr()
        assert main(["score", str(files / "target.npy"), "--method", "rx", "--test-gain", "2", "--out",
                     str(tmp_path / "x.npy")]) == 1
        assert "--test-gain does not apply to method rx" in capsys.readouterr().err
    finally:
        unregister("rx-gain-test")
