"""``hsi-anomaly COMMAND --help`` start-up time, every command, in fresh interpreters.

Target (issue 21): every ``--help`` under 0.5 s. Each command's ``--help`` runs ``--repeat`` times in a
new ``python -m napari_hsi_anomaly.cli.main`` process; the best wall time is kept (the machine may be
busy). The same is measured for ``python -c "import numpy"`` as the floor a Python start with NumPy
costs here, and the heavy modules each ``--help`` imported (torch, hdbscan, dask, napari) are listed
from ``-X importtime`` (none should be).

Run: ``python benchmarks/bench_help.py [--repeat 5]``; saves benchmarks/results/bench_help.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "hdbscan", "dask", "distributed", "napari", "sklearn", "numba")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def best_time(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def heavy_imports(cmd: list[str]) -> list[str]:
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=_env(), capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    return sorted(h for h in HEAVY if h in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from napari_hsi_anomaly.cli.main import COMMANDS

    py = sys.executable
    floor = best_time([py, "-c", "import numpy"], args.repeat)
    rows = []
    for name in [None, *COMMANDS]:
        cmd = [py, "-m", "napari_hsi_anomaly.cli.main", *([name] if name else []), "--help"]
        t = best_time(cmd, args.repeat)
        rows.append((name or "(none)", t, heavy_imports(cmd)))
        print(f"{name or '(none)':10s} {t:6.3f} s  heavy imports: {', '.join(rows[-1][2]) or 'none'}")
    worst = max(t for _, t, _ in rows)
    lines = [
        "# `hsi-anomaly COMMAND --help` start-up (bench_help.py)",
        "",
        f"Best of {args.repeat} fresh processes each; `python -c \"import numpy\"` here: {floor:.3f} s. "
        f"Target: every `--help` under 0.5 s; slowest {worst:.3f} s "
        f"({'met' if worst < 0.5 else 'NOT met'}).",
        "",
        "| command | wall (s) | x numpy floor | heavy modules imported |",
        "|---|---:|---:|---|",
        *[f"| {n} | {t:.3f} | {t / floor:.2f} | {', '.join(h) or 'none'} |" for n, t, h in rows],
        "",
    ]
    out = ROOT / "benchmarks" / "results" / "bench_help.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
