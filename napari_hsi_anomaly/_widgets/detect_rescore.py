"""Live p_min: re-score the shown detection from its cached hierarchy in a worker, the latest value winning.

``Detection.rescore`` is not re-entrant: at most one worker runs; a move while it runs is queued (only the
latest value is kept). Results of an older request, or of another detection or scene (``gen.next()``),
are dropped by a generation counter. The debounce (150 ms) keeps a dragged slider from queueing work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.workers import Generation, start_function_worker


class LiveRescore:
    """Runs ``detection().rescore(p_min())`` off the GUI thread; ``on_result(token, p_min, map)``."""

    def __init__(self, detection: Callable[[], Any], p_min: Callable[[], int],
                 on_result: Callable[[int, int, np.ndarray], Any]) -> None:
        self._detection, self._p_min, self._on_result = detection, p_min, on_result
        self.running: Any = None  # the worker in flight (at most one)
        self.pending = False
        self.gen = Generation()
        self.debounced = qdebounced(self.request, timeout=150)

    def possible(self) -> bool:
        det = self._detection()
        return det is not None and bool(getattr(det, "can_rescore", False))

    def request(self) -> Any:
        """Start a worker at the current p_min, or queue it behind the one running."""
        if not self.possible():
            return None
        if self.running is not None:
            self.pending = True
            return None
        token = self.gen.next()
        p_min = int(self._p_min())
        self.running = True  # (a synchronous worker finishes inside the call below)
        worker = start_function_worker(
            self._detection().rescore, p_min,
            on_returned=lambda scores, tok=token, p=p_min: self._on_result(tok, p, scores),
            on_finished=self._finished,
            desc=f"re-scoring p_min={p_min}", progress_bar=False,
        )
        if self.running is True:
            self.running = worker
        return worker

    def _finished(self) -> None:
        self.running = None
        if self.pending:
            self.pending = False
            self.request()

    def is_current(self, token: int) -> bool:
        """True when ``token``'s result is still wanted (newest request, nothing queued)."""
        return self.gen.is_current(token) and not self.pending
