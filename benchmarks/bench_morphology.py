"""The attribute filters (``morphology.small_objects_multi``) on a real scene, and the CLI around them.

Run: ``nice python benchmarks/bench_morphology.py --scene CUBE [--compare-tree DIR] [--repeat 2]``.
In each round a fresh process (per source tree: this one and, with ``--compare-tree``, another one from
``git archive OLD | tar -x -C DIR``) loads the scene, fits the attribute detector's PCA, and times on
its component images: ``small_objects_multi`` per image (areas 26/101/401, one thread), the whole
``small_object_map`` (its default threads) and ``glosh_peaks``-like one-image filtering with two threads,
each as CPU seconds (the process's) and wall, next to ``detect(cube, "rx")`` (global RX, its second
call) in the same process. Then ``hsi-anomaly score CUBE`` (the default) and ``--method rx`` run as a
user runs them (new process, ``/usr/bin/time -v``; each tree's CLI runs once untimed first, so that
numba's cache is filled). The trees' maps are compared bit for bit. Saves
benchmarks/results/bench_morphology.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_cli import timed, uptime
from common import REPO, git_head, save_table

CHILD = r"""
import json, sys, time
import numpy as np
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.detectors.attribute import area_ladder, project, small_object_map
from napari_hsi_anomaly.core.scoring import detect
from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

cube = read_cube(sys.argv[1])
out = sys.argv[2]
small_objects_multi(np.arange(16.0).reshape(4, 4), [3, 5])  # numba's cache loaded
scorer = get_detector("attribute")().fit(cube)
coords = project(cube, scorer.mean, scorer.basis)
valid = cube.valid_mask()
rows, cols = valid.shape
sizes = area_ladder(int(scorer.params["max_area"]))
areas = [s + 1 for s in sizes]
res = {}

def clock(name, fn):
    c, w = time.process_time(), time.perf_counter()
    r = fn()
    res[name] = (time.perf_counter() - w, time.process_time() - c)
    return r

detect(cube, "rx")  # once untimed: its first call loads more than numba's cache
clock("rx", lambda: detect(cube, "rx"))
imgs = [np.array(coords[:, j].reshape(rows, cols), np.float64) for j in range(coords.shape[1])]
one = [0.0, 0.0]
for j, img in enumerate(imgs):
    clock("one", lambda: small_objects_multi(img, areas, float(scorer.steps[j])))
    one = [one[0] + res["one"][0], one[1] + res["one"][1]]
res["one"] = tuple(one)
m = clock("map", lambda: small_object_map(coords, valid, sizes, scorer.steps))
two = clock("two", lambda: small_objects_multi(imgs[0], areas, None, threads=2))
np.save(out + "_map.npy", m)
np.save(out + "_two.npy", np.stack(two))
print(json.dumps(res))
"""

PARTS = {"one": "small_objects_multi, each component image, 1 thread (sum)",
         "map": "small_object_map (all components, default threads)",
         "two": "small_objects_multi, one image, threads=2 (as glosh_peaks)",
         "rx": "detect(cube, 'rx') in the same process"}


def child(scene: str, tree: Path, out: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    p = subprocess.run([sys.executable, "-c", CHILD, scene, out], capture_output=True, text=True, cwd=tree,
                       env=env)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", required=True)
    ap.add_argument("--compare-tree", type=Path)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    trees = {"this": REPO} | ({"compare": args.compare_tree.resolve()} if args.compare_tree else {})
    before = uptime()
    kern: dict[str, dict[str, list]] = {t: {} for t in trees}
    cli: dict[str, dict[str, list]] = {t: {} for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for tree in trees.values():  # numba's cache filled for each tree's CLI (not timed)
            timed(["score", args.scene, "--out", f"{tmp}/warm.npy"], tree)
        for _ in range(args.repeat):
            for t, tree in trees.items():
                r = child(args.scene, tree, f"{tmp}/{t}")
                for part, (wall, cpu) in r.items():
                    kern[t].setdefault(part, []).append((wall, cpu, wall / r["rx"][0], cpu / r["rx"][1]))
                for name, extra in (("rx", ["--method", "rx"]), ("default", [])):
                    argv = ["score", args.scene, "--out", f"{tmp}/{t}_{name}.npy", *extra]
                    cli[t].setdefault(name, []).append(timed(argv, tree))
        same = {what: all(np.array_equal(np.load(f"{tmp}/this_{what}.npy"), np.load(f"{tmp}/{t}_{what}.npy"),
                                          equal_nan=True) for t in trees)
                for what in ("map", "two", "default")}
    med = statistics.median
    lines = [f"# Attribute filters on `{Path(args.scene).name}`, commit {git_head()}, {args.repeat} rounds",
             "", f"Load before: `{before}`; after: `{uptime()}`.",
             "Medians over rounds; ratios: over global RX's time in the same process (kernels) or round "
             "(CLI). "
             f"Trees: {', '.join(f'{t} = `{p}`' for t, p in trees.items())}.", "",
             "| tree | what | wall s | CPU s | wall / RX | CPU / RX | peak RSS MB (CLI) |",
             "|---|---|---|---|---|---|---|"]
    for t in trees:
        for part, label in PARTS.items():
            v = kern[t][part]
            lines.append(f"| {t} | {label} | {med(x[0] for x in v):.2f} | {med(x[1] for x in v):.2f} | "
                         f"{med(x[2] for x in v):.2f} | {med(x[3] for x in v):.2f} | - |")
    for t in trees:
        rx = cli[t]["rx"]
        for name, v in cli[t].items():
            lines.append(f"| {t} | CLI `score` {name} | {med(x[0] for x in v):.2f} | "
                         f"{med(x[1] for x in v):.2f} | "
                         f"{med(a[0] / b[0] for a, b in zip(v, rx)):.2f} | "
                         f"{med(a[1] / b[1] for a, b in zip(v, rx)):.2f} | {max(x[2] for x in v):.0f} |")
    lines += ["", "Maps equal bit for bit across trees: " + ", ".join(f"{k} {v}" for k, v in same.items()),
              ""]
    save_table("bench_morphology", "\n".join(lines))


if __name__ == "__main__":
    main()
