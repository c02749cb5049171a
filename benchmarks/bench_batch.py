"""``batch`` on a dask LocalCluster against the same scenes scored one by one.

Target (issue 9): the batch's wall time within 1.3x of (sum of single-scene scoring times) / workers,
peak memory per worker bounded. Scenes: ``make_scene`` (12 Sentinel-2 bands), written once as
``(bands, rows, cols)`` ``.npy`` files. Single-scene times are measured in this process with the same
task function the workers run (``core.batch.score_item``), one after the other; then the whole set is
scored by ``iter_batch`` on a fresh ``LocalCluster`` (``--workers`` single-threaded worker processes).

Run: ``python benchmarks/bench_batch.py [--n 13] [--size 1830] [--workers 2] [--method M]``;
saves benchmarks/results/bench_batch.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import git_head, save_table

from napari_hsi_anomaly.core.batch import BatchItem, iter_batch, score_item
from napari_hsi_anomaly.core.progress import run
from napari_hsi_anomaly.core.scene import make_scene


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
    single = Path(tempfile.mkdtemp(prefix="hsi_single_"))
    times = []
    for p in paths:
        row = score_item(BatchItem(str(p), p.stem), str(single), settings)
        if row["error"]:
            raise SystemExit(f"{p}: {row['error']}")
        times.append(float(row["seconds"]))
        print(f"single {p.stem}: {row['seconds']} s", flush=True)
    shutil.rmtree(single, ignore_errors=True)
    out = Path(tempfile.mkdtemp(prefix="hsi_batch_out_"))
    items = [BatchItem(str(p), p.stem) for p in paths]
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
    scene_mb = 12 * a.size * a.size * 4 / 2**20
    text = "\n".join([
        f"## batch: {a.n} generated scenes {a.size}x{a.size}x12 on a LocalCluster of {a.workers} "
        f"single-threaded workers, method {method}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| sum of single-scene scores (in one process, one after the other) | {sum(times):.1f} s |",
        f"| ... divided by the workers | {ideal:.1f} s |",
        f"| batch wall time (cluster start, scoring, writing, summary) | {wall:.1f} s |",
        f"| ratio (target <= 1.3) | {wall / ideal:.2f} |",
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
