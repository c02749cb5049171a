"""The Detect dock's layer adapter: the heatmap and mask of the scene being looked at.

- The heatmap (Image, float32, fixed contrast (0, 1)) and the mask (uint8 Labels whose data is the
  dock's preallocated buffer) always lie above every image of the scene. The heatmap's colour bar is
  drawn under the Detect dock's histogram (napari's canvas colour bar costs the GUI thread about
  0.4 s each time one is shown: text rendering on the canvas).
- Results belong to one scene: when another scene is chosen, ``retire`` renames the old pair to
  ``"anomaly score [scene]"`` / ``"anomaly mask [scene]"`` and hides it, so nothing on screen claims
  to belong to the new cube.
- No computation here: only layer bookkeeping (GUI thread).
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np

SCORE_LAYER = "anomaly score"
MASK_LAYER = "anomaly mask"
MASK_COLOR = "cyan"
OUTCOME_LAYER = "TP / FP / FN"
# outcome values: mask (0/1) + 2 * ground truth (0/1)
OUTCOME_COLORS = {1: "#ff8c00", 2: "#ff00ff", 3: "#00e000"}  # FP orange, FN magenta, TP green
OUTCOME_NAMES = {3: "TP (flagged, in the truth)", 1: "FP (flagged, not in the truth)",
                 2: "FN (missed truth)"}


@lru_cache(maxsize=1)
def score_rgba() -> np.ndarray:
    """(65, 4) RGBA of the heatmap at scores linspace(0, 1, 65): inferno with an alpha ramp."""
    from matplotlib import colormaps

    x = np.linspace(0.0, 1.0, 65)
    rgba = colormaps["inferno"](x)
    rgba[:, 3] = np.clip((x - 0.25) / 0.65, 0.0, 1.0) ** 1.5
    return rgba


def score_colormap() -> Any:
    """inferno with an alpha ramp: low scores transparent so the scene shows through."""
    from napari.utils.colormaps import Colormap

    rgba = score_rgba()
    return Colormap(colors=rgba, controls=np.linspace(0.0, 1.0, len(rgba)),
                    name="inferno (transparent low)")


def mask_colormap() -> Any:
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={0: "transparent", 1: MASK_COLOR, None: "transparent"})


def outcome_colormap() -> Any:
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={0: "transparent", **OUTCOME_COLORS, None: "transparent"})


def outcome_legend() -> str:
    """HTML: a coloured square and a name per outcome (under the metrics)."""
    return "&nbsp;&nbsp;".join(f'<span style="color:{OUTCOME_COLORS[v]}">&#9632;</span> {OUTCOME_NAMES[v]}'
                               for v in (3, 1, 2))


def find_layer(viewer: Any, name: str) -> Any:
    """The layer called ``name``, or None."""
    for layer in viewer.layers:
        if layer.name == name:
            return layer
    return None


def retired_name(base: str, scene: str) -> str:
    return f"{base} [{scene}]"


class ResultLayers:
    """Adds, updates, orders and retires the heatmap and mask layers of one viewer."""

    # GUI-thread CPU seconds spent inside napari's add_image/add_labels (napari's own cost, once per
    # scene: 0.2-0.5 s each on a slow CPU); the stall test reports it apart from ours
    napari_add_cpu = 0.0
    napari_adds = 0

    def _add(self, kind: str, data: np.ndarray, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        layer = getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        ResultLayers.napari_add_cpu += time.thread_time() - t0
        ResultLayers.napari_adds += 1
        return layer

    def __init__(self, viewer: Any, state: Any) -> None:
        self.viewer = viewer
        self.state = state
        self.scene: str | None = None  # the scene the current pair belongs to

    @property
    def heat(self) -> Any:
        return find_layer(self.viewer, SCORE_LAYER)

    @property
    def mask(self) -> Any:
        return find_layer(self.viewer, MASK_LAYER)

    @property
    def outcome(self) -> Any:
        return find_layer(self.viewer, OUTCOME_LAYER)

    def show_outcome(self, buffer: np.ndarray | None) -> None:
        """With a ground truth: the TP / FP / FN layer (``buffer``: mask + 2 x truth) on top and the
        mask hidden (the overlay holds it); without: the overlay removed, the mask shown."""
        layer, mask = self.outcome, self.mask
        if buffer is None or mask is None:
            if layer is not None:
                self.viewer.layers.remove(layer)
            if mask is not None:
                mask.visible = True
            return
        if layer is not None and layer.data.shape != buffer.shape:
            self.viewer.layers.remove(layer)
            layer = None
        if layer is None:
            selected = set(self.viewer.layers.selection)
            layer = self._add("labels", buffer, name=OUTCOME_LAYER, colormap=outcome_colormap(), opacity=0.8,
                              metadata={"scene": self.scene}, **self._scene_kwargs())
            if selected:  # keep the user's selection (napari selects the layer just added)
                self.viewer.layers.selection = {lay for lay in selected if lay in self.viewer.layers}
        elif layer.data is not buffer:
            layer.data = buffer
        else:
            layer.refresh()
        mask.visible = False
        self.raise_to_top()

    def refresh_outcome(self) -> None:
        layer = self.outcome
        if layer is not None:
            layer.refresh()

    def _scene_kwargs(self) -> dict:
        """Scale/translate of the cube's layers so the maps overlay the scene."""
        name = self.state.rgb_layer or self.state.cube_layer
        if name and name in self.viewer.layers:
            layer = self.viewer.layers[name]
            return {"scale": tuple(layer.scale)[-2:], "translate": tuple(layer.translate)[-2:]}
        return {}

    def show(self, scores: np.ndarray, mask_u8: np.ndarray, scene: str | None) -> None:
        """Put ``scores`` and ``mask_u8`` (the buffer, not a copy) on screen above the scene."""
        layers = self.viewer.layers
        selected = set(layers.selection)
        heat, mask = self.heat, self.mask
        if heat is not None and heat.data.shape != scores.shape:
            layers.remove(heat)
            heat = None
        if mask is not None and mask.data.shape != mask_u8.shape:
            layers.remove(mask)
            mask = None
        kw = self._scene_kwargs()
        meta = {"scene": scene}
        if heat is None:
            heat = self._add(
                "image", scores, name=SCORE_LAYER, colormap=score_colormap(), contrast_limits=(0.0, 1.0),
                opacity=0.7, blending="translucent", metadata=meta, **kw,
            )
        else:
            if heat.data is not scores:
                heat.data = scores
            else:
                heat.refresh()
            heat.contrast_limits = (0.0, 1.0)
            heat.metadata["scene"] = scene
        if mask is None:
            mask = self._add("labels", mask_u8, name=MASK_LAYER, colormap=mask_colormap(),
                             opacity=0.75, metadata=dict(meta), **kw)
        else:
            if mask.data is not mask_u8:
                mask.data = mask_u8
            mask.metadata["scene"] = scene
        self.scene = scene
        self.raise_to_top()
        if selected and selected != set(layers.selection):  # keep the user's selection
            layers.selection = {layer for layer in selected if layer in layers}

    def raise_to_top(self) -> None:
        """Heatmap, mask, then the TP / FP / FN overlay above every other layer (one move, when needed)."""
        layers = self.viewer.layers
        ours = [lay for lay in (self.heat, self.mask, self.outcome) if lay is not None]
        if not ours:
            return
        n = len(layers)
        want = list(range(n - len(ours), n))
        have = [layers.index(lay) for lay in ours]
        if have != want:
            layers.move_multiple(have, n)

    def refresh_mask(self) -> None:
        layer = self.mask
        if layer is not None:
            layer.refresh()

    def scene_layer(self, scene: str, scores: np.ndarray) -> Any:
        """A hidden heatmap of its own for ``scene`` ("anomaly score [scene]"), added or updated."""
        name = retired_name(SCORE_LAYER, scene)
        layer = find_layer(self.viewer, name)
        if layer is not None and layer.data.shape == scores.shape:
            layer.data = scores
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        layer = self._add("image", scores, name=name, colormap=score_colormap(), contrast_limits=(0.0, 1.0),
                          opacity=0.7, blending="translucent", visible=False, metadata={"scene": scene},
                          **self._scene_kwargs())
        self.raise_to_top()  # the live pair stays on top
        return layer

    def retire(self) -> bool:
        """Rename the current pair after its scene and hide it; True when there was one."""
        found = False
        for base in (SCORE_LAYER, MASK_LAYER):
            layer = find_layer(self.viewer, base)
            if layer is None:
                continue
            found = True
            scene = layer.metadata.get("scene") or self.scene or "earlier scene"
            name = retired_name(base, scene)
            old = find_layer(self.viewer, name)
            if old is not None:  # an older retired pair of the same scene: the newer wins
                self.viewer.layers.remove(old)
            layer.visible = False
            layer.name = name
        self.scene = None
        return found
