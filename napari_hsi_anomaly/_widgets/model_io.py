"""The Model dock's "Current model" box: what was trained (the words of ``TrainedModel.summary``),
a band-count warning, and Load / Save / Sample model (file work in workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout

import napari_hsi_anomaly
from napari_hsi_anomaly._widgets.scroll import fit_label_height
from napari_hsi_anomaly._widgets.workers import notify_error, start_function_worker
from napari_hsi_anomaly.core.errors import ModelError

SAMPLE_MODEL = Path(napari_hsi_anomaly.__file__).resolve().parents[1] / "sample_data" / "fast_model"
WARN_STYLE = "color: #ffb000;"


def training_text(summary: dict) -> str:
    """What was trained, from ``TrainedModel.summary``: its ``description`` (the words the CLI and the
    saved config use), else epochs/steps/window; then the final loss and the time."""
    if not summary:
        return "untrained"
    if summary.get("description"):
        parts = [str(summary["description"])]
    else:
        parts = [f"{summary.get('epochs', '?')} epochs" + (f" ({summary['steps']} steps)"
                                                           if summary.get("steps") else "")]
        crop, window = summary.get("crop"), summary.get("train_window")
        if crop or window:
            parts.append(f"random {crop} px crops" if crop else f"{window} px windows")
    loss = summary.get("loss")
    parts.append(f"loss {loss:.4g}" if isinstance(loss, (int, float)) else "untrained")
    if isinstance(summary.get("seconds"), (int, float)):
        parts.append(f"{summary['seconds']:.1f}\u00a0s")
    return " · ".join(parts)


def model_text(model: Any, source: str | None) -> str:
    """Two or three lines for the dock: architecture, training summary, where it came from."""
    if model is None:
        return "No model yet: train one, or load a saved model."
    lines = [f"{model.preset} · {model.bands} bands · window {model.window} px", training_text(model.summary)]
    if source:
        lines.append(f"from: {source}")
    return "\n".join(lines)


class ModelBox(QGroupBox):
    """Shows the shared model; loads and saves it off the GUI thread."""

    def __init__(self, state: Any, on_busy: Any = None) -> None:
        super().__init__("Current model")
        self.state = state
        self._on_busy = on_busy or (lambda: None)
        self.busy = 0
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARN_STYLE)
        self.warning.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.warning.hide()
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Load a saved model directory (config.json + weights).")
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the current model to a new directory.")
        self.save_button.clicked.connect(self._save_dialog)
        self.sample_button = QPushButton("Sample model")
        self.sample_button.setToolTip("Load the small pre-trained 'fast' model shipped with the repository.")
        self.sample_button.clicked.connect(self.load_sample_model)
        self.sample_button.setVisible(SAMPLE_MODEL.is_dir())
        row = QHBoxLayout()
        for b in (self.load_button, self.save_button, self.sample_button):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.label)
        layout.addWidget(self.warning)
        layout.addLayout(row)
        self.show_model()

    def set_enabled(self, idle: bool) -> None:
        idle = idle and self.busy == 0
        self.load_button.setEnabled(idle)
        self.sample_button.setEnabled(idle)
        self.save_button.setEnabled(idle and self.state.model is not None)

    def show_model(self) -> None:
        model, cube = self.state.model, self.state.analysis_cube()
        self.label.setText(model_text(model, self.state.model_source))
        fit_label_height(self.label, self.width() - 16)
        mismatch = model is not None and cube is not None and cube.bands != model.bands
        if mismatch:
            full = self.state.cube is not None and self.state.cube.bands == model.bands
            self.warning.setText(
                f"⚠ This model expects {model.bands} bands but the current cube has {cube.bands} "
                "(selected): " + ("press All in the Cube dock's bands, or train a new model."
                                  if full else "train a new model or choose another cube or band selection.")
            )
        self.warning.setVisible(mismatch)
        if mismatch:
            fit_label_height(self.warning, self.width() - 16)

    # ---- workers
    def _start(self) -> None:
        self.busy += 1
        self._on_busy()

    def _end(self) -> None:
        self.busy = max(0, self.busy - 1)
        self._on_busy()

    def _load_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load a model directory")
        if path:
            self.load_from(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the model as a new folder", str(Path.home() / "cae_model"), "Model folder (*)"
        )
        if path:
            self.save_to(path)

    def load_from(self, path: str | Path, source: str | None = None) -> Any:
        """Load a model directory in a worker; on success it becomes the current model."""
        from napari_hsi_anomaly.core.model import load_model

        label = source or str(path)
        self._start()
        return start_function_worker(
            load_model,
            str(path),
            on_returned=lambda m: self._loaded(m, label),
            on_finished=self._end,
            desc="Loading model",
        )

    def _loaded(self, model: Any, label: str) -> None:
        self.use_all_bands_for(model)  # first: the docks never see a model that does not fit
        self.state.set_model(model, label)

    def use_all_bands_for(self, model: Any) -> bool:
        """A loaded model trained on every band of the current cube while the Cube dock's selection
        leaves some out (e.g. the sample model, 12 bands, and the default selection without Sentinel-2's
        B10): switch the selection to all bands and say so in one notification, as the CLI does
        (``pick_bands``: a model of the cube's band count keeps every band). Returns whether it did."""
        from napari.utils.notifications import show_info

        cube, selection = self.state.cube, self.state.band_selection
        if model is None or cube is None or selection is None or int(model.bands) != int(cube.bands):
            return False
        left = [cube.band_label(int(i)) for i in sorted(set(range(cube.bands)) - set(selection.tolist()))]
        self.state.set_bands(None)
        show_info(
            f"The model was trained on all {cube.bands} bands: the band selection is now all {cube.bands} "
            f"bands (it left out {', '.join(left)}). To leave them out, choose the bands in the Cube dock "
            "and train a new model."
        )
        return True

    def load_sample_model(self) -> Any:
        return self.load_from(SAMPLE_MODEL, "sample model (fast)")

    def save_to(self, path: str | Path) -> Any:
        """Save the current model to ``path`` in a worker (never over a folder of other files)."""
        from napari.utils.notifications import show_info

        from napari_hsi_anomaly.core.errors import HsiAnomalyError
        from napari_hsi_anomaly.core.guards import check_output_dir
        from napari_hsi_anomaly.core.model import save_model
        from napari_hsi_anomaly.core.model.checkpoint import replaceable

        model = self.state.model
        if model is None:
            return None
        source = getattr(self.state.cube, "source", None)
        try:  # before the worker: never the scene's own file, a folder that cannot be written
            target = check_output_dir(path, inputs=[source] if source else [], what="Save model")
        except HsiAnomalyError as exc:  # one notification; the model stays, ready for another folder
            notify_error(exc)
            return None
        if not replaceable(target):
            notify_error(ModelError(f"{path} exists and is not a saved model: choose a new folder name."))
            return None
        self._start()

        def saved(out: Any) -> None:
            self.state.model_source = str(out or path)
            self.show_model()
            show_info(f"Model saved to {out or path}")

        return start_function_worker(
            save_model, model, str(path), on_returned=saved, on_finished=self._end, desc="Saving model"
        )
