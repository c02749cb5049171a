"""Every registered detector at growing scene sizes through the command line: time, peak memory, ratio
to global RX, growth.

Run: ``nice -n 10 python benchmarks/bench_scale.py [--quick] [--sizes12 256,512] [--sizes200 100]
[METHOD ...]``. Sizes: 256^2, 512^2, 1024^2, 1830^2 x 12 bands (``hsi-anomaly sample --rows N --cols N``,
ENVI, as a user makes them) and 100^2, 200^2, 400^2 x 200 bands (the same generator's 12 bands
interpolated onto 200 wavelengths, plus noise, written as ENVI). Each (method, size) is one
``hsi-anomaly score CUBE --method M --out MAP`` in a fresh process, as a user runs it (no warm-up:
imports, numba's cache, the disk and the output write included), timed with ``/usr/bin/time`` (wall,
CPU = user + system, the child's peak resident memory). Global RX is run the same way on the same cube
just before each method (so every ratio compares calls made under the same load). Growth exponent:
slope of log(time) over log(pixels) on the 12-band sizes measured. CAE methods use the committed sample
model ``sample_data/fast_model`` (trained on 12 bands: the 200-band cubes are skipped for them); a
12-band size predicted to take more than ``LIMIT_S`` from the smaller ones is skipped and marked so.
Saves benchmarks/results/bench_scale.md (commit, ``uptime`` before and after: the machine is shared).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, git_head, save_table

SIZES_12 = (256, 512, 1024, 1830)
SIZES_200 = (100, 200, 400)
LIMIT_S = 120.0
MODEL = REPO / "sample_data" / "fast_model"
CLI = [sys.executable, "-m", "napari_hsi_anomaly.cli.main"]


def _methods() -> list[str]:
    from napari_hsi_anomaly.core.detectors.registry import detector_names

    return list(detector_names())


def _needs_model(method: str) -> bool:
    from napari_hsi_anomaly.core.detectors.registry import get_detector

    return bool(get_detector(method).needs_model)


def make_cube(side: int, bands: int, folder: Path) -> Path:
    """An ENVI cube of ``side^2`` pixels and ``bands`` bands (made once per run): 12 bands from
    ``hsi-anomaly sample``, 200 interpolated from the same generator's 12."""
    out = folder / f"cube_{side}x{bands}"
    path = out / "scene_000.hdr"
    if path.exists():
        return path
    if bands == 12:
        subprocess.run([*CLI, "sample", "--rows", str(side), "--cols", str(side), "--out", str(out)],
                       check=True, capture_output=True, cwd=REPO)
        return path
    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.io import write_cube
    from napari_hsi_anomaly.core.scene import make_scene

    scene = make_scene(side, side, seed=0)
    data = np.asarray(scene.cube.data, dtype=np.float32)
    wl = np.asarray(scene.cube.wavelengths, dtype=np.float64)
    order = np.argsort(wl)
    new = np.linspace(wl.min(), wl.max(), bands)
    weights = np.stack([np.interp(new, wl[order], np.eye(wl.size)[i]) for i in range(wl.size)], 1)
    flat = data[order].reshape(wl.size, -1)
    data = (weights @ flat).reshape(bands, side, side).astype(np.float32)
    data += np.random.default_rng(1).normal(0, 0.002, data.shape).astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    write_cube(path, Cube(data, wavelengths=new))
    return path


def run_cli(method: str, path: Path, timeout: float) -> dict:
    """One ``hsi-anomaly score`` in a fresh process: wall and CPU seconds, peak RSS (MB)."""
    args = ["score", str(path), "--method", method, "--out", str(path.parent / f"{method}.npy")]
    if _needs_model(method):
        args += ["--model", str(MODEL)]
    cmd = ["/usr/bin/time", "-f", "TIME %e %U %S %M", *CLI, *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    m = re.search(r"TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", res.stderr)
    if res.returncode != 0 or not m:
        tail = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("TIME")] or ["?"]
        return {"error": tail[-1][:120]}
    wall, user, system, rss = m.groups()
    return {"seconds": float(wall), "cpu": float(user) + float(system), "peak_mb": int(rss) / 1024}


def growth(points: list[tuple[int, float]]) -> str:
    if len(points) < 2:
        return "-"
    x = np.log([p for p, _ in points])
    y = np.log([t for _, t in points])
    return f"{np.polyfit(x, y, 1)[0]:.2f}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _sizes(argv: list[str], flag: str, default: tuple[int, ...]) -> list[int]:
    if flag in argv:
        return [int(v) for v in argv[argv.index(flag) + 1].split(",") if v]
    return list(default)


