"""Per-viewer shared state: what the Cube, Model, Detect and Inspect docks hand to each other.

Contract for the docks (all signals fire in the GUI thread):

- ``cube_changed(cube)``: another scene was chosen. ``scene`` (an int that grows by one per change)
  and ``scene_name`` (the band-stack layer's name) say which; every dock drops or retires what it
  showed for the previous scene (Detect: heatmap/mask/counts/histogram/metrics; Inspect: table/plots).
- ``bands_changed(indices | None)``: the band selection of the Cube dock changed (None = all bands).
  Detectors, training and profiles use ``analysis_cube()`` (the cube restricted to those bands);
  display (RGB, band slider, spectra) uses the full ``cube``.
- ``scenes`` (``scenes.SceneManager``): the opened scenes and the one on screen; only its layers are
  in ``viewer.layers``. A switch emits ``leaving(old)``, then ``activated(new)``, then (the Cube dock)
  ``cube_changed``; docks restore a scene's saved results instead of resetting.
- ``ground_truth_changed(name | None)``: the Labels layer holding the current scene's ground truth
  (the reader's ``"ground truth"`` layer is chosen automatically); Detect's ground-truth combo follows.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from psygnal import Signal


class AppState:
    """The cube, model and detection result of one viewer; signals fire in the GUI thread."""

    cube_changed = Signal(object)  # Cube | None
    bands_changed = Signal(object)  # np.ndarray of 0-based band indices | None (all bands)
    ground_truth_changed = Signal(object)  # layer name | None
    model_changed = Signal(object)  # TrainedModel | None
    detection_changed = Signal(object)  # Detection | None
    mask_changed = Signal(object)  # (rows, cols) bool | None, after t_anom / p_min moves

    def __init__(self) -> None:
        self.cube: Any = None  # core.cube.Cube (all bands: display)
        self.cube_layer: str | None = None  # name of the band-stack Image layer
        self.rgb_layer: str | None = None  # name of the RGB composite layer
        self.scene: int = 0  # grows by one each time another cube is chosen
        self.band_selection: np.ndarray | None = None  # 0-based indices used for analysis; None = all
        self.ground_truth: str | None = None  # name of the current scene's ground-truth layer
        self.model: Any = None  # core.model.TrainedModel
        self.model_source: str | None = None  # "trained", "sample", or the directory it was loaded from
        self.detection: Any = None  # core.scoring.detect.Detection
        self.mask: Any = None
        self.mask_labels: Any = None  # 8-connected components of ``mask`` (int32), labelled once
        self.scenes: Any = None  # scenes.SceneManager of the viewer (set by ``get_state``)

    @property
    def scene_name(self) -> str | None:
        """A name for the current scene (its band-stack layer's name)."""
        if self.cube_layer:
            return self.cube_layer
        return None if self.cube is None else str(self.cube.name)

    def set_cube(
        self,
        cube: Any,
        layer_name: str | None = None,
        rgb_layer: str | None = None,
        bands: np.ndarray | None = None,
    ) -> None:
        """Another scene: drop the previous scene's detection and mask, then emit ``cube_changed``."""
        self.cube, self.cube_layer, self.rgb_layer = cube, layer_name, rgb_layer
        self.band_selection = None if bands is None else np.asarray(bands, dtype=np.intp)
        self.scene += 1
        self.detection, self.mask, self.mask_labels = None, None, None
        had_gt, self.ground_truth = self.ground_truth is not None, None
        self.cube_changed.emit(cube)
        if had_gt:  # the previous scene's ground truth no longer applies
            self.ground_truth_changed.emit(None)

    def set_bands(self, bands: np.ndarray | None) -> None:
        """The bands analysis uses (0-based, sorted); None or every band = no selection."""
        if bands is not None:
            bands = np.asarray(bands, dtype=np.intp)
            if self.cube is not None and len(bands) == self.cube.bands:
                bands = None
        same = (bands is None and self.band_selection is None) or (
            bands is not None
            and self.band_selection is not None
            and np.array_equal(bands, self.band_selection)
        )
        self.band_selection = bands
        if not same:
            self.bands_changed.emit(bands)

    def analysis_cube(self) -> Any:
        """The current cube restricted to the selected bands (the cube itself when none)."""
        cube, bands = self.cube, self.band_selection
        if cube is None or bands is None or not hasattr(cube, "select_bands"):
            return cube
        return cube.select_bands(bands)

    def set_ground_truth(self, name: str | None) -> None:
        if name != self.ground_truth:
            self.ground_truth = name
            self.ground_truth_changed.emit(name)

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
        if hasattr(viewer, "layers") and hasattr(getattr(viewer.layers, "events", None), "inserted"):
            from napari_hsi_anomaly._widgets.scenes import SceneManager

            state.scenes = SceneManager(viewer)
    return state
