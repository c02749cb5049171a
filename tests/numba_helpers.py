"""Running code in a fresh process and reading which of the package's numba kernels hit or missed
numba's on-disk cache there (tests that a second process compiles nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DUMP = r"""
import gc as _gc, json as _json
from numba.core.dispatcher import Dispatcher as _Dispatcher
_hits, _misses = {}, {}
for _obj in _gc.get_objects():
    if isinstance(_obj, _Dispatcher) and _obj.py_func.__module__.startswith("napari_hsi_anomaly"):
        _name = _obj.py_func.__module__ + "." + _obj.py_func.__qualname__
        _hits[_name] = sum(_obj.stats.cache_hits.values())
        _misses[_name] = sum(_obj.stats.cache_misses.values())
print(_json.dumps({"hits": _hits, "misses": _misses}))
"""


def cache_stats(code: str, cache: Path) -> dict:
    """Run ``code`` in a new Python process with ``NUMBA_CACHE_DIR=cache``; returns ``{"hits": {kernel:
    n}, "misses": {kernel: n}}`` for every kernel of the package it used (module.qualname)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code + DUMP], capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


SEARCH_CODE = r"""
import numpy as np
from napari_hsi_anomaly.core.scoring.glosh import neighbours
rng = np.random.default_rng(0)
fit, q = rng.normal(0, 1, (2000, FEATURES)), rng.normal(0, 1, (6000, FEATURES))
search = neighbours.NeighbourSearch(fit)
assert search.grouped(len(q))
neighbours.mr_neighbours(search, search.query(fit, 10)[0][:, -1], 10, q)
"""


def search_cache_runs(features: int, module: str, cache: Path) -> list[dict[str, list[int]]]:
    """Two fresh processes (one numba cache) that run GLOSH's neighbour search on ``features``
    features; per process, ``{kernel: [hits, misses]}`` for the kernels of ``core.scoring.glosh.module``."""
    prefix = f"napari_hsi_anomaly.core.scoring.glosh.{module}."
    runs = []
    for _ in range(2):
        stats = cache_stats(SEARCH_CODE.replace("FEATURES", str(int(features))), cache)
        runs.append({k[len(prefix):]: [stats["hits"][k], stats["misses"][k]] for k in stats["hits"]
                     if k.startswith(prefix)})
    return runs
