"""Benchmark the CAE core: training and feature-extraction speed, peak memory of pixel features.

Reduced scale (a few steps per preset) so the whole run takes a few minutes on 2 shared CPU cores.
Prints a markdown table and writes it to ``benchmarks/results/bench_model.md``.

    python benchmarks/bench_model.py [--threads 1] [--big 1830] [--no-save]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import git_head

from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.model import (
    CAE,
    PRESETS,
    MinMaxScaler,
    TrainedModel,
    TrainOptions,
    count_parameters,
    extract_features,
    iter_train,
)

RESULTS = Path(__file__).resolve().parent / "results" / "bench_model.md"



def random_cube(bands: int, rows: int, cols: int, seed: int = 0) -> Cube:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    base = np.sin(yy / 9.0) + np.cos(xx / 7.0)
    data = base[None] * rng.random((bands, 1, 1)) + 0.1 * rng.random((bands, rows, cols))
    return Cube(data.astype(np.float32))


def bench_train(preset: str, window: int, steps: int, batch: int, threads: int,
                channels_last: bool = True) -> dict:
    cfg = dataclasses.replace(PRESETS[preset], window=window)
    cube = random_cube(12, window * 2, window * 2)
    opts = TrainOptions(epochs=1, batch_size=batch, steps_per_epoch=steps + 1, optimizer="adadelta",
                        device="cpu", threads=threads, val_fraction=0, channels_last=channels_last)
    gen = iter_train(cube, cfg, opts)
    next(gen)  # first step: warm-up (allocations, oneDNN primitive creation)
    t0 = time.perf_counter()
    for _ in range(steps):
        next(gen)
    dt = time.perf_counter() - t0
    gen.close()
    return {"windows": steps * batch, "seconds": dt, "per_s": steps * batch / dt}


def bench_features(preset: str, window: int, n_windows: int, threads: int, kind: str = "f1",
                   channels_last: bool = True) -> dict:
    torch.set_num_threads(threads)
    cfg = dataclasses.replace(PRESETS[preset], window=window)
    cube = random_cube(12, window, window * n_windows)
    model = TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([cube]), {})
    extract_features(model, random_cube(12, window, window), kind, channels_last=channels_last)
    t0 = time.perf_counter()
    fs = extract_features(model, cube, kind, batch_size=4, channels_last=channels_last)
    dt = time.perf_counter() - t0
    return {"windows": n_windows, "seconds": dt, "per_s": n_windows / dt, "shape": fs.values.shape}


CHILD = r"""
import resource, sys, time, numpy as np, torch
from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.model import CAE, PRESETS, MinMaxScaler, TrainedModel, extract_features

def hwm_kb():
    # VmHWM is reset by exec (ru_maxrss is inherited from the parent on Linux)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

torch.set_num_threads(int(sys.argv[3]))
data = np.load(sys.argv[1], mmap_mode="r")
cube = Cube(data)
cfg = PRESETS[sys.argv[4]]
torch.manual_seed(0)
model = TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler(np.zeros(12), np.ones(12)), {})
base = hwm_kb()
t = time.perf_counter()
fs = extract_features(model, cube, "pixel")
dt = time.perf_counter() - t
print(base, hwm_kb(), dt, fs.values.nbytes, fs.values.shape[1])
"""


def bench_pixel_memory(size: int, threads: int, preset: str = "fast") -> dict:
    """Pixel features of a ``12 x size x size`` memory-mapped cube in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cube.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(12, size, size))
        rng = np.random.default_rng(0)
        for r in range(0, size, 256):
            mm[:, r : r + 256] = rng.random((12, min(256, size - r), size), dtype=np.float32)
        mm.flush()
        del mm
        out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(size), str(threads), preset],
                             capture_output=True, text=True, check=True)
    base, peak, dt, nbytes, dim = out.stdout.split()
    return {"base_mb": int(base) / 1024, "peak_mb": int(peak) / 1024, "seconds": float(dt),
            "out_mb": int(nbytes) / 2**20, "dim": int(dim), "px_per_s": size * size / float(dt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 on a shared machine: oversubscribed OpenMP is far slower)")
    ap.add_argument("--big", type=int, default=1830, help="side of the pixel-feature memory cube")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    th = args.threads
    lines = [
        "# bench_model: CAE training / features on this CPU",
        "",
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch threads {th}, load average at start "
        f"{os.getloadavg()[0]:.1f}, channels_last_3d on; random 12-band data; "
        f"windows/s after one warm-up step. Commit {git_head()}.",
        "",
        "| preset | params | task | scale | windows/s | seconds |",
        "|---|---|---|---|---|---|",
    ]
    runs = [
        ("thesis", "train (adadelta)", "2 steps x batch 2, 128x128x12",
         lambda: bench_train("thesis", 128, 2, 2, th)),
        ("thesis", "features f1", "4 windows 128x128x12",
         lambda: bench_features("thesis", 128, 4, th)),
        ("fast", "train (adadelta)", "4 steps x batch 8, 64x64x12",
         lambda: bench_train("fast", 64, 4, 8, th)),
        ("fast", "train, contiguous format", "2 steps x batch 8, 64x64x12",
         lambda: bench_train("fast", 64, 2, 8, th, False)),
        ("fast", "features f1", "32 windows 64x64x12",
         lambda: bench_features("fast", 64, 32, th)),
        ("fast", "features f1, contiguous format", "32 windows 64x64x12",
         lambda: bench_features("fast", 64, 32, th, channels_last=False)),
        ("fast", "features f2", "8 windows 128x128x12",
         lambda: bench_features("fast", 128, 8, th, "f2")),
    ]
    pix = ["", "Pixel features (fresh process, memory-mapped float32 cube, VmHWM = peak resident memory, "
              "'before' = after importing torch and building the model):", "",
              "| preset | cube | features | seconds | Mpx/s | RSS before | peak RSS | output array |",
              "|---|---|---|---|---|---|---|---|"]
    for preset, size in (("fast", args.big), ("thesis", 256)):
        m = bench_pixel_memory(size, th, preset)
        pix.append(
            f"| {preset} | 12x{size}x{size} | {m['dim']} | {m['seconds']:.1f} | {m['px_per_s'] / 1e6:.3f} | "
            f"{m['base_mb']:.0f} MB | {m['peak_mb']:.0f} MB | {m['out_mb']:.0f} MB |"
        )
        print(pix[-1], flush=True)
    for preset, task, scale, fn in runs:
        r = fn()
        n = count_parameters(CAE(PRESETS[preset]))
        lines.append(f"| {preset} | {n:,} | {task} | {scale} | {r['per_s']:.2f} | {r['seconds']:.1f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines + pix) + "\n"
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
