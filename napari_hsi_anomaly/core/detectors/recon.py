"""Per-pixel reconstruction error of the CAE."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors.base import Detector, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.glosh_cae import PRESET, get_model, model_label
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress


class ReconScorer(Scorer):
    def __init__(self, model: Any, params: dict, bands: int, wavelengths=None) -> None:
        self.detector, self.params, self.model = "recon", dict(params), model
        self.bands, self.wavelengths = int(bands), wavelengths

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        from napari_hsi_anomaly.core.model import iter_reconstruction

        self.model.check_cube(cube)
        rec = yield from iter_reconstruction(self.model, cube)
        err = np.asarray(rec.per_pixel, dtype=np.float32)
        return Raw(fixed=err, extras={"recon_per_pixel": rec.per_pixel, "recon_per_band": rec.per_band,
                                      "model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {}, {**self._meta(), "model": model_label(self.model)}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> ReconScorer:
        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        return cls(model, meta["params"], meta["bands"], meta.get("wavelengths"))


@register
class ReconDetector(Detector):
    scorer_class = ReconScorer
    name = "recon"
    label = "CAE reconstruction error"
    calibration_z0 = 3.9  # fitted on the development scenes (fast CAE, before the feature rework)
    summary = "per-pixel reconstruction error of the CAE"
    params = (PRESET,)
    needs_model = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, ReconScorer]:
        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        return ReconScorer(model, self.params, cubes[0].bands, cubes[0].wavelengths)
