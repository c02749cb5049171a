"""What is shown of the scene on screen (the RGB composite, or one band that the band slider moves),
its ground truth, a view that fits it. Which layers are in the viewer is ``scenes.SceneManager``'s.

A layer belongs to a scene when its ``metadata["cube"]`` is that scene's ``Cube`` (the reader's band
stack, RGB composite and ground truth; the Cube dock tags the reader's "ground truth" Labels layer).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from napari_hsi_anomaly._widgets.band_slider import band_axis
from napari_hsi_anomaly.core.cube import Cube

HIDDEN_KEY = "hidden_by_scene_switch"  # layer metadata: hidden because another scene was chosen


def scene_of(layer: Any) -> Cube | None:
    cube = getattr(layer, "metadata", {}).get("cube")
    return cube if isinstance(cube, Cube) else None


def camera(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9; ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def scene_key(layer: Any) -> Any:
    """What a layer belongs to: its stack of dates (every date is one scene of it), else its cube."""
    meta = getattr(layer, "metadata", {})
    return meta.get("stack") if meta.get("stack") is not None else scene_of(layer)


def rgb_layer_for(viewer: Any, layer: Any, cube: Cube) -> Any:
    """The RGB composite of ``layer``'s scene: same cube or stack, or named "<layer> RGB"."""
    stack = layer.metadata.get("stack")
    for other in viewer.layers:
        if other is layer or not getattr(other, "rgb", False):
            continue
        meta = other.metadata
        if meta.get("cube") is cube or (stack is not None and meta.get("stack") is stack) \
                or other.name == f"{layer.name} RGB":
            return other
    return None


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


def is_new_ground_truth(layer: Any, cube: Cube) -> bool:
    """A Labels layer named like a ground truth that is ``cube``'s, or untagged and of its size."""
    from napari.layers import Labels

    if not isinstance(layer, Labels) or not is_ground_truth_name(layer.name):
        return False
    owner = scene_of(layer)
    return owner is cube or (owner is None and tuple(layer.data.shape[-2:]) == (cube.rows, cube.cols))


def adopt_ground_truth(layer: Any, cube: Cube, state: Any) -> None:
    """Tag ``layer`` as ``cube``'s ground truth (a name napari suffixed, "ground truth [1]", becomes
    "ground truth [<scene>]") and publish it as the state's ground truth."""
    layer.metadata["cube"] = cube
    style_ground_truth(layer)
    base = layer.name.split(" [")[0]
    if layer.name != base and state.scene_name:
        layer.name = f"{base} [{state.scene_name}]"
    state.set_ground_truth(layer.name)


GT_COLOR = "yellow"


def style_ground_truth(layer: Any) -> None:
    """The truth as a yellow outline at full opacity: the scene shows inside it and no result layer
    (the TP / FP / FN overlay draws above it) hides where it is."""
    from napari.utils.colormaps import DirectLabelColormap

    if layer.metadata.get("gt_styled"):
        return
    layer.metadata["gt_styled"] = True
    try:
        layer.colormap = DirectLabelColormap(color_dict={0: "transparent", None: GT_COLOR})
        layer.opacity, layer.contour = 1.0, 1
    except Exception:  # an older napari without these: keep its colours
        return


def scene_ground_truth(viewer: Any, cube: Cube, state: Any) -> Any:
    """``cube``'s ground truth; an untagged one of its size (added before the dock) is adopted."""
    gt = ground_truth_layer(viewer, cube)
    if gt is None:
        gt = next((lay for lay in viewer.layers if is_new_ground_truth(lay, cube)), None)
        if gt is not None:
            adopt_ground_truth(gt, cube, state)
    if gt is not None:
        style_ground_truth(gt)
    return gt


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

    def activate(self, cube: Cube, stack: Any, rgb: Any, fit: bool = True, key: Any = None) -> None:
        """Show this scene's images as the mode says and fit the view to it (the other scenes' layers
        are out of the viewer: ``scenes.SceneManager``)."""
        self._quiet += 1
        try:
            for layer in self.viewer.layers:  # layers hidden by an earlier version's scene switch
                if layer.metadata.pop(HIDDEN_KEY, False):
                    layer.visible = True
            self.stack, self.rgb = stack, rgb
            self._apply()
            if fit:
                target = rgb if rgb is not None else stack
                self.fit(target)
                from qtpy.QtCore import QTimer  # again after napari's own handlers: a new axis
                QTimer.singleShot(0, lambda: self.fit(target))  # (a stack's dates) resets the view
        finally:
            self._quiet -= 1
            self._last = self._dims_key()

    def fit(self, layer: Any, margin: float = 0.05) -> None:
        """Centre the camera on ``layer`` and zoom so all of it shows (``reset_view`` would fit every
        layer, the hidden scenes' too)."""
        if layer is None or layer not in self.viewer.layers:
            self.viewer.reset_view()
            return
        lo, hi = (np.asarray(v, dtype=float) for v in layer.extent.world)
        step = np.abs(np.asarray(layer.scale, dtype=float)[-2:])
        lo, hi = lo[-2:], hi[-2:]
        size = np.maximum(hi - lo + step, 1e-9)  # the extent runs from first to last pixel centre
        camera(self.viewer).center = tuple((lo + hi) / 2)
        canvas = getattr(getattr(self.viewer, "canvas", None), "size", None)  # napari >= 0.9
        if canvas is None:
            with warnings.catch_warnings():  # napari warns (and notifies) on private attribute access
                warnings.simplefilter("ignore")
                canvas = getattr(self.viewer, "_canvas_size", None)
        if canvas is None or min(canvas) <= 1:
            return
        camera(self.viewer).zoom = float(np.min(np.asarray(canvas[-2:], dtype=float) / size) * (1 - margin))

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
        self.reselect()
        if changed:
            self._on_mode(mode)

    def reselect(self) -> None:
        """Make the shown image of the scene the active layer again."""
        active = self.stack if self.mode == "band" else self.rgb
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active

    def _dims_key(self) -> tuple:
        dims = self.viewer.dims
        return tuple(dims.nsteps), tuple(dims.current_step)

    def _on_step(self, *_: Any) -> None:
        """The user moved the band slider (same ranges, another band): show the band stack."""
        key = self._dims_key()
        last, self._last = self._last, key
        if self._quiet or not last or key[0] != last[0] or self.mode == "band":
            return
        stack = self.stack if self.stack in self.viewer.layers else None
        axis = band_axis(self.viewer, stack)
        if stack is not None and axis >= 0 and key[1][axis] != last[1][axis]:
            self.set_mode("band")
