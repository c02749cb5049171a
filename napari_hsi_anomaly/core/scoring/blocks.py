"""Scenes too large for memory: a fitted detector applied row block by row block.

``iter_score_blocks(scorer, cube)`` scores a (memory-mapped) cube in row blocks through any registered
detector's ``Scorer`` (``core.detectors``): each block, with a halo of rows for windowed and spatial
detectors (local RX, attribute filters), is a view of the cube read from disk on its own; its map is
written into one float32 ``(rows, cols)`` output (an array or a ``np.memmap``). Only one block's
working set is in memory at a time, so the peak grows with the block, not the scene.

With a dask ``client`` the blocks are dask tasks instead: the fitted model goes to the workers once
(``client.scatter`` of its ``state()``, rebuilt once per worker), each task gets its block's pixels
(read here, so workers need not see the file) and returns its rows of the map; at most a few blocks per
worker are in flight, each released as it completes, so one tile spreads over every worker.

``iter_detect_blocks(cube, method)`` is the one-scene convenience: the normal model is fitted on
``reference_strips`` (evenly spaced full-width strips of the scene, about ``REFERENCE_PIXELS`` pixels in
all), then every block is scored against it (GLOSH parts through ``GloshScorer.predictor``). A scene
that fits the reference budget is fitted and scored whole, exactly as ``iter_detect``.
"""

from __future__ import annotations

import gc
import threading
import uuid
from collections import deque
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube, rows_view
from napari_hsi_anomaly.core.progress import Progress

BLOCK_PIXELS = 2_000_000  # target pixels per scored block (plus the halo)
REFERENCE_PIXELS = 4_000_000  # pixels of the scene the normal model is fitted on (in strips)
N_STRIPS = 8


def halo_rows(scorer: Any) -> int:
    """Rows a block needs beyond its own for windowed and spatial parts (``Scorer.halo``: half the
    local RX outer window, the attribute filter's ``max_area``)."""
    return max([int(part.halo()) for part in scorer.parts()] + [int(scorer.halo())])


