"""``batch``: many cubes on dask.distributed, a summary, resume, bad inputs, an unreachable scheduler."""

import csv
import json

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.batch import MANIFEST, SUMMARY, expand_inputs, iter_batch
from napari_hsi_anomaly.core.cluster import connect
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import run


@pytest.fixture(scope="module")
def client():
    """A dask LocalCluster with 2 workers (threads in this process: quick to start)."""
    conn = connect(workers=2, processes=False, memory_limit=None)
    assert len(conn.client.scheduler_info()["workers"]) == 2
    yield conn.client
    conn.close()


@pytest.fixture()
def scenes(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cube = rng.normal(1.0, 0.05, (24, 26, 5)).astype(np.float32)  # rows, cols, bands
        cube[4 + i : 7 + i, 10:13] += 1.0
        np.save(folder / f"scene{i}.npy", cube)
    (folder / "broken.npy").write_text("this is not a cube")
    return folder


def _summary(out):
    with open(out / SUMMARY, newline="") as f:
        return list(csv.DictReader(f))


def test_batch_resume_and_bad_input(scenes, tmp_path, client):
    out = tmp_path / "out"
    items = expand_inputs([str(scenes)])
    assert [i.stem for i in items] == ["broken.npy", "scene0.npy", "scene1.npy", "scene2.npy"]
    rows = run(iter_batch(items, out, method="rx", client=client))
    assert len(rows) == 4
    by = {r["input"].rsplit("/", 1)[-1]: r for r in rows}
    assert by["broken.npy"]["error"] and "broken" in by["broken.npy"]["error"]
    for i in range(3):
        r = by[f"scene{i}.npy"]
        assert not r["error"] and (r["rows"], r["cols"], r["bands"]) == (24, 26, 5)
        s = np.load(out / f"scene{i}.npy.scores.npy")
        assert s.shape == (24, 26) and s.dtype == np.float32
        assert np.load(out / f"scene{i}.npy.mask.npy").dtype == np.uint8
    table = _summary(out)
    assert list(table[0]) == ["input", "rows", "cols", "bands", "flagged_fraction", "max_score", "seconds",
                              "scores", "error"]
    assert len(table) == 4 and sum(bool(r["error"]) for r in table) == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    # resume: delete one output, damage another; only those inputs (and the bad one) are computed again
    kept = (out / "scene0.npy.scores.npy").stat().st_mtime_ns
    (out / "scene1.npy.scores.npy").unlink()
    with open(out / "scene2.npy.mask.npy", "r+b") as f:  # same size, other bytes: damaged
        f.seek(-1, 2)
        f.write(b"\x07")
    rows = run(iter_batch(items, out, method="rx", client=client))
    redone = {r["input"].rsplit("/", 1)[-1] for r in rows if not r.get("skipped")}
    assert redone == {"scene1.npy", "scene2.npy", "broken.npy"}
    assert (out / "scene1.npy.scores.npy").is_file()
    assert (out / "scene0.npy.scores.npy").stat().st_mtime_ns == kept
    assert len(_summary(out)) == 4
    # an input changed since (same name, other content): scored again, never trusted by name
    np.save(scenes / "scene0.npy", np.load(scenes / "scene0.npy")[:20])
    rows = run(iter_batch(items, out, method="rx", client=client))
    assert {r["input"].rsplit("/", 1)[-1] for r in rows if not r.get("skipped")} == {"scene0.npy",
                                                                                     "broken.npy"}
    assert np.load(out / "scene0.npy.scores.npy").shape == (20, 26)
    # other settings into the same folder would mix results
    with pytest.raises(HsiAnomalyError, match="another batch"):
        run(iter_batch(items, out, method="rx-local", client=client))


def test_batch_with_a_profile_and_a_stack(tmp_path, client):
    from napari_hsi_anomaly.core.profile import iter_fit_profile, save_profile
    from napari_hsi_anomaly.core.stack import read_stack

    rng = np.random.default_rng(1)
    stack = rng.normal(1.0, 0.05, (3, 20, 20, 4)).astype(np.float32)
    stack[0, 2:5, 2:5] += 1.0
    np.save(tmp_path / "stack.npy", stack)
    st = read_stack(tmp_path / "stack.npy")
    prof = save_profile(run(iter_fit_profile([st.cube(1), st.cube(2)], "rx")), tmp_path / "prof")
    items = expand_inputs([str(tmp_path / "*.npy")])
    assert [i.stem for i in items] == ["stack.npy_date1", "stack.npy_date2", "stack.npy_date3"]  # 1-based
    rows = run(iter_batch(items, tmp_path / "out", profile=str(prof), client=client))
    assert all(not r["error"] for r in rows)
    s0 = np.load(tmp_path / "out" / "stack.npy_date1.scores.npy")
    assert s0[3, 3] > np.percentile(s0, 95)


def test_batch_on_an_existing_scheduler(scenes, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        items = expand_inputs([str(scenes / "scene0.npy"), str(scenes / "scene1.npy")])
        rows = run(iter_batch(items, tmp_path / "o", method="rx", scheduler=cluster.scheduler_address))
    assert cluster.scheduler_address.startswith("tcp://")
    assert [bool(r["error"]) for r in rows] == [False, False]


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(HsiAnomalyError, match="Cannot reach the dask scheduler"):
        connect("tcp://127.0.0.1:9")  # nothing listens there: refused at once, or timed out in seconds


def test_cli_batch(scenes, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["batch", str(scenes / "scene*.npy"), str(scenes / "broken.npy"), "--out", str(out),
                 "--method", "rx", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1  # one input failed: said, and the others are done
    assert "broken.npy" in err and "3 of 4 scored" in err
    assert len(_summary(out)) == 4 and len(list(out.glob("*.scores.npy"))) == 3
    assert json.loads((out / MANIFEST).read_text())["outputs"].keys() == {"scene0.npy", "scene1.npy",
                                                                          "scene2.npy"}
    assert main(["batch", str(scenes / "scene0.npy"), "--out", str(tmp_path / "x"), "--scheduler",
                 "tcp://127.0.0.1:9"]) == 1
    assert "Cannot reach the dask scheduler" in capsys.readouterr().err


def test_expand_inputs_folders_globs_envi_pairs(tmp_path):
    for name in ("a.hdr", "a.img", "b.npy", "b.scores.npy", "notes.txt", ".hidden.npy"):
        (tmp_path / name).write_text("x")
    items = expand_inputs([str(tmp_path), str(tmp_path / "missing*.npy")])
    assert [i.stem for i in items] == ["a.hdr", "b.npy", "missing*.npy"]  # a glob matching nothing stays
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.npy").write_text("x")
    stems = [i.stem for i in expand_inputs([str(tmp_path / "b.npy"), str(tmp_path / "sub" / "b.npy")])]
    assert len(set(stems)) == 2 and all(s.startswith("b.npy-") for s in stems)  # one output name each
    again = [i.stem for i in expand_inputs([str(tmp_path / "sub" / "b.npy"), str(tmp_path / "b.npy")])]
    assert again == stems[::-1]  # stable: the name follows the path, not the order


def test_names_keep_the_extension_and_outputs_are_never_inputs(tmp_path, monkeypatch):
    """scene.npy, scene.npz and scene.hdr get three output names; nothing in --out is an input, even
    through a folder or a glob; paths are absolute whatever the working folder."""
    for name in ("scene.npy", "scene.npz", "scene.hdr", "scene.img"):
        (tmp_path / name).write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.npy").write_text("x")
    (out / "scene.npy.scores.npy").write_text("x")
    monkeypatch.chdir(tmp_path)
    items = expand_inputs([".", "out/*.npy", "out"], out_dir="out")
    assert [i.stem for i in items] == ["scene.hdr", "scene.npy", "scene.npz"]
    assert all(i.path.startswith("/") for i in items)


def _write_scenes(folder, n, size=24):
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cube = rng.normal(1.0, 0.05, (size, size + 2, 5)).astype(np.float32)
        cube[4:7, 10:13] += 1.0
        np.save(folder / f"s{i}.npy", cube)


def test_process_workers_in_another_folder_with_relative_inputs(tmp_path, monkeypatch):
    """Workers whose working folder is not the client's get absolute paths; the client writes and
    reads back every output (a cluster whose workers cannot see --out still gives whole outputs)."""
    from distributed import Client, LocalCluster

    elsewhere, here = tmp_path / "workers", tmp_path / "client"
    elsewhere.mkdir()
    _write_scenes(here / "in", 2)
    monkeypatch.chdir(elsewhere)  # worker processes start here
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(elsewhere), silence_logs=40) as cluster, \
            Client(cluster, set_as_default=False) as client:
        monkeypatch.chdir(here)
        assert set(client.run(__import__("os").getcwd).values()) == {str(elsewhere)}
        items = expand_inputs(["in/s0.npy", "in/*.npy"], out_dir="out")
        assert [i.stem for i in items] == ["s0.npy", "s1.npy"]
        rows = run(iter_batch(items, "out", method="rx", client=client))
    assert [r["error"] for r in rows] == ["", ""]
    assert np.load(here / "out" / "s1.npy.scores.npy").shape == (24, 26)
    assert not list(elsewhere.glob("*.npy"))


def test_an_output_the_client_cannot_read_back_is_an_error_row(scenes, tmp_path, client, monkeypatch):
    import napari_hsi_anomaly.core.batch as batch

    monkeypatch.setattr(batch, "_write", lambda path, arr, like, fmt: None)  # a write that left nothing
    out = tmp_path / "lost"
    rows = run(iter_batch(expand_inputs([str(scenes / "scene0.npy")]), out, method="rx", client=client))
    assert rows[0]["error"].startswith("output not written")
    assert json.loads((out / MANIFEST).read_text())["outputs"] == {}
    monkeypatch.undo()
    rows = run(iter_batch(expand_inputs([str(scenes / "scene0.npy")]), out, method="rx", client=client))
    assert not rows[0]["error"] and not rows[0].get("skipped")  # never taken as done


def test_a_killed_worker_recomputes_nothing_that_had_finished(tmp_path, monkeypatch):
    """SIGKILL to a worker after two inputs are done: the batch completes, and every input that had
    finished before the kill ran exactly once (each task appends its name to a trace file)."""
    import os
    import signal

    from distributed import Client, LocalCluster

    from napari_hsi_anomaly.core.batch import TRACE_ENV

    _write_scenes(tmp_path / "in", 8, size=40)
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv(TRACE_ENV, str(trace))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster, set_as_default=False) as client:
        gen = iter_batch(expand_inputs([str(tmp_path / "in")]), tmp_path / "out", method="spectral-spatial",
                         params={"min_samples": 5}, client=client)
        finished, killed = [], False
        try:
            while True:
                p = next(gen)
                if "row" in p.values:
                    finished.append(p.values["row"]["input"].rsplit("/", 1)[-1])
                if len(finished) == 2 and not killed:
                    os.kill(next(iter(client.run(os.getpid).values())), signal.SIGKILL)
                    killed = True
        except StopIteration as stop:
            rows = stop.value
    assert killed and len(rows) == 8 and all(not r["error"] for r in rows)
    runs = trace.read_text().split()
    for name in finished[:2]:
        assert runs.count(name) == 1, (name, runs)
    assert set(runs) == {f"s{i}.npy" for i in range(8)}


def test_a_scheduler_without_workers_is_one_line_within_the_timeout(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", dashboard_address=None) as cluster:
        with pytest.raises(HsiAnomalyError, match="has no worker after 1 s"):
            connect(cluster.scheduler_address, worker_timeout=1)
        sched = tmp_path / "scheduler.json"
        sched.write_text(json.dumps({"address": cluster.scheduler_address}))
        with pytest.raises(HsiAnomalyError, match="has no worker"):
            connect(scheduler_file=str(sched), worker_timeout=1)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HsiAnomalyError, match="not a dask scheduler file"):
        connect(scheduler_file=str(tmp_path / "bad.json"))


def test_scheduler_file_and_worker_count(scenes, tmp_path, capsys):
    from distributed import LocalCluster

    from napari_hsi_anomaly.core.cluster import clamp_workers

    n, note = clamp_workers(10_000)
    assert n == (__import__("os").cpu_count() or 1) and "more than this machine's" in note
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        sched = tmp_path / "scheduler.json"
        sched.write_text(json.dumps({"address": cluster.scheduler_address}))
        code = main(["batch", str(scenes / "scene0.npy"), "--out", str(tmp_path / "o"), "--method", "rx",
                     "--scheduler-file", str(sched)])
    assert code == 0 and (tmp_path / "o" / "scene0.npy.scores.npy").is_file()
    assert main(["batch", str(scenes / "scene0.npy"), "--out", str(scenes), "--method", "rx"]) == 1
    assert "never reads its own output folder" in capsys.readouterr().err


def test_georeferenced_input_gives_a_georeferenced_tif(tmp_path, client):
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).normal(1, 0.05, (4, 20, 22)).astype(np.float32)
    geo = {"crs": "EPSG:32633", "transform": from_origin(500000, 4000000, 10, 10)}
    with rasterio.open(tmp_path / "geo.tif", "w", driver="GTiff", width=22, height=20, count=4,
                       dtype="float32", **geo) as f:
        f.write(data)
    rows = run(iter_batch(expand_inputs([str(tmp_path / "geo.tif")]), tmp_path / "o", method="rx",
                          client=client))
    assert not rows[0]["error"] and rows[0]["scores"] == "geo.tif.scores.tif"
    with rasterio.open(tmp_path / "o" / "geo.tif.scores.tif") as f:
        assert f.crs.to_epsg() == 32633 and f.transform.c == 500000 and f.shape == (20, 22)
    rows = run(iter_batch(expand_inputs([str(tmp_path / "geo.tif")]), tmp_path / "n", method="rx",
                          client=client, fmt="npy"))
    assert rows[0]["scores"] == "geo.tif.scores.npy"


def test_a_large_input_is_spread_in_blocks_with_progress(scenes, tmp_path, client, monkeypatch):
    """An input too large for one task: read on the client, its row blocks dask tasks, progress per
    block; the map is the pipeline's blocked map."""
    import napari_hsi_anomaly.core.batch as batch
    import napari_hsi_anomaly.core.pipeline as pipeline
    import napari_hsi_anomaly.core.scoring.blocks as blocks
    from napari_hsi_anomaly.core.io import read_cube

    monkeypatch.setattr(batch, "LARGE_FILE_BYTES", 0)
    monkeypatch.setattr(pipeline, "BLOCK_SCENE_PIXELS", 100)
    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 6 * 26)  # 24 rows in 4 blocks
    messages = []
    rows = run(iter_batch(expand_inputs([str(scenes / "scene0.npy")]), tmp_path / "o", method="rx",
                          client=client), lambda p: messages.append(p.message))
    assert not rows[0]["error"]
    assert [m for m in messages if "of 24 rows" in m][-1].startswith("scene0.npy: rx: 24 of 24 rows")
    expected = run(pipeline.iter_score(pipeline.Job("rx"), read_cube(scenes / "scene0.npy")))
    assert expected.plan.blocked
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "scene0.npy.scores.npy"), expected.score_map)


def test_large_inputs_scored_whole_are_tasks_side_by_side(scenes, tmp_path, client, monkeypatch):
    """Large files that still fit one task are all submitted at once, as the small ones (a 1830^2 x 12
    float32 scene is 160 MB): only those planned in blocks go one at a time, block by block."""
    import napari_hsi_anomaly.core.batch as batch

    monkeypatch.setattr(batch, "LARGE_FILE_BYTES", 0)

    def serial(*args, **kwargs):  # the one-at-a-time path must not be taken for a whole-scene plan
        raise AssertionError("a whole-scene input went through the block-by-block path")

    monkeypatch.setattr(batch, "_iter_large", serial)
    paths = [str(scenes / f"scene{i}.npy") for i in range(3)] + [str(scenes / "broken.npy")]
    rows = run(iter_batch(expand_inputs(paths), tmp_path / "o", method="rx", client=client))
    assert [bool(r["error"]) for r in rows] == [False, False, False, True]
    assert all((tmp_path / "o" / f"scene{i}.npy.scores.npy").exists() for i in range(3))
