"""Where "normal" comes from, and what is scored: the top of the Detect dock.

normal from:
- **this cube**: every scene is fitted on itself (the one-cube case);
- **reference layers / dates**: the checked cube layers or dates of a stack, fitted jointly (the
  thesis's reference population); every target is scored against that one fit;
- **saved profile**: a profile folder (``core.profile.load_profile``, loaded in a worker).

"score every scene" scores every date of the current stack (or every opened cube with its bands) and
fills the scene table. "Save profile..." writes the last fitted normal model
(``core.profile.save_profile``, in a worker).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_hsi_anomaly._widgets.detect_jobs import Target
from napari_hsi_anomaly._widgets.workers import (
    connect_alive,
    notify_error,
    notify_saved,
    start_function_worker,
)
from napari_hsi_anomaly.core.errors import HsiAnomalyError

MODES = (("this cube", "cube"), ("reference layers / dates", "references"), ("saved profile", "profile"))


def layer_stack(layer: Any) -> Any:
    """The stack of dates behind a layer (``metadata["stack"]``), or None."""
    stack = getattr(layer, "metadata", {}).get("stack")
    return stack if stack is not None and hasattr(stack, "cube") else None


def layer_cube(layer: Any) -> Any:
    """The ``Cube`` of a cube layer (the reader's), or None."""
    from napari_hsi_anomaly.core.cube import Cube

    cube = getattr(layer, "metadata", {}).get("cube")
    return cube if isinstance(cube, Cube) else None


def rgb_of(layers: Any, layer: Any, cube: Any) -> str | None:
    """The RGB composite layer added with ``layer`` (same cube or named ``"<layer> RGB"``)."""
    for other in layers:
        if other is layer or not getattr(other, "rgb", False):
            continue
        if (cube is not None and other.metadata.get("cube") is cube) or other.name == f"{layer.name} RGB":
            return other.name
    return None


def date_name(scene: str, k: int) -> str:
    """A date's name in every list and table: counted from 1, like the date slider."""
    return f"{scene}: date {k + 1}"


def scene_candidates(viewer: Any, scenes: Any = None) -> list[Target]:
    """Every scene the viewer holds (on screen or not): each date of each stack, then each cube."""
    from napari_hsi_anomaly._widgets.state import get_state

    mgr = scenes if scenes is not None else get_state(viewer).scenes
    out: list[Target] = []
    for scene in (mgr.scenes if mgr is not None else []):
        layer = mgr.band_stack(scene)
        if layer is None:
            continue
        stack = layer_stack(layer)
        if stack is not None:
            rgb = rgb_of(mgr.layers_of(scene), layer, None)
            out.extend(Target(date_name(scene.name, k), None, layer.name, rgb, k)
                       for k in range(int(stack.n_dates)))
            continue
        cube = layer_cube(layer)
        if cube is not None:
            out.append(Target(layer.name, cube, layer.name, rgb_of(mgr.layers_of(scene), layer, cube)))
    return out


def target_bands(viewer: Any, target: Target) -> int:
    """The number of bands of a candidate (a stack's from its first date)."""
    if target.cube is not None:
        return int(target.cube.bands)
    return int(_stack_of(viewer, target.layer).cube(0).bands)


def _stack_of(viewer: Any, name: str | None) -> Any:
    from napari_hsi_anomaly._widgets.state import get_state

    mgr = get_state(viewer).scenes
    scene = mgr.named(name) if mgr is not None else None
    if scene is not None and scene.is_stack:
        return scene.key
    return layer_stack(viewer.layers[name])


def resolve(viewer: Any, target: Target, bands: Any = None) -> Target:
    """``target`` with its cube (a date of a stack is a view, read when scored) cut to ``bands``
    (0-based indices, the Cube dock's band selection; None = every band)."""
    full = target.cube
    if full is None:
        full = _stack_of(viewer, target.layer).cube(int(target.date))
    cube = full
    if bands is not None and hasattr(full, "select_bands") and full.bands > len(bands) \
            and int(max(bands)) < full.bands:
        cube = full.select_bands(bands)
    return Target(target.name, cube, target.layer, target.rgb_layer, target.date, full)


class ReferencePanel(QWidget):
    """"normal from" and "score every scene", the reference list, Load/Save profile."""

    save_requested = Signal(str)
    saved = Signal(str)  # a status line once a profile is written

    def __init__(self, viewer: Any, state: Any) -> None:
        super().__init__()
        self.viewer, self.state = viewer, state
        self._loaded: Any = None  # a Scorer loaded from a profile folder
        self.profile_name = ""
        self._fitted: Any = None  # the last fit (a Scorer), what Save profile writes
        self.status_text = ""
        self._candidates: list[Target] = []
        self.mode = QComboBox()
        for label, key in MODES:
            self.mode.addItem(label, key)
        self.mode.setToolTip("What the detector learns 'normal' from")
        self.refs = QListWidget()
        self.refs.setToolTip("Check the reference scenes or dates (those with this scene's number of bands): "
                             "their pixels are fitted together")
        self.refs.setMaximumHeight(84)
        self.load_btn = QPushButton("Load…")
        self.profile_label = QLabel("no profile loaded")
        self.profile_label.setWordWrap(True)
        self.every = QCheckBox("score every scene")
        self.every.setToolTip("Score every date of a stack or every cube layer and list them in a table.")
        self.save_btn = QPushButton("Save profile…")
        self.save_btn.setEnabled(False)
        self.save_btn.setToolTip("Save the last fitted normal model (a folder: JSON + safetensors)")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("normal from", self.mode)
        self._profile_row = QWidget()
        prow = QHBoxLayout(self._profile_row)
        prow.setContentsMargins(0, 0, 0, 0)
        prow.addWidget(self.load_btn)
        prow.addWidget(self.profile_label, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.every, 1)
        bottom.addWidget(self.save_btn)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(form)
        layout.addWidget(self.refs)
        layout.addWidget(self._profile_row)
        layout.addLayout(bottom)
        self.mode.currentIndexChanged.connect(self._on_mode)
        self.load_btn.clicked.connect(self._load_dialog)
        self.save_btn.clicked.connect(self._save_dialog)
        if state.scenes is not None:
            connect_alive(self, state.scenes.changed, self.refresh)
        state.cube_changed.connect(self.refresh)
        self.refresh()
        self._on_mode()

    @property
    def mode_key(self) -> str:
        return str(self.mode.currentData())

    def set_mode(self, key: str) -> None:
        self.mode.setCurrentIndex(max(0, self.mode.findData(key)))

    def _on_mode(self, *_: Any) -> None:
        key = self.mode_key
        self.refs.setVisible(key == "references")
        self._profile_row.setVisible(key == "profile")

    def set_detector(self, spec: Any) -> None:
        """The detector changed (nothing to do yet: a loaded profile names its own)."""

    # ---------------------------------------------------------------- references
    def refresh(self, *_: Any) -> None:
        """List every scene and every date of every stack with the current scene's bands."""
        checked = set(self.checked_names())
        cube = self.state.cube
        self._candidates = [t for t in scene_candidates(self.viewer, self.state.scenes)
                            if cube is None or target_bands(self.viewer, t) == cube.bands]
        self.refs.clear()
        for t in self._candidates:
            item = QListWidgetItem(t.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if t.name in checked else Qt.CheckState.Unchecked)
            self.refs.addItem(item)

    def checked_names(self) -> list[str]:
        return [self.refs.item(i).text() for i in range(self.refs.count())
                if self.refs.item(i).checkState() == Qt.CheckState.Checked]

    def set_references(self, names: list[str]) -> None:
        """Check exactly ``names`` (layer names or ``"<layer>: date K"``)."""
        missing = set(names) - {t.name for t in self._candidates}
        if missing:
            raise ValueError(f"no such reference: {', '.join(sorted(missing))}")
        for i in range(self.refs.count()):
            item = self.refs.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def references(self) -> list[Any]:
        """The reference cubes for the next Score ([] unless "reference layers / dates")."""
        if self.mode_key != "references":
            return []
        names = self.checked_names()
        if not names:
            raise HsiAnomalyError("Normal from reference layers / dates: check at least one in the list.")
        by_name = {t.name: t for t in self._candidates}
        bands = getattr(self.state, "band_selection", None)
        return [resolve(self.viewer, by_name[n], bands).cube for n in names]

    def targets(self) -> list[Target]:
        """The scenes to score: every scene when asked, else [] (the dock scores the current cube)."""
        if not self.every.isChecked():
            return []
        current = self.state.cube_layer  # a stack's dates; else every cube with this scene's bands
        stacks = [t for t in self._candidates if t.date is not None and t.layer == current]
        chosen = stacks or [t for t in self._candidates if t.date is None] or self._candidates
        bands = getattr(self.state, "band_selection", None)
        return [resolve(self.viewer, t, bands) for t in chosen]

    # ---------------------------------------------------------------- profiles
    def profile_scorer(self) -> Any:
        """The loaded profile's scorer when "saved profile" is chosen, else None."""
        if self.mode_key != "profile":
            return None
        if self._loaded is None:
            raise HsiAnomalyError("Normal from a saved profile: press Load… and choose a profile folder.")
        return self._loaded

    def _load_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Load a profile folder")
        if folder:
            self.load(folder)

    def load(self, folder: str) -> Any:
        """Load a profile folder in a worker; returns the worker."""
        from napari_hsi_anomaly.core.profile import load_profile

        self.profile_label.setText(f"loading {folder}…")
        return start_function_worker(
            load_profile, folder,
            on_returned=lambda scorer, f=folder: self._on_loaded(f, scorer),
            on_error=lambda exc: self.profile_label.setText("no profile loaded"),
            desc="loading profile", progress_bar=False,
        )

    def _on_loaded(self, folder: str, scorer: Any) -> None:
        from pathlib import Path

        self._loaded = scorer
        self.profile_name = Path(folder).name
        bands = getattr(scorer, "bands", "?")
        self.profile_label.setText(f"{self.profile_name}: {getattr(scorer, 'detector', '?')}, {bands} bands")
        self.set_mode("profile")

    def set_fitted(self, scorer: Any) -> None:
        self._fitted = scorer
        self.save_btn.setEnabled(scorer is not None)

    def _save_dialog(self) -> None:
        folder, _ = QFileDialog.getSaveFileName(self, "Save profile (a folder)", "profile")
        if folder:
            self.save_requested.emit(folder)

    def save(self, folder: str) -> Any:
        """Write the last fit to ``folder`` in a worker; returns the worker (None if nothing to save)."""
        if self._fitted is None:
            notify_error(HsiAnomalyError("No normal model to save: press Score first."))
            return None
        from napari_hsi_anomaly.core.profile import save_profile

        try:
            self.check_folder(folder)
        except HsiAnomalyError as exc:  # one notification; the fit stays, ready for another folder
            notify_error(exc)
            return None
        self.status_text = f"Saving the profile to {folder}…"
        return start_function_worker(
            save_profile, self._fitted, folder,
            on_returned=lambda out, f=folder: self._on_saved(out or f),
            on_error=lambda exc: setattr(self, "status_text", ""),
            desc="saving profile", progress_bar=False,
        )

    def check_folder(self, folder: str) -> None:
        """Refuse (``HsiAnomalyError``) a profile folder before the worker starts: an existing file (the
        scene's own file included), a folder that cannot be written, a folder of other files (saving
        replaces the folder whole)."""
        from napari_hsi_anomaly.core.guards import check_output_dir
        from napari_hsi_anomaly.core.profile import ProfileError, _replaceable

        source = getattr(self.state.cube, "source", None)
        real = check_output_dir(folder, inputs=[source] if source else [], what="Save profile")
        if not _replaceable(real):
            raise ProfileError(f"Save profile {folder}: the folder holds other files than a saved profile "
                               "and saving replaces it whole; choose a new folder name.")

    def _on_saved(self, out: Any) -> None:
        self.status_text = f"Saved the profile to {out}."
        notify_saved("the profile", out)
        self.saved.emit(self.status_text)

