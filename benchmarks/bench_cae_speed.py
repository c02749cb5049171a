"""Where the CLI's CAE ``glosh`` per pixel spends its time: the stages of one ``hsi-anomaly score
--method glosh --feature pixel --model sample_data/fast_model`` call, timed in one process.

Run: ``nice python benchmarks/bench_cae_speed.py SCENE.hdr [--name bench_cae_speed_stages]``.
Stages: ``features`` (the CAE's pixel features, its reconstruction and the ``PixelSpace`` coordinates:
everything before GLOSH), ``glosh fit`` (the draw, the fitted rows' ``k + 1`` neighbours and the
minimum spanning tree), ``glosh prediction search`` (each other pixel's nearest mutual-reachability
neighbour: ``GloshScorer._prepare_rest``) and the rest (condensing, scores, writing). Wall and CPU
(user + system of the process, every thread) per stage, and global RX in the same process for scale.
Saves benchmarks/results/NAME.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from common import REPO, git_head, save_table


def clock() -> tuple[float, float]:
    t = os.times()
    return time.perf_counter(), t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    ap.add_argument("--name", default="bench_cae_speed_stages")
    args = ap.parse_args()
    from napari_hsi_anomaly.cli.main import main as cli
    from napari_hsi_anomaly.core.scoring.glosh import scorer

    marks: list[tuple[str, float, float]] = []
    prepare, init = scorer.GloshScorer._prepare_rest, scorer.GloshScorer.__init__

    def timed_init(self, *a, **kw):
        marks.append(("features", *clock()))
        init(self, *a, **kw)

    def timed_prepare(self, *a, **kw):
        marks.append(("glosh fit", *clock()))
        prepare(self, *a, **kw)
        marks.append(("glosh prediction search", *clock()))

    scorer.GloshScorer.__init__ = timed_init
    scorer.GloshScorer._prepare_rest = timed_prepare
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_cae_speed.npy"
    sys.argv = ["hsi-anomaly", "score", str(args.scene), "--method", "rx", "--out", str(out)]
    w0, c0 = clock()
    with contextlib.suppress(SystemExit):
        cli()
    w1, c1 = clock()
    sys.argv = ["hsi-anomaly", "score", str(args.scene), "--method", "glosh", "--feature", "pixel",
                "--model", str(REPO / "sample_data" / "fast_model"), "--out", str(out)]
    start = clock()
    with contextlib.suppress(SystemExit):
        cli()
    end = clock()
    rows = [("global RX (whole call)", w1 - w0, c1 - c0)]
    prev = start
    for name, w, c in marks:
        rows.append((name, w - prev[0], c - prev[1]))
        prev = (w, c)
    rows.append(("rest (condense, scores, write)", end[0] - prev[0], end[1] - prev[1]))
    total_w, total_c = end[0] - start[0], end[1] - start[1]
    lines = [f"# CAE glosh per pixel: stages of one CLI call ({args.scene.name})", "",
             f"Commit {git_head()}; one process (imports and numba's cache warm from the RX call before); "
             f"`uptime`: `{os.popen('uptime').read().strip()}`.", "",
             "| stage | wall s | CPU s | share of CPU |", "|---|---|---|---|"]
    for name, w, c in rows:
        share = "-" if name.startswith("global") else f"{100 * c / total_c:.0f} %"
        lines.append(f"| {name} | {w:.2f} | {c:.2f} | {share} |")
    lines.append(f"| CAE glosh total | {total_w:.2f} | {total_c:.2f} | 100 % |")
    save_table(args.name, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
