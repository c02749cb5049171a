"""What every benchmark script shares: the repository, its commit, and where tables are saved."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def git_head() -> str:
    """The repository commit the numbers come from."""
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save_table(name: str, text: str) -> Path:
    """Print a benchmark's markdown and save it as ``benchmarks/results/NAME.md``."""
    print(text)
    out = RESULTS / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out
