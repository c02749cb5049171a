"""Compile every JIT kernel the docks will need, off the GUI thread, once per process.

Without this, napari compiles its numba label-colouring kernel in the GUI thread the first time the
anomaly mask (a uint8 Labels layer with a direct colormap) appears: a 1.4-6.6 s freeze at the first
Score. The Detect dock starts the warm-up when it opens; ``wait()`` blocks until it is done (tests,
benchmarks, screenshot scripts).

Warmed: napari's direct-colormap kernel for uint8 labels (the mask) and its cyclic-colormap kernel for
int32/int64 labels (region and land-cover labels), our GLOSH kernels (``core.scoring.glosh``) and
the attribute filters' kernel (``core.scoring.morphology``, the default detector's spatial part).
"""

from __future__ import annotations

import threading
import time
from typing import Any

_started = False
_done = threading.Event()
timings: dict[str, float] = {}  # seconds per step, for the benchmark's notes


def _timed(name: str, fn: Any) -> None:
    t0 = time.perf_counter()
    try:
        fn()
    except Exception:  # noqa: BLE001 - a warm-up that fails only means the first use is slower
        timings[name] = float("nan")
        return
    timings[name] = time.perf_counter() - t0


def _napari_labels() -> None:
    import numpy as np
    from napari.utils.colormaps import DirectLabelColormap

    from napari_hsi_anomaly._widgets.detect_layers import mask_colormap

    cmap = mask_colormap()  # the colormap (and dict types) the mask layer uses
    cmap.map(np.zeros(4, dtype=np.uint8))  # builds its 256-entry cache: the numba loop on uint8
    assert isinstance(cmap, DirectLabelColormap)


def _colormaps() -> None:
    from napari_hsi_anomaly._widgets.detect_layers import score_colormap

    score_colormap()  # imports matplotlib's colormaps (0.2 s) and caches the heatmap's RGBA


def _napari_cyclic() -> None:
    import numpy as np
    from napari.utils.colormaps import _accelerated_cmap as accel

    for dtype in (np.int32, np.int64):
        accel.zero_preserving_modulo(np.arange(8, dtype=dtype), 49, np.dtype(np.uint8), 0)


def _glosh() -> None:
    from napari_hsi_anomaly.core.scoring import glosh

    warm = getattr(glosh, "_warm_up", None)
    if warm is not None:
        warm()


def _regions() -> None:
    import numpy as np

    from napari_hsi_anomaly.core.regions import label_mask

    label_mask(np.zeros((4, 4), dtype=bool))


def _morphology() -> None:
    import numpy as np

    from napari_hsi_anomaly.core.scoring.morphology import (
        small_objects,
        small_objects_multi,
        weighted_small_objects,
    )

    img = np.arange(16.0).reshape(4, 4)
    small_objects(img, 3)
    small_objects_multi(img, [3, 5])  # recon's closing
    weighted_small_objects(img, [3, 5], [1.0, 0.5])  # the attribute filters and GLOSH peaks


STEPS = (("heatmap colormap", _colormaps), ("napari labels (direct, uint8)", _napari_labels),
         ("napari labels (cyclic)", _napari_cyclic), ("GLOSH kernels", _glosh),
         ("attribute filters", _morphology), ("region labelling", _regions))


def run() -> None:
    """Every warm-up step, in this thread (the worker's)."""
    try:
        for name, fn in STEPS:
            _timed(name, fn)
    finally:
        _done.set()


def start() -> Any:
    """Start the warm-up in a worker thread once per process; returns the thread (None if started)."""
    global _started
    if _started:
        return None
    _started = True
    thread = threading.Thread(target=run, name="hsi-anomaly warm-up", daemon=True)
    thread.start()
    return thread


def done() -> bool:
    return _done.is_set()


def wait(timeout: float | None = 120.0) -> bool:
    """Start the warm-up if needed and wait for it; True when it finished."""
    start()
    return _done.wait(timeout)
