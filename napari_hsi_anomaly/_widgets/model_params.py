"""The Model dock's training form: preset, window, epochs, batch, optimiser, rate, device, seed.

Two columns so the form stays short (the loss curve below it must stay on screen at 1080 px).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QSpinBox, QWidget

OPTIMIZERS = ("adadelta", "adam")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_EPOCHS = {"fast": 5, "thesis": 10}


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


class CompactDoubleSpinBox(QDoubleSpinBox):
    """Shows ``1`` and ``0.001`` rather than ``1.000000`` and ``0.001000``."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".") or "0"


class TrainForm(QWidget):
    """The training settings; ``config()`` and ``options()`` turn them into core objects."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from napari_hsi_anomaly.core.model import PRESETS

        self.preset = QComboBox()
        self.preset.addItems(sorted(PRESETS, key=lambda k: k != "fast"))
        self.preset.setToolTip("fast: small CPU-friendly network; thesis: the thesis 3-D CAE (slow on CPU).")
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
        self.lr = CompactDoubleSpinBox()
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
            combo.setMinimumContentsLength(5)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        pairs = (
            ("Preset", self.preset, "Window", self.window_size),
            ("Epochs", self.epochs, "Batch", self.batch),
            ("Optimizer", self.optimizer, "Rate", self.lr),
            ("Device", self.device, "Seed", self.seed),
        )
        for row, (l1, f1, l2, f2) in enumerate(pairs):
            grid.addWidget(QLabel(l1), row, 0)
            grid.addWidget(f1, row, 1)
            grid.addWidget(QLabel(l2), row, 2)
            grid.addWidget(f2, row, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.auto: Any = None  # auto_train_options of the current scene
        self._cube: Any = None
        self.preset.currentTextChanged.connect(self._on_preset)
        self.optimizer.currentTextChanged.connect(self._on_optimizer)
        self._on_preset(self.preset.currentText())
        self._on_optimizer(self.optimizer.currentText())

    def _on_preset(self, name: str) -> None:
        from napari_hsi_anomaly.core.model import PRESETS

        if name in PRESETS:
            self.window_size.setValue(PRESETS[name].window)
            self.epochs.setValue(DEFAULT_EPOCHS.get(name, 5))
            self.fit_to(self._cube)

    def _on_optimizer(self, name: str) -> None:
        self.lr.setValue(1.0 if name == "adadelta" else 1e-3)

    def fit_to(self, cube: Any) -> None:
        """Defaults that suit the scene (``core.model.auto_train_options``): random crops that fit it,
        Adam, a fixed amount of work spread over a few epochs of several steps each."""
        from napari_hsi_anomaly.core.model import auto_train_options

        if cube is None:
            return
        self._cube = cube
        try:
            auto = auto_train_options(cube, self.preset.currentText(), seed=self.seed.value())
        except Exception:  # a preset or cube the helper cannot size: keep the form as it is
            return
        self.auto = auto
        self.window_size.setValue(int(auto.crop or self.window_size.value()))
        self.epochs.setValue(int(auto.epochs))
        self.batch.setValue(int(auto.batch_size))
        self.optimizer.setCurrentText(auto.optimizer)
        self.lr.setValue(auto.lr())

    def plan(self) -> str:
        """What Train will do, in the words the training summary uses."""
        from napari_hsi_anomaly.core.model.train import describe_training

        if self.auto is None:
            return ""
        opts = self.options()
        return describe_training(opts, self.window_size.value(), opts.steps_per_epoch or 0,
                                 self.preset.currentText())

    def changed_signals(self) -> list[Any]:
        """Signals of every field (to refresh a preview of the plan)."""
        spins = (self.window_size, self.epochs, self.batch, self.lr, self.seed)
        combos = (self.preset, self.optimizer, self.device)
        return [w.valueChanged for w in spins] + [c.currentIndexChanged for c in combos]

    def config(self) -> Any:
        """The chosen preset with the chosen window (``HsiAnomalyError`` for a bad window)."""
        from napari_hsi_anomaly.core.model import PRESETS

        return replace(PRESETS[self.preset.currentText()], window=self.window_size.value())

    def options(self) -> Any:
        from napari_hsi_anomaly.core.model import TrainOptions

        auto = self.auto
        return TrainOptions(
            epochs=self.epochs.value(),
            batch_size=self.batch.value(),
            optimizer=self.optimizer.currentText(),
            learning_rate=self.lr.value(),
            seed=self.seed.value(),
            device=self.device.currentText(),
            threads=max(1, (os.cpu_count() or 2) - 1),  # leave a core to the GUI
            crop=self.window_size.value(),  # random crops of the window's size: several steps an epoch
            steps_per_epoch=auto.steps_per_epoch if auto is not None else None,
            val_fraction=auto.val_fraction if auto is not None else 0.1,
        )
