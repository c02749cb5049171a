"""Thread limits for numba kernels in dask workers (shared by batch tasks and block tasks)."""

from __future__ import annotations

import os


def limit_threads() -> None:
    """In a worker with ``OMP_NUM_THREADS`` set (dask's single-threaded workers: 1), numba's kernels use
    that many threads too (numba reads its own variable, and otherwise takes every core)."""
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not (limit.isdigit() and int(limit) > 0):
        return
    try:
        import numba

        numba.set_num_threads(min(int(limit), numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass
