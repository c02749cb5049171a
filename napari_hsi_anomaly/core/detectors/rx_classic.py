"""Classic global RX: ``rx`` without covariance shrinkage (``rx_ridge = 0``, the pseudo-inverse), as
Spectral Python and ENVI compute it and as published RX numbers are measured. Listed beside the
shrunk ``rx`` so that both are a choice (see ``rx.py`` for why shrinkage is the default, and why the
textbook formula inverts on a scene where many pixels share one anomalous spectrum)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Param
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.detectors.rx import RxDetector, RxScorer
from napari_hsi_anomaly.core.progress import Progress


class RxClassicScorer(RxScorer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.detector = "rx-classic"


@register
class RxClassicDetector(RxDetector):
    scorer_class = RxClassicScorer
    order = 6.5
    name = "rx-classic"
    label = "RX (global, classic: no shrinkage)"
    summary = "classic global RX: Mahalanobis distance with the (pseudo-)inverse covariance, no shrinkage"
    params = (Param("rx_ridge", float, 0.0, "covariance shrinkage (0 = classic RX)", minimum=0.0,
                    maximum=10.0),)

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, RxClassicScorer]:
        fitted = yield from super()._iter_fit(cubes, model=model, train_options=train_options)
        return RxClassicScorer(fitted.mean, fitted.whiten, fitted.params, fitted.wavelengths)
