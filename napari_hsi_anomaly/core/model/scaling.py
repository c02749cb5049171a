"""Min-max scaling as in the thesis: ``(D - min) / (max - min)`` over the whole training set.

``mode="global"`` (default, the thesis) uses one min and one max over all bands; ``mode="band"`` one
pair per band. Statistics skip no-data pixels and are computed in row blocks (bounded memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ModelError

SCALING_MODES = ("global", "band")
BLOCK_PIXELS = 1 << 20  # pixels per statistics block (x bands x 4 bytes)


@dataclass
class MinMaxScaler:
    """Scaling constants: ``lo``/``hi`` are ``(bands,)`` float64 (equal entries for ``global``)."""

    lo: np.ndarray
    hi: np.ndarray
    mode: str = "global"

    @property
    def bands(self) -> int:
        return int(self.lo.size)

    @classmethod
    def fit(cls, cubes: Sequence[Cube], mode: str = "global") -> MinMaxScaler:
        """Min and max over the valid pixels of all ``cubes`` (all must have the same band count)."""
        if mode not in SCALING_MODES:
            raise ModelError(f"Scaling mode must be one of {SCALING_MODES}; got {mode!r}.")
        if not cubes:
            raise ModelError("No cube to fit the scaling on.")
        bands = cubes[0].bands
        lo = np.full(bands, np.inf)
        hi = np.full(bands, -np.inf)
        for cube in cubes:
            if cube.bands != bands:
                raise ModelError(
                    f"All training cubes need the same band count; got {bands} and {cube.bands}."
                )
            step = max(1, BLOCK_PIXELS // max(1, cube.cols))
            for r in range(0, cube.rows, step):
                block = cube.as_float32(slice(r, r + step)).reshape(bands, -1)
                ok = np.isfinite(block).all(axis=0)
                if ok.any():
                    lo = np.minimum(lo, block[:, ok].min(axis=1))
                    hi = np.maximum(hi, block[:, ok].max(axis=1))
        if not np.isfinite(lo).all():
            raise ModelError("The training cubes have no valid (finite, not no-data) pixel.")
        if mode == "global":
            lo[:] = lo.min()
            hi[:] = hi.max()
        return cls(lo=lo, hi=hi, mode=mode)

    def transform(self, block: np.ndarray) -> np.ndarray:
        """Scale a ``(bands, ...)`` float32 block in place-safe fashion (returns a new array)."""
        if block.shape[0] != self.bands:
            raise ModelError(f"Scaler fitted on {self.bands} bands; block has {block.shape[0]}.")
        shape = (-1,) + (1,) * (block.ndim - 1)
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        lo = self.lo.astype(np.float32).reshape(shape)
        return (block - lo) * (1.0 / span).astype(np.float32).reshape(shape)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "lo": [float(v) for v in self.lo], "hi": [float(v) for v in self.hi]}

    @classmethod
    def from_dict(cls, d: dict) -> MinMaxScaler:
        try:
            lo = np.asarray(d["lo"], dtype=np.float64)
            hi = np.asarray(d["hi"], dtype=np.float64)
            mode = str(d.get("mode", "global"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"Bad scaling constants in the model config: {exc}.") from exc
        if lo.shape != hi.shape or lo.ndim != 1:
            raise ModelError("Bad scaling constants in the model config: lo/hi shapes differ.")
        return cls(lo=lo, hi=hi, mode=mode)
