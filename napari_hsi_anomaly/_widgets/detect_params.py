"""The Detect dock's parameter form: the detector list and one magicgui form per detector.

Every field is built from the detector's ``Param`` declarations in the registry
(``core.detectors.registry``), the same declarations the CLI options and saved profiles read, so a
detector registered later (or in a test) gets its form for free. ``p_min`` is not a form field: GLOSH
detectors (``uses_p_min``) get the live slider with an "auto" box instead. A numeric parameter whose
default is None ("auto") shows "auto" at the bottom of its spin box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QVBoxLayout, QWidget
from superqt import QCollapsible, QLabeledSlider

LIVE = ("p_min",)  # parameters with a live control of their own (never a form field)


@dataclass(frozen=True)
class Spec:
    """What the dock needs to know about one registered detector."""

    name: str
    label: str
    summary: str
    params: tuple
    needs_model: bool
    uses_p_min: bool


def detector_specs() -> list[Spec]:
    """The registered detectors in display order (read at call time), default first."""
    from napari_hsi_anomaly.core.detectors import registry as reg

    specs = []
    for name in reg.detector_names():
        cls = reg.get_detector(name)
        specs.append(Spec(name, cls.label, cls.summary, tuple(cls.params), bool(cls.needs_model),
                          bool(cls.uses_p_min)))
    return sorted(specs, key=lambda s: s.name != reg.DEFAULT_METHOD)


def default_method() -> str:
    from napari_hsi_anomaly.core.detectors.registry import DEFAULT_METHOD

    return str(DEFAULT_METHOD)


# ---------------------------------------------------------------- magicgui fields
AUTO = "auto"


def param_widget(p: Any) -> Any:
    """A magicgui widget for one ``Param`` (choices -> combo, bool -> check box, numbers -> spin box)."""
    from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit, SpinBox

    opts = {"name": p.name, "label": p.name, "tooltip": p.help}
    if p.choices:
        choices = list(p.choices)
        value = p.default if p.default in choices else choices[0]
        return ComboBox(choices=choices, value=value, **opts)
    if p.kind is bool:
        return CheckBox(value=bool(p.default), **opts)
    if p.kind in (int, float):
        is_int = p.kind is int
        lo = p.minimum if p.minimum is not None else (0 if is_int else 0.0)
        hi = p.maximum if p.maximum is not None else (10**9 if is_int else 1e9)
        step = 1 if is_int else _float_step(p)
        auto = p.default is None
        if auto:  # the spin box's lowest value reads "auto"
            lo = lo - step
        cls = SpinBox if is_int else FloatSpinBox
        w = cls(value=lo if auto else p.default, min=lo, max=hi, step=step, **opts)
        if not is_int:  # enough decimals for the default (2 decimals made local_ridge 0.001 a silent 0)
            w.native.setDecimals(_decimals(p))
            w.value = lo if auto else p.default
        if auto:
            w.native.setSpecialValueText(AUTO)
        w._hsi_auto = lo if auto else None
        return w
    return LineEdit(value="" if p.default is None else str(p.default), **opts)


def _float_step(p: Any) -> float:
    ref = [abs(float(v)) for v in (p.default, p.maximum) if isinstance(v, (int, float)) and v]
    if isinstance(p.default, (int, float)) and 0 < abs(float(p.default)) < 0.01:
        return float(10.0 ** math.floor(math.log10(abs(float(p.default)))))  # 0.001 steps by 0.001
    return 0.01 if not ref or min(ref) <= 1 else 0.1


def _decimals(p: Any) -> int:
    """Decimals that show the default exactly (at least 2; 0.001 -> 3, 2.5e-4 -> 5)."""
    d = float(p.default) if isinstance(p.default, (int, float)) else 0.0
    for k in range(2, 10):
        if abs(round(d, k) - d) <= 1e-12 * max(1.0, abs(d)):
            return k
    return 10


def widget_value(w: Any) -> Any:
    """The parameter value of a field (None where it shows "auto")."""
    auto = getattr(w, "_hsi_auto", None)
    value = w.value
    if auto is not None and value <= auto:
        return None
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def build_form(spec: Spec) -> Any:
    """A magicgui Container with one field per parameter of ``spec`` (live ones left out)."""
    from magicgui.widgets import Container

    fields = [param_widget(p) for p in spec.params if p.name not in LIVE]
    form = Container(widgets=fields, labels=True)
    form.margins = (0, 0, 0, 0)
    return form


class ParamsForm(QWidget):
    """Detector combo, its magicgui form and the live p_min slider."""

    changed = Signal()  # the detector or a parameter changed
    p_min_moved = Signal(int)  # the user moved the p_min slider

    def __init__(self) -> None:
        super().__init__()
        self.specs = {s.name: s for s in detector_specs()}
        self._forms: dict[str, Any] = {}
        self.method = QComboBox()
        default = default_method()
        for spec in self.specs.values():
            tag = " (default)" if spec.name == default else ""
            self.method.addItem(spec.label + tag, spec.name)
            self.method.setItemData(self.method.count() - 1, spec.summary, Qt.ItemDataRole.ToolTipRole)
        self.method.setCurrentIndex(max(0, self.method.findData(default)))
        self.p_min = QLabeledSlider(Qt.Orientation.Horizontal)
        self.p_min.setRange(2, 2000)
        self.p_min.setValue(100)
        self.p_min.setToolTip("GLOSH minimum cluster size; moves re-score from the cached hierarchy")
        self.p_min_auto = QCheckBox("auto")
        self.p_min_auto.setChecked(True)
        self.p_min_auto.setToolTip(
            "Score picks p_min: max(100, 8 % of the pixels) per pixel, the thesis's 100 of 2925 per "
            "window/section (a group of p_min similar pixels is a cluster, not an anomaly). "
            "Moving the slider turns auto off."
        )
        self._p_row = QWidget()
        p_row = QHBoxLayout(self._p_row)
        p_row.setContentsMargins(0, 0, 0, 0)
        p_row.addWidget(self.p_min, 1)
        p_row.addWidget(self.p_min_auto)
        top = QFormLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addRow("method", self.method)
        # the detector's parameters fold away (defaults are measured choices; the dock stays short)
        self.section = QCollapsible("parameters")
        self.section.setDuration(0)
        self.section.layout().setContentsMargins(0, 0, 0, 0)
        self._form_host = QWidget()
        self._form_box = QVBoxLayout(self._form_host)
        self._form_box.setContentsMargins(0, 0, 0, 0)
        self.section.addWidget(self._form_host)
        self._p_form = QFormLayout()
        self._p_form.setContentsMargins(0, 0, 0, 0)
        self._p_form.addRow("p_min", self._p_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.section)
        layout.addLayout(self._p_form)
        self.method.currentIndexChanged.connect(self._on_method)
        self.p_min.valueChanged.connect(self._on_p_min)
        self._on_method()

    # ---------------------------------------------------------------- state
    @property
    def method_name(self) -> str:
        return str(self.method.currentData())

    @property
    def spec(self) -> Spec:
        return self.specs[self.method_name]

    def form(self, name: str | None = None) -> Any:
        """The magicgui form of detector ``name`` (the current one by default), built once."""
        name = name or self.method_name
        if name not in self._forms:
            form = build_form(self.specs[name])
            form.changed.connect(lambda *_: self.changed.emit())
            self._forms[name] = form
            self._form_box.addWidget(form.native)
        return self._forms[name]

    def set_method(self, name: str, feature: str | None = None) -> None:
        """Select a detector by registry name (and its ``feature`` where it has one)."""
        idx = self.method.findData(name)
        if idx < 0:
            raise ValueError(f"unknown method {name!r}")
        self.method.setCurrentIndex(idx)
        if feature is not None:
            self.set_param("feature", feature)

    def set_param(self, name: str, value: Any) -> None:
        form = self.form()
        if name == "p_min":
            self.p_min_auto.setChecked(value is None)
            if value is not None:
                self.show_p_min(int(value))
            return
        try:
            w = form[name]
        except (KeyError, AttributeError) as exc:
            raise ValueError(f"{self.method_name} has no parameter {name!r}") from exc
        if value is None and getattr(w, "_hsi_auto", None) is not None:
            value = w._hsi_auto
        w.value = value

    def values(self) -> dict[str, Any]:
        """The parameters for a Score: the form's fields, plus p_min for GLOSH detectors."""
        out = {w.name: widget_value(w) for w in self.form()}
        if self.spec.uses_p_min and any(p.name == "p_min" for p in self.spec.params):
            out["p_min"] = None if self.p_min_auto.isChecked() else int(self.p_min.value())
        return out

    def _on_method(self, *_: Any) -> None:
        current = self.form()
        for form in self._forms.values():
            form.native.setVisible(form is current)
        n = len(current)
        self.section.setText(f"parameters ({n})" if n else "parameters (none)")
        self.section.setEnabled(n > 0)
        uses = self.spec.uses_p_min
        self._p_row.setVisible(uses)
        label = self._p_form.labelForField(self._p_row)
        if label is not None:
            label.setVisible(uses)
        warning = getattr(self, "p_min_warning", None)
        if warning is not None and not uses:
            warning.setVisible(False)  # no p_min, nothing to warn about
        self.changed.emit()

    # ---------------------------------------------------------------- p_min
    def place_p_min_warning(self, label: QWidget) -> None:
        """Put the p_min warning (``ThresholdPanel.pmin_warn``, which writes it) right under the slider,
        so the risk shows where p_min is chosen, before the result changes."""
        self._p_form.addRow(label)
        self.p_min_warning = label
        self._on_method()

    def show_p_min(self, value: int) -> None:
        """Put a p_min on the slider without a ``p_min_moved`` (the one a Score chose)."""
        self.p_min.blockSignals(True)
        try:
            if value > self.p_min.maximum():
                self.p_min.setMaximum(value * 2)
            self.p_min.setValue(value)
        finally:
            self.p_min.blockSignals(False)

    def show_auto_p_min(self, cube: Any) -> None:
        """With "auto" checked, show ``cube``'s automatic p_min (per pixel) on the slider, not the previous
        scene's (a Score then shows the one it used)."""
        if not self.p_min_auto.isChecked() or self.values().get("feature", "pixel") != "pixel":
            return
        from napari_hsi_anomaly.core.detectors.calibration import auto_p_min

        self.show_p_min(auto_p_min(int(cube.rows) * int(cube.cols)))

    def _on_p_min(self, value: int) -> None:
        self.p_min_auto.setChecked(False)  # the user chose a value
        self.p_min_moved.emit(int(value))
