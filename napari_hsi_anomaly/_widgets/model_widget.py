"""The Model dock: train the 3-D CAE on a reference population (live loss), load, save.

Parts: ``model_params.TrainForm`` (settings), ``loss_plot.LossPlot`` (live curve),
``model_io.ModelBox`` (what was trained, Load / Save / Sample). Training runs in a worker; the dock
scrolls inside itself so the window fits a 1080-px screen, and the loss curve sits right under the
Train button so it is on screen while training.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_hsi_anomaly._widgets import model_io
from napari_hsi_anomaly._widgets.cube_widget import is_cube_layer, layer_cube
from napari_hsi_anomaly._widgets.loss_plot import LossPlot
from napari_hsi_anomaly._widgets.model_params import TrainForm
from napari_hsi_anomaly._widgets.scroll import fit_label_height, scroll_dock
from napari_hsi_anomaly._widgets.state import get_state
from napari_hsi_anomaly._widgets.workers import connect_alive, notify_error, start_generator_worker
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError
from napari_hsi_anomaly.core.progress import Progress


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
        self._build()
        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_layers_changed)
        layers.events.removed.connect(self._on_layers_changed)
        for layer in layers:
            layer.events.name.connect(self._on_layers_changed)
        self.state.cube_changed.connect(self._on_cube_changed)
        if self.state.scenes is not None:
            connect_alive(self, self.state.scenes.changed, self._refresh_population)
        self.state.bands_changed.connect(self._show_model)
        self.state.model_changed.connect(self._show_model)
        self._refresh_population()
        self.form.fit_to(self.state.cube)
        self._show_model()
        self._show_plan()

    # ---- layout
    def _build(self) -> None:
        self.form = TrainForm()
        f = self.form
        self.preset, self.window_size, self.epochs, self.batch = f.preset, f.window_size, f.epochs, f.batch
        self.optimizer, self.lr, self.device, self.seed = f.optimizer, f.lr, f.device, f.seed

        self.population = QListWidget()
        self.population.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.population.setToolTip(
            "Reference population: the cubes to train on (Ctrl/Shift-click for several; same bands)."
        )
        self.population.setMaximumHeight(54)
        pop_row = QHBoxLayout()
        pop_row.addWidget(QLabel("Train on"))
        pop_row.addWidget(self.population, 1)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train a new model in the background; the current one stays till then.")
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the previous model is kept.")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)

        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        self.plan_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plan_label.setStyleSheet("color: #a0a4ab;")
        self.plan_label.setToolTip("What Train will do (the saved model's summary uses the same words).")
        for signal in self.form.changed_signals():
            signal.connect(self._show_plan)

        self.live_label = QLabel("")
        self.live_label.setWordWrap(True)
        self.live_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.live_label.hide()
        self.loss_plot = LossPlot(theme=str(getattr(self.viewer, "theme", "dark")))
        self.loss_plot.hide()  # shown from the first training on

        train_box = QGroupBox("Train")
        box = QVBoxLayout(train_box)
        box.setContentsMargins(6, 4, 6, 4)
        box.setSpacing(3)
        box.addWidget(self.form)
        box.addWidget(self.plan_label)
        box.addLayout(pop_row)
        box.addLayout(buttons)
        box.addWidget(self.live_label)
        box.addWidget(self.loss_plot)

        self.model_box = model_io.ModelBox(self.state, on_busy=self._set_enabled)
        mb = self.model_box
        self.model_label, self.warning_label = mb.label, mb.warning
        self.load_button, self.save_button = mb.load_button, mb.save_button
        self.sample_button = mb.sample_button
        self.load_from, self.save_to, self.load_sample_model = mb.load_from, mb.save_to, mb.load_sample_model

        scroll_dock(self, [train_box, self.model_box])
        self.setMinimumWidth(280)
        self._set_enabled()

    @property
    def training(self) -> bool:
        return self.worker is not None

    def _set_enabled(self) -> None:
        idle = not self.training and self.model_box.busy == 0
        self.train_button.setEnabled(idle)
        self.cancel_button.setEnabled(self.training)
        self.model_box.set_enabled(not self.training)

    # ---- reference population
    def _on_layers_changed(self, event: Any) -> None:
        if event.type == "inserted":
            event.value.events.name.connect(self._on_layers_changed)
        self._refresh_population()

    def _refresh_population(self) -> None:
        chosen = {item.text() for item in self.population.selectedItems()}
        names = list(self._population_layers())
        if not chosen & set(names) and self.state.cube_layer in names:
            chosen = {self.state.cube_layer}
        self.population.clear()
        self.population.addItems(names)
        for i, name in enumerate(names):
            self.population.item(i).setSelected(name in chosen)

    def _population_layers(self) -> dict:
        """Every opened scene's cube layer by name (the scenes off screen too), else the viewer's."""
        mgr = self.state.scenes
        if mgr is not None and mgr.scenes:
            pairs = ((s.name, mgr.band_stack(s)) for s in mgr.scenes)
            return {name: lay for name, lay in pairs if lay is not None}
        return {layer.name: layer for layer in self.viewer.layers if is_cube_layer(layer)}

    def _on_cube_changed(self, cube: Any) -> None:
        if len(self.population.selectedItems()) <= 1:  # follow the Cube dock unless several chosen
            self.population.clearSelection()
        self._refresh_population()
        self.form.fit_to(cube)
        self._show_model()
        self._show_plan()

    def population_cubes(self) -> list[Any]:
        """The selected layers' cubes (the current cube when none), with the Cube dock's band selection."""
        cubes, layers = [], self._population_layers()
        for item in self.population.selectedItems():
            if item.text() in layers:
                cube = layer_cube(layers[item.text()])
                if cube is not None:
                    cubes.append(cube)
        if not cubes and self.state.cube is not None:
            cubes = [self.state.cube]
        bands, current = self.state.band_selection, self.state.cube
        if bands is not None and current is not None:
            cubes = [
                c.select_bands(bands) if c.bands == current.bands and hasattr(c, "select_bands") else c
                for c in cubes
            ]
        return cubes

    # ---- training
    def train(self) -> Any:
        """Start training in a worker; returns the worker (None when nothing to train on)."""
        from napari_hsi_anomaly.core.model import iter_train

        if self.training:
            return self.worker
        cubes = self.population_cubes()
        if not cubes:
            notify_error(ModelError("Choose a cube first (Cube dock) or select layers under 'Train on'."))
            return None
        try:
            config = self.form.config()
        except HsiAnomalyError as exc:
            notify_error(exc)
            return None
        options = self.form.options()
        self.loss_plot.reset(options.epochs)
        self.loss_plot.show()
        self.live_label.show()
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
        val = v.get("val_loss") if v.get("phase") == "epoch_end" else None
        self.loss_plot.add(p.done / steps, v.get("loss"), val)
        self.live_label.setText(progress_text(p))

    def _on_trained(self, model: Any) -> None:
        self.loss_plot.redraw()
        self.state.set_model(model, "trained")
        self.live_label.setText(f"Training done: {model_io.training_text(model.summary)}.")
        fit_label_height(self.live_label, self.width() - 24)

    def _on_aborted(self) -> None:
        self.loss_plot.redraw()
        self.live_label.setText("Training cancelled — previous model kept.")

    def _on_error(self, exc: BaseException) -> None:
        self.live_label.setText(f"Training failed: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_enabled()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        for label in (self.plan_label, self.live_label, self.model_label):
            fit_label_height(label, self.width() - 24)

    def _show_plan(self, *_: Any) -> None:
        try:
            self.plan_label.setText(self.form.plan())
            fit_label_height(self.plan_label, self.width() - 24)
        except Exception:  # a half-typed value: the plan shows again at the next change
            self.plan_label.setText("")

    def _show_model(self, *_: Any) -> None:
        self.model_box.show_model()
        self._set_enabled()
