"""Every registered detector at growing scene sizes: time, peak memory, ratio to global RX, growth.

Run: ``nice -n 10 python benchmarks/bench_scale.py [--quick] [METHOD ...]``. Sizes: 256^2, 512^2,
1024^2, 1830^2 x 12 bands (``core.scene.make_scene``) and 100^2, 200^2, 400^2 x 200 bands (the same
generator's 12 bands interpolated onto 200 wavelengths, plus noise). Each (method, size) runs in a fresh
process: the method is first run on a 48x48 crop (imports, JIT caches, torch start-up), then timed on
the whole cube with ``detect(cube, method)`` (fit on the cube, score it). Peak memory is the child's
``VmHWM`` (the cube itself included; "+" column: above the process's size before ``detect``).
Global RX is timed in the same way on the same cube, and each method's time is given as a multiple of
it. Growth exponent: slope of log(time) over log(pixels) on the 12-band sizes measured. CAE methods
use the committed sample model ``sample_data/fast_model`` (trained on 12 bands); a 12-band size
predicted to take more than ``LIMIT_S`` from the smaller ones is skipped for them and marked so.
Saves benchmarks/results/bench_scale.md (commit, ``uptime`` before and after: the machine is shared).
"""

from __future__ import annotations

import json
import resource
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


def _methods() -> list[str]:
    try:
        from napari_hsi_anomaly.core.detectors.registry import detector_names

        return list(detector_names())
    except ImportError:  # before the registry existed
        from napari_hsi_anomaly.core.scoring import METHODS

        return list(METHODS)


def _needs_model(method: str) -> bool:
    try:
        from napari_hsi_anomaly.core.detectors.registry import get_detector

        return bool(get_detector(method).needs_model)
    except ImportError:
        from napari_hsi_anomaly.core.scoring.detect import MODEL_METHODS

        return method in MODEL_METHODS


def make_cube(side: int, bands: int, folder: Path) -> Path:
    """A generated ``(bands, side, side)`` float32 cube saved as .npy (made once per run)."""
    path = folder / f"cube_{side}x{bands}.npy"
    if path.exists():
        return path
    from napari_hsi_anomaly.core.scene import make_scene

    scene = make_scene(side, side, seed=0)
    data = np.asarray(scene.cube.data, dtype=np.float32)
    if bands != data.shape[0]:
        wl = np.asarray(scene.cube.wavelengths, dtype=np.float64)
        order = np.argsort(wl)
        new = np.linspace(wl.min(), wl.max(), bands)
        weights = np.stack([np.interp(new, wl[order], np.eye(wl.size)[i]) for i in range(wl.size)], 1)
        flat = data[order].reshape(wl.size, -1)
        data = (weights @ flat).reshape(bands, side, side).astype(np.float32)
        data += np.random.default_rng(1).normal(0, 0.002, data.shape).astype(np.float32)
    np.save(path, data)
    return path


def _hwm_mb() -> float:
    """This process's peak resident memory (VmHWM: reset at exec, unlike ru_maxrss, which a child
    inherits from the parent it was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, path: str) -> None:
    """Run in a fresh process: warm up on a crop, then time ``detect`` on the whole cube."""
    import torch

    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.scoring import detect

    torch.set_num_threads(2)
    data = np.load(path)
    kwargs = {}
    if _needs_model(method):
        from napari_hsi_anomaly.core.model import load_model

        kwargs["model"] = load_model(MODEL)
    crop = Cube(np.ascontiguousarray(data[:, :48, :48]))
    detect(crop, method, **kwargs)
    before = _hwm_mb()
    t = time.perf_counter()
    detect(Cube(data), method, **kwargs)
    seconds = time.perf_counter() - t
    peak = _hwm_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "before_mb": before}))


def run_child(method: str, path: Path, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, str(path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail[:120]}
    return json.loads(lines[-1])


def growth(points: list[tuple[int, float]]) -> str:
    if len(points) < 2:
        return "-"
    x = np.log([p for p, _ in points])
    y = np.log([t for _, t in points])
    return f"{np.polyfit(x, y, 1)[0]:.2f}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str]) -> str:
    quick = "--quick" in argv
    chosen = [a for a in argv if not a.startswith("--")]
    methods = chosen or _methods()
    sizes = [(s, 12) for s in (SIZES_12[:2] if quick else SIZES_12)]
    sizes += [(s, 200) for s in (SIZES_200[:1] if quick else SIZES_200)]
    head, load_before, t_all = git_head(), uptime(), time.perf_counter()
    name = "bench_scale_quick" if quick else "bench_scale"
    folder = Path(tempfile.gettempdir()) / "hsi_bench_scale"
    folder.mkdir(exist_ok=True)
    rx_time: dict[tuple[int, int], float] = {}
    rows: list[str] = []
    exps: dict[str, str] = {}
    order = ["rx"] + [m for m in methods if m != "rx" and not _needs_model(m)]
    order += [m for m in methods if _needs_model(m)]  # the slow CAE methods last
    for method in order:
        done: list[tuple[int, float]] = []
        for side, bands in sizes:
            key = f"{side}^2 x {bands}"
            if bands == 12 and done and _needs_model(method):
                p0, t0 = done[-1]
                exponent = max(1.0, float(growth(done))) if len(done) > 1 else 1.0
                predicted = t0 * (side * side / p0) ** exponent
                if predicted > LIMIT_S:
                    rows.append(f"| {method} | {key} | skipped: predicted {predicted:.0f} s > "
                                f"{LIMIT_S:.0f} s | | | |")
                    continue
            path = make_cube(side, bands, folder)
            res = run_child(method, path, timeout=max(4 * LIMIT_S, 300))
            if "error" in res:
                rows.append(f"| {method} | {key} | failed: {res['error']} | | | |")
                continue
            t = res["seconds"]
            if method == "rx":
                rx_time[(side, bands)] = t
            ratio = t / rx_time[(side, bands)] if (side, bands) in rx_time else float("nan")
            rows.append(f"| {method} | {key} | {t:.2f} s | {ratio:.1f}x | {res['peak_mb']:.0f} MB | "
                        f"+{res['peak_mb'] - res['before_mb']:.0f} MB |")
            if bands == 12:
                done.append((side * side, t))
            print(rows[-1], flush=True)
        exps[method] = growth(done)
        save_table(name, _table(head, load_before, t_all, rows, exps))
    return save_table(name, _table(head, load_before, t_all, rows, exps))


def _table(head: str, load_before: str, t_all: float, rows: list[str], exps: dict[str, str]) -> str:
    lines = [
        f"## Scale: every registered detector (commit {head})",
        "",
        f"Machine: 2 CPU cores, no GPU. Load before: `{load_before}`; after: "
        f"`{uptime()}` ({time.perf_counter() - t_all:.0f} s in all). One fresh process per cell, "
        "warmed on a 48x48 crop; `detect(cube, method)` = fit on the cube and score it. Peak = the "
        "process's VmHWM with the cube loaded; + = above the process before `detect`. Compare timings "
        "only with runs under a similar load (see the load averages).",
        "",
        "| method | cube | time | / global RX | peak memory | + |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Growth exponent (time ~ pixels^e, 12-band sizes measured): "
        + ", ".join(f"{m} {e}" for m, e in exps.items()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])
