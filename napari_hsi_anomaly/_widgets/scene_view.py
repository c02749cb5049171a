"""One scene on screen at a time: which layers belong to the chosen cube, what is shown of it
(the RGB composite, or one band that the band slider moves), its ground truth, a view that fits it.

A layer belongs to a scene when its ``metadata["cube"]`` is that scene's ``Cube`` (the reader's band
stack, RGB composite and ground truth; the Cube dock tags the reader's "ground truth" Labels layer).
"""

from __future__ import annotations

from typing import Any

from napari_hsi_anomaly.core.cube import Cube

HIDDEN_KEY = "hidden_by_scene_switch"  # layer metadata: hidden because another scene was chosen


def scene_of(layer: Any) -> Cube | None:
    cube = getattr(layer, "metadata", {}).get("cube")
    return cube if isinstance(cube, Cube) else None


def is_ground_truth_name(name: str) -> bool:
    low = name.lower()
    return "ground truth" in low or "ground_truth" in low or low == "gt" or low.endswith("_gt")


def ground_truth_layer(viewer: Any, cube: Cube) -> Any:
    """The Labels layer holding ``cube``'s ground truth, or None."""
    from napari.layers import Labels

    for layer in viewer.layers:
        if isinstance(layer, Labels) and scene_of(layer) is cube and is_ground_truth_name(layer.name):
            return layer
    return None


class SceneView:
    """Shows one scene, in ``"rgb"`` (composite) or ``"band"`` (band stack + slider) mode."""

    def __init__(self, viewer: Any, on_mode: Any = None) -> None:
        self.viewer = viewer
        self.mode = "rgb"  # what is shown now
        self.preferred = "rgb"  # what the user asked for ("band" wins where there is no composite)
        self.stack: Any = None
        self.rgb: Any = None
        self._on_mode = on_mode or (lambda mode: None)
        self._last: tuple = ()
        self._quiet = 0
        viewer.dims.events.current_step.connect(self._on_step)

    def activate(self, cube: Cube, stack: Any, rgb: Any, fit: bool = True) -> None:
        """Hide the other scenes' layers, show this one's (as the mode says), fit the view to it."""
        self._quiet += 1
        try:
            for layer in self.viewer.layers:
                owner = scene_of(layer)
                if owner is None:
                    continue
                if owner is not cube and layer.visible:
                    layer.visible = False
                    layer.metadata[HIDDEN_KEY] = True
                elif owner is cube and layer.metadata.pop(HIDDEN_KEY, False):
                    layer.visible = True
            self.stack, self.rgb = stack, rgb
            self._apply()
            if fit:
                self.viewer.reset_view()
        finally:
            self._quiet -= 1
            self._last = self._dims_key()

    def set_mode(self, mode: str) -> None:
        """``"rgb"``: the composite, band stack hidden; ``"band"``: the band stack (slider) only."""
        self.preferred = mode
        self._apply()

    def _apply(self) -> None:
        alive = self.viewer.layers
        rgb = self.rgb if self.rgb in alive else None
        stack = self.stack if self.stack in alive else None
        mode = "band" if rgb is None else self.preferred
        changed = mode != self.mode
        self.mode = mode
        if stack is not None:
            stack.visible = mode == "band"
        if rgb is not None:
            rgb.visible = mode == "rgb"
        active = stack if mode == "band" else rgb
        if active is not None:
            self.viewer.layers.selection.active = active
        if changed:
            self._on_mode(mode)

    def _dims_key(self) -> tuple:
        dims = self.viewer.dims
        return tuple(dims.nsteps), tuple(dims.current_step)

    def _on_step(self, *_: Any) -> None:
        """The user moved the band slider (same ranges, another band): show the band stack."""
        key = self._dims_key()
        last, self._last = self._last, key
        if self._quiet or not last or key[0] != last[0] or self.mode == "band":
            return
        axis = int(self.viewer.dims.ndim) - 3
        if axis >= 0 and key[1][axis] != last[1][axis] and self.stack in self.viewer.layers:
            self.set_mode("band")