def main(argv: list[str]) -> str:
    quick = "--quick" in argv
    s12 = _sizes(argv, "--sizes12", SIZES_12[:2] if quick else SIZES_12)
    s200 = _sizes(argv, "--sizes200", SIZES_200[:1] if quick else SIZES_200)
    values = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--sizes12", "--sizes200")}
    chosen = [a for a in argv if not a.startswith("--") and a not in values]
    methods = chosen or _methods()
    sizes = [(s, 12) for s in s12] + [(s, 200) for s in s200]
    head, load_before, t_all = git_head(), uptime(), time.perf_counter()
    name = "bench_scale_quick" if quick else "bench_scale"
    folder = Path(tempfile.gettempdir()) / "hsi_bench_scale_cli"
    folder.mkdir(exist_ok=True)
    rows: list[str] = []
    exps: dict[str, str] = {}
    order = [m for m in methods if m != "rx" and not _needs_model(m)]
    order += [m for m in methods if _needs_model(m)]  # the slow CAE methods last
    rx_rows: dict[tuple[int, int], list[float]] = {}
    for method in ["rx", *order]:
        done: list[tuple[int, float]] = []
        for side, bands in sizes:
            key = f"{side}^2 x {bands}"
            if _needs_model(method) and bands != 12:
                continue  # the sample model is trained on 12 bands
            if bands == 12 and done and _needs_model(method):
                p0, t0 = done[-1]
                exponent = max(1.0, float(growth(done))) if len(done) > 1 else 1.0
                predicted = t0 * (side * side / p0) ** exponent
                if predicted > LIMIT_S:
                    rows.append(f"| {method} | {key} | skipped: predicted {predicted:.0f} s > "
                                f"{LIMIT_S:.0f} s | | | | |")
                    continue
            path = make_cube(side, bands, folder)
            rx = run_cli("rx", path, timeout=600) if method != "rx" else None  # same load as the method
            res = run_cli(method, path, timeout=max(4 * LIMIT_S, 300))
            if "error" in res:
                rows.append(f"| {method} | {key} | failed: {res['error']} | | | | |")
                continue
            if method == "rx":
                rx = res
            rx_rows.setdefault((side, bands), []).append(rx["seconds"] if rx and "seconds" in rx else np.nan)
            t = res["seconds"]
            ratio = t / rx["seconds"] if rx and "seconds" in rx else float("nan")
            cratio = res["cpu"] / rx["cpu"] if rx and "cpu" in rx else float("nan")
            rows.append(f"| {method} | {key} | {t:.2f} s | {res['cpu']:.2f} s | {ratio:.1f}x | "
                        f"{cratio:.1f}x | {res['peak_mb']:.0f} MB |")
            if bands == 12:
                done.append((side * side, t))
            print(rows[-1], flush=True)
        exps[method] = growth(done)
        save_table(name, _table(head, load_before, t_all, rows, exps, rx_rows))
    return save_table(name, _table(head, load_before, t_all, rows, exps, rx_rows))


def _table(head: str, load_before: str, t_all: float, rows: list[str], exps: dict[str, str],
           rx_rows: dict[tuple[int, int], list[float]]) -> str:
    spread = ", ".join(f"{s}^2 x {b}: {np.nanmin(v):.2f}-{np.nanmax(v):.2f} s"
                       for (s, b), v in rx_rows.items() if len(v) > 1)
    lines = [
        f"## Scale: every registered detector through the command line (commit {head})",
        "",
        f"Machine: 2 CPU cores (shared), no GPU. Load before: `{load_before}`; after: "
        f"`{uptime()}` ({time.perf_counter() - t_all:.0f} s in all). One fresh `hsi-anomaly score` "
        "process per cell, as a user runs it (no warm-up: imports, numba's cache, reading the cube and "
        "writing the map included); wall and CPU (user + system) from `/usr/bin/time`, peak = the "
        "process's maximum resident memory. Ratios: over global RX run on the same cube right before "
        f"the method (the same load). Global RX over the run: {spread or '-'}. CAE methods: the sample "
        "model `sample_data/fast_model` (12 bands: not run on the 200-band cubes).",
        "",
        "| method | cube | wall | CPU | wall / RX | CPU / RX | peak memory |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Growth exponent (wall ~ pixels^e, 12-band sizes measured): "
        + ", ".join(f"{m} {e}" for m, e in exps.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
