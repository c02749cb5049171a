"""The Model dock: train the 3-D CAE on a reference population (live loss), load, save."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import napari_hsi_anomaly
from napari_hsi_anomaly._widgets.cube_widget import is_cube_layer, layer_cube
from napari_hsi_anomaly._widgets.loss_plot import LossPlot
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import notify_error, start_function_worker, start_generator_worker
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError
from napari_hsi_anomaly.core.progress import Progress

SAMPLE_MODEL = Path(napari_hsi_anomaly.__file__).resolve().parents[1] / "sample_data" / "fast_model"
OPTIMIZERS = ("adadelta", "adam")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_EPOCHS = {"fast": 5, "thesis": 10}
WARN_STYLE = "color: #ffb000;"


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


def progress_text(p: Progress) -> str:
    """``"epoch 2/5 · step 40/120 · loss 0.0123 · 35 windows/s"`` from a training ``Progress``."""
    v = p.values
    epochs = int(v.get("epochs") or 1)
    steps = max(1, p.total // epochs) if p.total else 0
    parts = [f"epoch {v.get('epoch', '?')}/{epochs}", f"step {v.get('step', '?')}/{steps}"]
    if v.get("loss") is not None:
        parts.append(f"loss {v['loss']:.3g}")
    if v.get("val_loss") is not None:
        parts.append(f"val {v['val_loss']:.3g}")
    if v.get("windows_per_s"):
        parts.append(f"{v['windows_per_s']:.0f} windows/s")
    return " · ".join(parts)


class ModelWidget(QWidget):
    """Train (in a worker, cancellable), load and save the CAE that the Detect dock uses."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self.worker: Any = None  # the training worker while it runs
        self._io_busy = 0
        self._build()
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_layers_changed)
        layers.events.removed.connect(self._on_layers_changed)
        for layer in layers:
            layer.events.name.connect(self._on_layers_changed)
        self.state.cube_changed.connect(self._on_cube_changed)
        self.state.model_changed.connect(self._show_model)
        self._refresh_population()
        self._show_model()

    # ---- layout
    def _build(self) -> None:
        from napari_hsi_anomaly.core.model import PRESETS

        self.preset = QComboBox()
        self.preset.addItems(sorted(PRESETS, key=lambda k: k != "fast"))
        self.preset.setToolTip("fast: small CPU-friendly network; thesis: the thesis 3-D CAE (slow on CPU).")
        self.preset.currentTextChanged.connect(self._on_preset)
        self.window_size = QSpinBox()
        self.window_size.setRange(8, 512)
        self.window_size.setSingleStep(8)
        self.window_size.setSuffix(" px")
        self.window_size.setToolTip("Square training window; a multiple of the pooling (4 for both presets).")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setToolTip("Passes over the training windows.")
        self.batch = QSpinBox()
        self.batch.setRange(1, 256)
        self.batch.setValue(8)
        self.batch.setToolTip("Windows per optimisation step.")
        self.optimizer = QComboBox()
        self.optimizer.addItems(OPTIMIZERS)
        self.optimizer.setToolTip("adadelta (thesis, lr 1.0) or adam (lr 1e-3).")
        self.optimizer.currentTextChanged.connect(self._on_optimizer)
        self.lr = _CompactDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 10.0)
        self.lr.setSingleStep(1e-3)
        self.lr.setToolTip("Learning rate of the optimiser.")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setToolTip("auto: CUDA when available, else CPU.")
        if not _cuda_available():
            self.device.model().item(DEVICES.index("cuda")).setEnabled(False)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: window order, initial weights.")
        for combo in (self.preset, self.optimizer, self.device):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)

        net = QFormLayout()
        net.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, field in (
            ("Preset", self.preset),
            ("Window", self.window_size),
            ("Epochs", self.epochs),
            ("Batch size", self.batch),
            ("Optimizer", self.optimizer),
            ("Learning rate", self.lr),
            ("Device", self.device),
            ("Seed", self.seed),
        ):
            net.addRow(label, field)

        self.population = QListWidget()
        self.population.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.population.setToolTip(
            "Reference population: the cubes to train on (Ctrl/Shift-click for several; same bands)."
        )
        self.population.setMaximumHeight(60)
        net.addRow("Train on", self.population)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip(
            "Train a new model in the background; the current one stays until it ends."
        )
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the previous model is kept.")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        net.addRow(buttons)

        self.live_label = QLabel("")
        self.live_label.setWordWrap(True)
        self.live_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.loss_plot = LossPlot(self.viewer)

        train_box = QGroupBox("Train")
        train_box_layout = QVBoxLayout(train_box)
        train_box_layout.addLayout(net)
        train_box_layout.addWidget(self.live_label)
        train_box_layout.addWidget(self.loss_plot)

        self.model_label = QLabel("No model yet.")
        self.model_label.setWordWrap(True)
        self.model_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(WARN_STYLE)
        self.warning_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.warning_label.hide()
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Load a saved model directory (config.json + weights).")
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the current model to a directory.")
        self.save_button.clicked.connect(self._save_dialog)
        self.sample_button = QPushButton("Sample model")
        self.sample_button.setToolTip("Load the small pre-trained 'fast' model shipped with the repository.")
        self.sample_button.clicked.connect(self.load_sample_model)
        self.sample_button.setVisible(SAMPLE_MODEL.is_dir())
        io_row = QHBoxLayout()
        for b in (self.load_button, self.save_button, self.sample_button):
            io_row.addWidget(b)
        model_box = QGroupBox("Current model")
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(self.model_label)
        model_layout.addWidget(self.warning_label)
        model_layout.addLayout(io_row)

        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(train_box)
        inner.addWidget(model_box)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.setMinimumWidth(280)

        self._on_preset(self.preset.currentText())
        self._on_optimizer(self.optimizer.currentText())
        self._set_enabled()

    def _on_preset(self, name: str) -> None:
        from napari_hsi_anomaly.core.model import PRESETS

        if name in PRESETS:
            self.window_size.setValue(PRESETS[name].window)
            self.epochs.setValue(DEFAULT_EPOCHS.get(name, 5))

    def _on_optimizer(self, name: str) -> None:
        self.lr.setValue(1.0 if name == "adadelta" else 1e-3)

    @property
    def training(self) -> bool:
        return self.worker is not None

    def _set_enabled(self) -> None:
        idle = not self.training and self._io_busy == 0
        self.train_button.setEnabled(idle)
        self.cancel_button.setEnabled(self.training)
        self.load_button.setEnabled(idle)
        self.sample_button.setEnabled(idle)
        self.save_button.setEnabled(idle and self.state.model is not None)

    # ---- reference population
    def _on_layers_changed(self, event: Any) -> None:
        if event.type == "inserted":
            event.value.events.name.connect(self._on_layers_changed)
        self._refresh_population()

    def _refresh_population(self) -> None:
        chosen = {item.text() for item in self.population.selectedItems()}
        names = [layer.name for layer in self.viewer.layers if is_cube_layer(layer)]
        if not chosen & set(names) and self.state.cube_layer in names:
            chosen = {self.state.cube_layer}
        self.population.clear()
        self.population.addItems(names)
        for i, name in enumerate(names):
            self.population.item(i).setSelected(name in chosen)

    def _on_cube_changed(self, cube: Any) -> None:
        if len(self.population.selectedItems()) <= 1:  # follow the Cube dock unless several chosen
            self.population.clearSelection()
        self._refresh_population()
        self._show_model()

    def population_cubes(self) -> list[Any]:
        """The selected layers' cubes (the current cube when none is selected)."""
        cubes = []
        for item in self.population.selectedItems():
            if item.text() in self.viewer.layers:
                cube = layer_cube(self.viewer.layers[item.text()])
                if cube is not None:
                    cubes.append(cube)
        if not cubes and self.state.cube is not None:
            cubes = [self.state.cube]
        return cubes

    # ---- training
    def train(self) -> Any:
        """Start training in a worker; returns the worker (None when nothing to train on)."""
        from napari_hsi_anomaly.core.model import PRESETS, TrainOptions, iter_train

        if self.training:
            return self.worker
        cubes = self.population_cubes()
        if not cubes:
            notify_error(ModelError("Choose a cube first (Cube dock) or select layers under 'Train on'."))
            return None
        try:
            config = replace(PRESETS[self.preset.currentText()], window=self.window_size.value())
        except HsiAnomalyError as exc:
            notify_error(exc)
            return None
        options = TrainOptions(
            epochs=self.epochs.value(),
            batch_size=self.batch.value(),
            optimizer=self.optimizer.currentText(),
            learning_rate=self.lr.value(),
            seed=self.seed.value(),
            device=self.device.currentText(),
            threads=max(1, (os.cpu_count() or 2) - 1),  # leave a core to the GUI
        )
        self.loss_plot.reset(options.epochs)
        self._steps_per_epoch = 0
        self.live_label.setText(f"Starting: {len(cubes)} cube(s), {config.preset} preset…")
        self.worker = start_generator_worker(
            iter_train,
            cubes,
            config,
            options,
            on_progress=self._on_progress,
            on_returned=self._on_trained,
            on_aborted=self._on_aborted,
            on_error=self._on_error,
            on_finished=self._on_finished,
            desc="Training CAE",
        )
        self._set_enabled()
        return self.worker

    def cancel(self) -> None:
        """Ask the training worker to stop at its next step."""
        if self.worker is not None:
            self.worker.quit()
            self.live_label.setText("Cancelling…")

    def _on_progress(self, p: Progress) -> None:
        if not isinstance(p, Progress):
            return
        v = p.values
        epochs = int(v.get("epochs") or 1)
        steps = max(1, p.total // epochs) if p.total else 1
        x = p.done / steps
        val = v.get("val_loss") if v.get("phase") == "epoch_end" else None
        self.loss_plot.add(x, v.get("loss"), val)
        self.live_label.setText(progress_text(p))

    def _on_trained(self, model: Any) -> None:
        self.loss_plot.redraw()
        self.state.set_model(model, "trained")
        loss = model.summary.get("loss")
        secs = model.summary.get("seconds")
        text = "Training done"
        if isinstance(loss, float):
            text += f": loss {loss:.4g}"
        if secs is not None:
            text += f" in {secs:.1f} s"
        self.live_label.setText(text + ".")

    def _on_aborted(self) -> None:
        self.loss_plot.redraw()
        self.live_label.setText("Training cancelled — previous model kept.")

    def _on_error(self, exc: BaseException) -> None:
        self.live_label.setText(f"Training failed: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_enabled()

    # ---- model status
    def _show_model(self, *_: Any) -> None:
        model, cube = self.state.model, self.state.cube
        if model is None:
            self.model_label.setText("No model yet: train one, or load a saved model.")
        else:
            s = model.summary
            loss = s.get("loss")
            lines = [
                f"{model.preset} · {model.bands} bands · window {model.window} px",
                f"{s.get('epochs', '?')} epochs"
                + (f" · final loss {loss:.4g}" if isinstance(loss, float) else " · untrained"),
            ]
            source = self.state.model_source
            if source:
                lines.append(f"from: {source}")
            self.model_label.setText("\n".join(lines))
        mismatch = model is not None and cube is not None and cube.bands != model.bands
        if mismatch:
            self.warning_label.setText(
                f"⚠ This model expects {model.bands} bands but the current cube has {cube.bands}: "
                "train a new model or choose another cube."
            )
        self.warning_label.setVisible(mismatch)
        self._set_enabled()

    # ---- load / save
    def _io_start(self) -> None:
        self._io_busy += 1
        self._set_enabled()

    def _io_end(self) -> None:
        self._io_busy = max(0, self._io_busy - 1)
        self._set_enabled()

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
        self._io_start()
        return start_function_worker(
            load_model,
            str(path),
            on_returned=lambda m: self._loaded(m, label),
            on_finished=self._io_end,
            desc="Loading model",
        )

    def _loaded(self, model: Any, source: str) -> None:
        self.state.set_model(model, source)
        self.live_label.setText(f"Loaded {Path(source).name or source}.")

    def load_sample_model(self) -> Any:
        return self.load_from(SAMPLE_MODEL, "sample model (fast)")

    def save_to(self, path: str | Path) -> Any:
        """Save the current model to ``path`` in a worker."""
        from napari.utils.notifications import show_info

        from napari_hsi_anomaly.core.model import save_model
        from napari_hsi_anomaly.core.model.checkpoint import replaceable

        model = self.state.model
        if model is None:
            return None
        target = Path(path)
        if not replaceable(target):
            notify_error(ModelError(f"{target} exists and is not a saved model: choose a new folder name."))
            return None
        self._io_start()

        def saved(out: Any) -> None:
            self.state.model_source = str(out or path)
            self._show_model()
            show_info(f"Model saved to {out or path}")

        return start_function_worker(
            save_model, model, str(path), on_returned=saved, on_finished=self._io_end, desc="Saving model"
        )


class _CompactDoubleSpinBox(QDoubleSpinBox):
    """Shows ``1`` and ``0.001`` rather than ``1.000000`` and ``0.001000``."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".") or "0"

