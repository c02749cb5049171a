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
