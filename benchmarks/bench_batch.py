"""``batch`` on a dask LocalCluster against the same scenes scored one by one.

Target (issue 9): the batch's wall time within 1.3x of (sum of single-scene scoring times) / workers,
peak memory per worker bounded. Scenes: ``make_scene`` (12 Sentinel-2 bands), written once as
``(bands, rows, cols)`` ``.npy`` files. Single-scene times are measured in this process with the same
task function the workers run (``core.batch.score_item``), one after the other; then the whole set is
scored by ``iter_batch`` on a fresh ``LocalCluster`` (``--workers`` single-threaded worker processes).
Both with one BLAS/OpenMP/numba thread per scoring (set before numpy loads), so that the sum of the
single times divided by the workers is what the workers could reach; the first single scoring pays the
imports and JIT compilation once, as each worker does.

Run: ``python benchmarks/bench_batch.py [--n 13] [--size 1830] [--workers 2] [--method M]``;
saves benchmarks/results/bench_batch.md.
"""

from __future__ import annotations

import os

# one thread per scoring, here as in each (single-threaded) worker: the comparison is per worker
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import git_head, save_table  # noqa: E402

from napari_hsi_anomaly.core.batch import BatchItem, iter_batch, score_item  # noqa: E402
from napari_hsi_anomaly.core.progress import run  # noqa: E402
from napari_hsi_anomaly.core.scene import make_scene  # noqa: E402


def write_scenes(folder: Path, n: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for seed in range(n):
        path = folder / f"scene{seed:02d}.npy"
        if not path.is_file():
            s = make_scene(size, size, seed=seed, anomalies=True, clouds=0.05 * (seed % 5))
            np.save(path, s.cube.as_float32())
        out.append(path)
    return out


def main() -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--size", type=int, default=1830)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--method", default=None, help="detector (default: the registry's)")
    ap.add_argument("--cache", default=None, help="scene folder (default: a temporary one)")
    a = ap.parse_args()
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

    method = a.method or DEFAULT_METHOD
    cache = Path(a.cache or Path(tempfile.gettempdir()) / f"hsi_batch_{a.n}x{a.size}")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    paths = write_scenes(cache, a.n, a.size)
    t_scenes = time.perf_counter() - t0
    settings = {"method": method, "params": {}, "t_anom": 0.7, "layout": "bands-first"}
    times = []
    for p in paths:
        row = score_item(BatchItem(str(p), p.name), settings)["row"]  # the maps come back, unwritten
        if row["error"]:
            raise SystemExit(f"{p}: {row['error']}")
        times.append(float(row["seconds"]))
        print(f"single {p.stem}: {row['seconds']} s", flush=True)
    out = Path(tempfile.mkdtemp(prefix="hsi_batch_out_"))
    items = [BatchItem(str(p), p.name) for p in paths]
    t0 = time.perf_counter()
    rows = run(iter_batch(items, out, method=method, workers=a.workers, layout="bands-first"),
               lambda pr: print(f"batch {pr.done}/{pr.total} {pr.message}", flush=True))
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    errors = [r for r in rows if r.get("error")]
    peaks: dict[int, float] = {}
    for r in rows:
        pid = r.get("worker_pid")
        if pid is not None:
            peaks[pid] = max(peaks.get(pid, 0.0), float(r.get("peak_rss_mb") or 0.0))
    ideal = sum(times) / a.workers
    # each worker process pays the imports and JIT compilation of its first scene, as the first single
    # scoring did: the bound when that warm-up is counted once per worker
    ideal_warm = (sum(times) - times[0]) / a.workers + times[0]
    task_s = [float(r.get("seconds") or 0.0) for r in rows]
    scene_mb = 12 * a.size * a.size * 4 / 2**20
    text = "\n".join([
        f"## batch: {a.n} generated scenes {a.size}x{a.size}x12 on a LocalCluster of {a.workers} "
        f"single-threaded workers, method {method}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sum of single-scene scores (one process, one thread, one after the other) | {sum(times):.1f} s |",
        f"| ... divided by the workers | {ideal:.1f} s |",
        f"| batch wall time (cluster start, scoring, writing, summary) | {wall:.1f} s |",
        f"| ratio (target <= 1.3) | {wall / ideal:.2f} |",
        f"| ... with the first scene's warm-up (imports, JIT: {times[0]:.0f} s vs "
        f"{np.median(times[1:]):.0f} s median) counted once per worker | {ideal_warm:.1f} s, ratio "
        f"{wall / ideal_warm:.2f} |",
        f"| scoring time inside the batch's tasks (sum; first, median) | {sum(task_s):.1f} s; "
        f"{', '.join(f'{t:.0f}' for t in sorted(task_s, reverse=True)[: a.workers])}, "
        f"{np.median(task_s):.0f} s |",
        f"| peak memory per worker (max RSS of each worker process) | "
        f"{', '.join(f'{v:.0f}' for v in sorted(peaks.values()))} MB |",
        f"| one scene as float32 | {scene_mb:.0f} MB |",
        f"| errors | {len(errors)} |",
        "",
        f"Single-scene times: {', '.join(f'{t:.1f}' for t in times)} s. Scenes written in {t_scenes:.0f} s. "
        f"Machine: {os.cpu_count()} cores, load average {load0[0]:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end (shared with other jobs: the ratio is only meaningful "
        f"when the machine has {a.workers} free cores). Commit {git_head()}.",
    ]) + "\n"
    save_table("bench_batch", text)
    return text


if __name__ == "__main__":
    main()
