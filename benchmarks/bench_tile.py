"""A whole 10 m Sentinel-2 tile: 10980 x 10980 x 12 uint16, memory-mapped, scored by the default detector
through the CLI (``hsi-anomaly score``, row blocks against a normal model fitted on strips).

The tile is a 6 x 6 tiling of ``bench_scale.py``'s generated 1830^2 x 12 scene x 10,000 (uint16, 2.9 GB
``.npy``), written once into ``--folder``. The command runs in a child process whose memory is sampled
every second from ``/proc``: peak resident memory (VmHWM), and of it the anonymous part (what the
process allocated) and the file pages of the memory map (clean, given back to the page cache on demand).

Run: ``python benchmarks/bench_tile.py [--folder DIR] [--side 10980]``; saves
``benchmarks/results/bench_tile.md``. Takes about 20 minutes on 2 cores.

``--workers 1,2``: instead, the tile's row blocks as dask tasks (``core.pipeline`` with a client) on a
``LocalCluster`` of 1, then 2 single-threaded process workers, in the same run against the same normal
model (fitted once on strips, not timed); saves ``bench_tile_workers.md`` with the speed-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_scale import make_cube
from common import git_head, save_table


def make_tile(folder: Path, side: int) -> Path:
    """The ``(12, side, side)`` uint16 tile (``side`` a multiple of 1830), written once."""
    path = folder / f"tile_{side}.npy"
    if path.exists():
        return path
    import spectral

    img = spectral.open_image(str(make_cube(1830, 12, folder)))  # the `sample` scene: reflectance in [0, 1]
    # x 10,000 as Sentinel-2 L2A stores it (a bare cast would leave 0 and 1: a tile of no-data fill)
    u = np.moveaxis(np.clip(np.rint(np.asarray(img.load()) * 10000.0), 0, 65535), -1, 0).astype(np.uint16)
    n = side // 1830
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(12, side, side))
    for i in range(n):
        for j in range(n):
            out[:, i * 1830:(i + 1) * 1830, j * 1830:(j + 1) * 1830] = u
    out.flush()
    del out
    return path


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) // 1024
    except (OSError, ValueError):
        pass
    return out


def bench_workers(tile: Path, side: int, counts: list[int]) -> str:
    """Wall time of the blocked scoring of ``tile`` on ``n`` local dask workers, for each ``n``."""
    from distributed import Client, LocalCluster

    from napari_hsi_anomaly.core.io import read_cube
    from napari_hsi_anomaly.core.pipeline import Job, iter_fit, iter_score
    from napari_hsi_anomaly.core.progress import run
    from napari_hsi_anomaly.core.scoring.blocks import reference_strips

    cube = read_cube(tile)
    t0 = time.perf_counter()
    scorer = run(iter_fit(Job(), reference_strips(cube)))
    fit_s = time.perf_counter() - t0
    walls: dict[int, float] = {}
    maps = {}
    for n in counts:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster, set_as_default=False) as client:
            t0 = time.perf_counter()
            out = run(iter_score(Job(scorer=scorer, client=client), cube))
            walls[n] = time.perf_counter() - t0
            maps[n] = out.score_map
    same = all(np.allclose(maps[counts[0]], m, atol=1e-6) for m in maps.values())
    load = os.getloadavg()
    base = walls[counts[0]]
    lines = [f"## A {side} x {side} x 12 uint16 tile in row blocks as dask tasks, 1 vs 2 local workers", "",
             f"Commit {git_head()}; {os.cpu_count()} CPU cores shared with other work; load average at the "
             f"end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Default detector ({scorer.detector}), "
             f"normal model fitted once on strips ({fit_s:.0f} s, not timed), scattered to the workers; "
             f"maps equal across worker counts: {same}.", "",
             "| workers | wall (scoring) | speed-up vs 1 |", "|---|---|---|"]
    lines += [f"| {n} | {walls[n]:.1f} s | {base / walls[n]:.2f}x |" for n in counts]
    lines += ["", "Measured in one run, one worker count after the other, on a machine other engineers "
              "share: the ratio is the number to read, not the seconds."]
    return save_table("bench_tile_workers", "\n".join(lines) + "\n")


def main() -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="where the tile is written (kept)")
    ap.add_argument("--side", type=int, default=10980, help="a multiple of 1830 (default 10980)")
    ap.add_argument("--workers", default=None, help="e.g. 1,2: blocks on that many dask workers")
    a = ap.parse_args()
    folder = a.folder or Path(tempfile.mkdtemp(prefix="hsi-tile-"))
    folder.mkdir(parents=True, exist_ok=True)
    tile = make_tile(folder, a.side)
    if a.workers:
        return bench_workers(tile, a.side, [int(t) for t in a.workers.split(",")])
    exe = shutil.which("hsi-anomaly", path=str(Path(sys.executable).parent)) or "hsi-anomaly"
    cmd = [exe, "score", str(tile), "--out", str(folder / "scores.npy"), "--mask-out",
           str(folder / "mask.npy")]
    t0 = time.perf_counter()
    cpu0 = os.times()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0}
    err_lines: list[str] = []
    import threading

    def drain() -> None:
        for chunk in iter(lambda: proc.stderr.read(4096), ""):
            err_lines.append(chunk)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    while proc.poll() is None:
        for k, v in _status(proc.pid).items():
            peak[k] = max(peak[k], v)
        time.sleep(1.0)
    reader.join(timeout=5)
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    text_err = "".join(err_lines).replace("\r", "\n")
    tail = [ln.strip() for ln in text_err.splitlines() if ln.strip().startswith(("scores:", "mask:"))]
    load = os.getloadavg()
    lines = [
        f"## A {a.side} x {a.side} x 12 uint16 tile, memory-mapped, default detector via `hsi-anomaly score`",
        "",
        f"Commit {git_head()}; 2 CPU cores; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1 / 5 / 15 min). Exit code {proc.returncode}.",
        "",
        "| wall | CPU (user + system) | peak resident (VmHWM) | peak anonymous | peak memory-map pages |",
        "|---|---|---|---|---|",
        f"| {wall / 60:.1f} min | {cpu / 60:.1f} min | {peak['VmHWM'] / 1024:.2f} GB | "
        f"{peak['RssAnon'] / 1024:.2f} GB | {peak['RssFile'] / 1024:.2f} GB |",
        "",
        *[f"    {t}" for t in tail],
        "",
        "Anonymous memory is what the process allocated (the 482 MB score map, one block's working set, the "
        "normal model); memory-map pages are the tile's clean file pages, which the kernel takes back "
        "under pressure. The validity check reads the whole file once (streamed), so they reach the "
        "file's size.",
    ]
    return save_table("bench_tile", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
