"""Live p_min: re-score the shown detection from its cached hierarchy in a worker, the latest value winning.

The same worker first judges the p_min risk (``core.thresholds.p_min_risk``: would the pixels flagged
*before the move*, ``flagged()``, form a cluster of their own at the new p_min?) and yields it, then
re-scores: the warning reaches the GUI before the new map does, and the risk never reads a half
re-scored detection or races the rescore for the hierarchy.

``Detection.rescore`` is not re-entrant: at most one worker runs; a move while it runs is queued (only the
latest value is kept). Results of an older request, or of another detection or scene (``gen.next()``),
are dropped by a generation counter. The debounce (150 ms) keeps a dragged slider from queueing work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from superqt.utils import qdebounced

from napari_hsi_anomaly._widgets.workers import Generation, start_generator_worker


def risk_then_rescore(det: Any, p_min: int, flagged: np.ndarray | None, t_anom: float) -> Any:
    """Yield ``p_min_risk`` judged on ``flagged`` (None: no check; the risk is None when it cannot say),
    then return ``det.rescore(p_min)``."""
    from napari_hsi_anomaly.core.thresholds import p_min_risk

    if flagged is not None:
        try:
            risk = p_min_risk(det, p_min, t_anom, flagged=flagged)
        except Exception:  # a warning that cannot be judged is no reason to stop the re-score
            risk = None
        yield risk
    return det.rescore(p_min)


class LiveRescore:
    """Runs ``detection().rescore(p_min())`` off the GUI thread; ``on_result(token, p_min, map)``.
    With ``flagged`` (``() -> (mask shown before the move or None, t_anom)``) the worker first yields the
    p_min risk to ``on_risk(risk)`` (the newest request's only)."""

    def __init__(self, detection: Callable[[], Any], p_min: Callable[[], int],
                 on_result: Callable[[int, int, np.ndarray], Any],
                 flagged: Callable[[], tuple[np.ndarray | None, float]] | None = None,
                 on_risk: Callable[[Any], Any] | None = None) -> None:
        self._detection, self._p_min, self._on_result = detection, p_min, on_result
        self._flagged, self._on_risk = flagged, on_risk
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
        flagged, t = self._flagged() if self._flagged is not None else (None, 0.0)
        self.running = True  # (a synchronous worker finishes inside the call below)
        worker = start_generator_worker(
            risk_then_rescore, self._detection(), p_min, flagged, t,
            on_progress=lambda risk, tok=token: self._risk(tok, risk),
            on_returned=lambda scores, tok=token, p=p_min: self._on_result(tok, p, scores),
            on_finished=self._finished,
            desc=f"re-scoring p_min={p_min}", progress_bar=False,
        )
        if self.running is True:
            self.running = worker
        return worker

    def _risk(self, token: int, risk: Any) -> None:
        if self._on_risk is not None and risk is not None and self.is_current(token):
            self._on_risk(risk)

    def _finished(self) -> None:
        self.running = None
        if self.pending:
            self.pending = False
            self.request()

    def is_current(self, token: int) -> bool:
        """True when ``token``'s result is still wanted (newest request, nothing queued)."""
        return self.gen.is_current(token) and not self.pending