def reference_strips(cube: Cube, pixels: int = REFERENCE_PIXELS, n_strips: int = N_STRIPS,
                     min_rows: int = 64) -> list[Cube]:
    """Evenly spaced full-width strips of ``cube`` holding about ``pixels`` pixels (the whole cube if
    it is that small). Strips are at least ``min_rows`` high (windows fit inside them)."""
    if cube.rows * cube.cols <= pixels:
        return [cube]
    height = max(min_rows, pixels // max(1, n_strips * cube.cols))
    n = max(1, min(n_strips, pixels // max(1, height * cube.cols)))
    if n * height >= cube.rows:
        return [cube]
    starts = np.linspace(0, cube.rows - height, n).round().astype(int)
    return [rows_view(cube, int(s), int(s) + height) for s in starts]


def _block_ranges(rows: int, cols: int, block_pixels: int, halo: int) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, a0, a1)``: the rows a block scores and the rows it reads (with the halo)."""
    step = max(1, block_pixels // max(1, cols))
    return [(r0, min(rows, r0 + step), max(0, r0 - halo), min(rows, r0 + step + halo))
            for r0 in range(0, rows, step)]


def _score_block(scorer: Any, block: Cube, lo: int, hi: int, p_min: int | None) -> np.ndarray:
    """Rows ``[lo, hi)`` of ``block``'s map (0 where the block has no valid pixel)."""
    from napari_hsi_anomaly.core.progress import run

    if not block.valid_mask()[lo:hi].any():
        return np.zeros((hi - lo, block.cols), np.float32)
    det = run(scorer.iter_score(block, rows=(lo, hi)))  # each part reads only its own halo
    if p_min is not None and getattr(det, "can_rescore", False):
        det.rescore(int(p_min))
    out = np.array(det.score_map, dtype=np.float32)
    del det
    gc.collect()  # any reference cycle through a Detection: without a collection its per-pixel
    # arrays (~25 bytes a pixel) outlive the block
    return out


def iter_score_blocks(
    scorer: Any,
    cube: Cube | np.ndarray,
    *,
    block_pixels: int = BLOCK_PIXELS,
    p_min: int | None = None,
    out: np.ndarray | None = None,
    client: Any = None,
) -> Generator[Progress, None, np.ndarray]:
    """Score ``cube`` with a fitted ``scorer`` in row blocks; returns the ``(rows, cols)`` float32 map.

    ``p_min``: a GLOSH-based detector's minimum cluster size (None: the detector's own choice, the
    same for every block since it comes from the reference). ``out``: where to write (e.g. a memmap).
    ``client``: a dask client; the blocks are its tasks (see the module docstring).
    """
    cube = scorer.check_target(as_cube(cube, "Scoring"))
    rows, cols = cube.rows, cube.cols
    if out is None:
        out = np.zeros((rows, cols), dtype=np.float32)
    ranges = _block_ranges(rows, cols, block_pixels, halo_rows(scorer))
    if client is not None:
        yield from _iter_dask_blocks(scorer, cube, ranges, p_min, out, client)
        return out
    for r0, r1, a0, a1 in ranges:
        out[r0:r1] = _score_block(scorer, rows_view(cube, a0, a1), r0 - a0, r1 - a0, p_min)
        yield Progress(r1, rows, f"{scorer.detector}: {r1} of {rows} rows")
    return out


# -- blocks as dask tasks ---------------------------------------------------------------------------
_WORKER_SCORERS: dict[str, Any] = {}  # per worker process: token -> the scorer rebuilt from its state
_WORKER_LOCK = threading.Lock()


def _dask_block(token: str, state: tuple, block: Cube, lo: int, hi: int, p_min: int | None) -> np.ndarray:
    """A dask task: rows ``[lo, hi)`` of ``block``'s map against the scattered model ``state``."""
    from napari_hsi_anomaly.core.detectors.registry import scorer_from_state
    from napari_hsi_anomaly.core.threads import limit_threads

    limit_threads()
    with _WORKER_LOCK:
        scorer = _WORKER_SCORERS.get(token)
        if scorer is None:
            scorer = _WORKER_SCORERS[token] = scorer_from_state(*state)
            for key in list(_WORKER_SCORERS)[:-4]:  # a few models per worker at most
                _WORKER_SCORERS.pop(key, None)
    return _score_block(scorer, block, lo, hi, p_min)


def _materialised(cube: Cube, a0: int, a1: int) -> Cube:
    """Rows ``[a0, a1)`` as a cube holding its own pixels (what a task carries to a worker)."""
    view = rows_view(cube, a0, a1)
    fill = None if view.fill is None else np.array(view.fill)
    return replace(view, data=np.ascontiguousarray(view.data[:, :, :]), fill=fill)


def _iter_dask_blocks(scorer: Any, cube: Cube, ranges: list, p_min: int | None, out: np.ndarray,
                      client: Any) -> Generator[Progress, None, None]:
    from distributed import as_completed

    arrays, meta = scorer.state()
    [state] = client.scatter([(arrays, meta)], broadcast=True, hash=False)
    token = uuid.uuid4().hex
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    todo = deque(ranges)
    pending: dict[Any, tuple[int, int, Any]] = {}

    def submit(ac: Any = None) -> None:
        r0, r1, a0, a1 = todo.popleft()
        [block] = client.scatter([_materialised(cube, a0, a1)], hash=False)  # data, not graph
        fut = client.submit(_dask_block, token, state, block, r0 - a0, r1 - a0, p_min, pure=False,
                            key=f"hsi-block-{token[:8]}-{r0}")
        pending[fut] = (r0, r1, block)
        if ac is not None:
            ac.add(fut)

    for _ in range(min(len(todo), 2 * workers)):
        submit()
    done = 0
    ac = as_completed(list(pending), loop=client.loop)
    try:
        for fut in ac:
            r0, r1, block = pending.pop(fut)
            out[r0:r1] = fut.result()
            fut.release()
            block.release()
            del fut, block
            done += r1 - r0
            if todo:
                submit(ac)
            yield Progress(done, cube.rows, f"{scorer.detector}: {done} of {cube.rows} rows ({workers} "
                           f"worker{'s' if workers > 1 else ''})")
    finally:
        for fut, (_, _, block) in list(pending.items()):
            fut.cancel()
            block.release()
        state.release()


def iter_detect_blocks(
    cube: Cube | np.ndarray,
    method: str | None = None,
    *,
    reference_pixels: int = REFERENCE_PIXELS,
    block_pixels: int = BLOCK_PIXELS,
    out: np.ndarray | None = None,
    **params: Any,
) -> Generator[Progress, None, np.ndarray]:
    """Fit ``method`` (default: the registry's) on ``reference_strips`` of ``cube``, then score the
    whole cube in row blocks (``iter_score_blocks``). ``params``: the detector's parameters."""
    from napari_hsi_anomaly.core.detectors.registry import DEFAULT_METHOD, get_detector

    cube = as_cube(cube, "Detection")
    detector = get_detector(method or DEFAULT_METHOD)(**params)
    refs = reference_strips(cube, reference_pixels)
    yield Progress(0, 1, f"{detector.name}: fitting the normal model on {len(refs)} strip(s)")
    scorer = yield from detector.iter_fit(refs)
    scorer.calibration.scene_reference = True  # strips of this scene: calibrated as its own reference
    if refs[0] is cube and cube.rows * cube.cols <= block_pixels:  # small: the classic fit-and-score
        det = yield from scorer.iter_score(cube)
        if out is None:
            return det.score_map
        out[...] = det.score_map
        return out
    result = yield from iter_score_blocks(scorer, cube, block_pixels=block_pixels, out=out)
    return result
