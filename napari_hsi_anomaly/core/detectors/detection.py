"""``Detection``: a score map in [0, 1] with what made it; GLOSH results answer a new ``p_min``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError


@dataclass
class Detection:
    """A detector's result: ``score_map`` ``(rows, cols)`` float32 in [0, 1] (higher = more anomalous).

    ``params`` holds the settings; ``extras`` holds by-products for inspection (``valid``,
    ``rx_distance``, ``glosh_scores``, ``glosh_result`` (its ``.labels``), ``regions``,
    ``recon_per_band``, ...).
    ``scorers``: the GLOSH handles (``GloshScorer`` or ``GloshPredictor``: ``.score(p_min)``), one per
    GLOSH part, that ``rescore`` re-condenses.
    """

    score_map: np.ndarray
    method: str
    feature: str
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    scorers: list[Any] = field(default_factory=list, repr=False)
    _compose: Callable[[list[Any]], np.ndarray] | None = field(default=None, repr=False)

    @property
    def scorer(self) -> Any:
        """The first (main) GLOSH handle, if any."""
        return self.scorers[0] if self.scorers else None

    @property
    def can_rescore(self) -> bool:
        return bool(self.scorers) and self._compose is not None

    def rescore(self, p_min: int) -> np.ndarray:
        """Score map for a new ``p_min`` from the cached HDBSCAN hierarchy (GLOSH methods only).

        Updates ``score_map``, ``params["p_min"]`` and the GLOSH extras, and returns the new map.
        """
        if not self.can_rescore:
            raise HsiAnomalyError(f"Method {self.method!r} has no p_min: only GLOSH results can be rescored.")
        from napari_hsi_anomaly.core.guards import check_p_min

        for sc in self.scorers:  # within the fitted population (a profile's reference), never a flat map
            population = getattr(getattr(sc, "scorer", sc), "n_points", None)
            check_p_min(p_min, None if population is None else int(population), "p_min")
        results = [sc.score(int(p_min)) for sc in self.scorers]
        self.score_map = self._compose(results)  # type: ignore[misc]
        self.params["p_min"] = int(p_min)
        self.extras["glosh_scores"] = results[0].scores
        self.extras["glosh_result"] = results[0]  # .labels (HDBSCAN clusters) computed on first read
        self.extras["glosh_warnings"] = [w for r in results for w in r.warnings]
        return self.score_map

    def mask(self, t_anom: float = 0.7) -> np.ndarray:
        """``score_map >= t_anom`` (NaN is never anomalous)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(self.score_map) >= np.float32(t_anom)
