"""A trained model: network, architecture, scaling constants and a training summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model.cae import CAE, CAEConfig
from napari_hsi_anomaly.core.model.scaling import MinMaxScaler


@dataclass
class TrainedModel:
    """``net`` (a ``CAE`` in eval mode), its ``config``, the ``scaler`` and a ``summary`` dict
    (epochs, loss, val_loss, windows, seconds, date, ...)."""

    net: CAE
    config: CAEConfig
    scaler: MinMaxScaler
    summary: dict = field(default_factory=dict)

    @property
    def bands(self) -> int:
        return self.config.bands

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def preset(self) -> str:
        return self.config.preset

    def check_cube(self, cube: Cube) -> None:
        """Raise ``ModelError`` when ``cube`` cannot be fed to this model."""
        if cube.bands != self.bands:
            raise ModelError(
                f"The model was trained on {self.bands} bands; this cube has {cube.bands}. "
                "Train a model on cubes with the same bands."
            )

    def describe(self) -> str:
        """One line: preset, bands, kernels, what was trained (steps, epochs, crop/window) and the loss."""
        head = f"{self.preset} CAE, {self.bands} bands, kernels {list(self.config.kernels)}"
        loss = self.summary.get("loss")
        if not isinstance(loss, float):
            return head + f", window {self.window} (untrained)"
        what = self.summary.get("description")
        if not what:  # models saved before the description existed
            size = self.summary.get("train_window", self.window)
            what = f"{self.summary.get('epochs', '?')} epochs on {size} px windows"
        else:
            what = what.split(": ", 1)[-1]
        return head + f"; {what}; loss {loss:.5f}"
