"""Per-viewer shared state: what the Cube, Model, Detect and Inspect docks hand to each other."""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal


class AppState:
    """The cube, model and detection result of one viewer; signals fire in the GUI thread."""

    cube_changed = Signal(object)  # Cube | None
    model_changed = Signal(object)  # TrainedModel | None
    detection_changed = Signal(object)  # Detection | None
    mask_changed = Signal(object)  # (rows, cols) bool | None, after t_anom / p_min moves

    def __init__(self) -> None:
        self.cube: Any = None  # core.cube.Cube
        self.cube_layer: str | None = None  # name of the band-stack Image layer
        self.rgb_layer: str | None = None  # name of the RGB composite layer
        self.model: Any = None  # core.model.TrainedModel
        self.model_source: str | None = None  # "trained", "sample", or the directory it was loaded from
        self.detection: Any = None  # core.scoring.detect.Detection
        self.mask: Any = None
        self.mask_labels: Any = None  # 8-connected components of ``mask`` (int32), labelled once

    def set_cube(self, cube: Any, layer_name: str | None = None, rgb_layer: str | None = None) -> None:
        self.cube, self.cube_layer, self.rgb_layer = cube, layer_name, rgb_layer
        self.cube_changed.emit(cube)

    def set_model(self, model: Any, source: str | None = None) -> None:
        self.model, self.model_source = model, source
        self.model_changed.emit(model)

    def set_detection(self, detection: Any) -> None:
        self.detection = detection
        self.detection_changed.emit(detection)

    def set_mask(self, mask: Any, labels: Any = None) -> None:
        """Publish the mask (and its connected-component labels, when the caller has them)."""
        self.mask, self.mask_labels = mask, labels
        self.mask_changed.emit(mask)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_state(viewer: Any) -> AppState:
    """The ``AppState`` of ``viewer`` (created on first use, dropped with the viewer)."""
    state = _STATES.get(viewer)
    if state is None:
        state = _STATES[viewer] = AppState()
    return state
