"""A whole 10 m Sentinel-2 tile: 10980 x 10980 x 12 uint16, memory-mapped, scored by the default detector
through the CLI (``hsi-anomaly score``, row blocks against a normal model fitted on strips).

The tile is a 6 x 6 tiling of ``bench_scale.py``'s generated 1830^2 x 12 scene x 10,000 (uint16, 2.9 GB
``.npy``), written once into ``--folder``. The command runs in a child process whose memory is sampled
every second from ``/proc``: peak resident memory (VmHWM), and of it the anonymous part (what the
process allocated) and the file pages of the memory map (clean, given back to the page cache on demand).

Run: ``python benchmarks/bench_tile.py [--folder DIR] [--side 10980]``; saves
``benchmarks/results/bench_tile.md``. Takes about 20 minutes on 2 cores.
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
    src = np.load(make_cube(1830, 12, folder))
    u = np.clip(src * 10000, 0, 65535).astype(np.uint16)
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


def main() -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="where the tile is written (kept)")
    ap.add_argument("--side", type=int, default=10980, help="a multiple of 1830 (default 10980)")
    a = ap.parse_args()
    folder = a.folder or Path(tempfile.mkdtemp(prefix="hsi-tile-"))
    folder.mkdir(parents=True, exist_ok=True)
    tile = make_tile(folder, a.side)
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
