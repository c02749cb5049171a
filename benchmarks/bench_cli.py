"""The command line as a user runs it: ``hsi-anomaly score`` in fresh processes, against global RX.

Run: ``nice python benchmarks/bench_cli.py [--size 1830] [--repeat 3] [--cae] [--keep DIR]``.
A scene from ``hsi-anomaly sample --rows SIZE --cols SIZE`` (12 bands) is scored, in each round, once
with ``--method rx`` and once with the default detector (and with ``--cae``: ``--method glosh --feature
pixel --model sample_data/fast_model``), each in a new process (no warm-up: imports, numba's cache and
the disk as a user meets them). Wall time and peak memory come from ``/usr/bin/time -v`` (the child's
maximum resident set); each method's time is also given as a multiple of RX's in the same round, since
the machine is shared (``uptime`` before and after is saved with the table). The maps of the last
round are compared with ``--baseline DIR`` (maps saved by an earlier ``--keep DIR``): largest absolute
difference and AUC against the scene's ground truth. ``--compare-tree DIR`` also runs each method
from another source tree (``git archive OLD | tar -x -C DIR``) in every round, and compares the maps
with its. Saves benchmarks/results/bench_cli.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, git_head, save_table

CLI = [sys.executable, "-m", "napari_hsi_anomaly.cli.main"]
RUNS = {
    "rx": ["--method", "rx"],
    "default": [],
    "cae-glosh-pixel": ["--method", "glosh", "--feature", "pixel", "--model",
                        str(REPO / "sample_data" / "fast_model")],
}


def timed(argv: list[str], tree: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one CLI call in a new process
    (``tree``: run that source tree's package instead, for a same-round comparison)."""
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
    p = subprocess.run(["/usr/bin/time", "-v", *CLI, *argv], capture_output=True, text=True,
                       cwd=tree or REPO, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{p.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", p.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", p.stderr)
    assert wall and rss and user and system, p.stderr[-2000:]
    h, m, s = wall.groups()
    cpu = float(user.group(1)) + float(system.group(1))
    return int(h or 0) * 3600 + int(m) * 60 + float(s), cpu, int(rss.group(1)) / 1024


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1830)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cae", action="store_true", help="also the CAE glosh per pixel (sample model)")
    ap.add_argument("--name", default="bench_cli", help="results/NAME.md")
    ap.add_argument("--keep", type=Path, help="keep the scene and the last round's maps here")
    ap.add_argument("--baseline", type=Path, help="maps of an earlier --keep to compare with")
    ap.add_argument("--compare-tree", type=Path, help="also the default from this source tree (e.g. a "
                    "`git archive` of an older commit) in every round; its map is the baseline")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_cli_"))
    work.mkdir(parents=True, exist_ok=True)
    scene = work / "scene_000.hdr"
    if not scene.exists():
        subprocess.run([*CLI, "sample", "--rows", str(args.size), "--cols", str(args.size), "--out",
                        str(work)], check=True, capture_output=True, cwd=REPO)
    methods = ["default"] + (["cae-glosh-pixel"] if args.cae else [])
    names = ["rx", *methods] + ([f"{m}-compare" for m in methods] if args.compare_tree else [])
    before = uptime()
    rows: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    for _ in range(args.repeat):
        for name in names:
            tree = args.compare_tree if name.endswith("-compare") else None
            run_args = RUNS[name.removesuffix("-compare")]
            out = str(work / f"{name}.npy")
            rows[name].append(timed(["score", str(scene), *run_args, "--out", out], tree))
            print(name, rows[name][-1], flush=True)
    after = uptime()
    gt_file = work / "scene_000_gt.npy"
    gt = np.load(gt_file).ravel() > 0 if gt_file.exists() else None
    lines = [f"# CLI end to end, {args.size}x{args.size}x12 (`hsi-anomaly sample`), fresh process per call",
             "", f"Commit {git_head()}; {args.repeat} rounds; load before: `{before}`; after: `{after}`.",
             "Ratios: the call's wall (CPU: user + system) time over global RX's in the same round, median "
             "over rounds (min-max); CPU time is the steadier on a shared machine. "
             f"*-compare: the same call from {args.compare_tree}.", "",
             "| what | wall s (median) | wall ratio to RX | CPU s (median) | CPU ratio to RX | peak RSS MB"
             " (max) | AUC | max abs diff to baseline |", "|---|---|---|---|---|---|---|---|"]
    from sklearn.metrics import roc_auc_score

    baseline = args.baseline
    if args.compare_tree:
        baseline = work / "compare"
        baseline.mkdir(exist_ok=True)
        for m in methods:
            (baseline / f"{m}.npy").write_bytes((work / f"{m}-compare.npy").read_bytes())
    for name in names:
        walls = np.array([w for w, _, _ in rows[name]])
        cpus = np.array([c for _, c, _ in rows[name]])
        ratios = walls / np.array([w for w, _, _ in rows["rx"]])
        cratios = cpus / np.array([c for _, c, _ in rows["rx"]])
        peak = max(m for _, _, m in rows[name])
        out = np.load(work / f"{name}.npy")
        auc = f"{roc_auc_score(gt, np.nan_to_num(out.ravel())):.4f}" if gt is not None else "-"
        diff = "-"
        if baseline and (baseline / f"{name}.npy").exists():
            diff = f"{np.nanmax(np.abs(out - np.load(baseline / f'{name}.npy'))):.2e}"
        lines.append(f"| {name} | {np.median(walls):.2f} | {np.median(ratios):.2f} "
                     f"({ratios.min():.2f}-{ratios.max():.2f}) | {np.median(cpus):.2f} | "
                     f"{np.median(cratios):.2f} ({cratios.min():.2f}-{cratios.max():.2f}) | {peak:.0f} | "
                     f"{auc} | {diff} |")
    save_table(args.name, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
