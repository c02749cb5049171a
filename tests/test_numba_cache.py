"""Every numba kernel of the package loads from numba's cache in a new process: the second of two
fresh processes (same ``NUMBA_CACHE_DIR``) that score a small cube with the default detector compiles
nothing and writes no new cache file."""

from pathlib import Path

from numba_helpers import cache_stats

CODE = r"""
import gc, json
import numpy as np
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.scoring.detect import detect

rng = np.random.default_rng(0)
data = rng.normal(100.0, 5.0, (12, 48, 48)).astype(np.float32)
data[:, 20:22, 30:32] += 60.0
det = detect(Cube(data), p_min=20)
det.rescore(30)
"""


def _run(cache: Path) -> dict:
    return cache_stats(CODE, cache)


def _files(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}


def test_second_process_compiles_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    first = _run(cache)
    # the first process compiled (so the counters see compiles), among them the attribute filters' kernel
    assert sum(first["misses"].values()) > 0, first
    assert any("morphology" in n for n, v in first["misses"].items() if v), first
    files = _files(cache)
    second = _run(cache)
    assert {n: v for n, v in second["misses"].items() if v} == {}, second
    # kernels called only from other kernels come with their caller's cache entry; the callers hit
    tiles = "napari_hsi_anomaly.core.scoring.morphology._polarity"  # the attribute filters' trees
    assert second["hits"].get(tiles, 0) > 0, second
    assert sum(second["hits"].values()) > 0, second
    assert _files(cache) == files  # no new or rewritten cache entry
