"""The detector interface: ``Param`` declarations, ``Detector`` (settings + fit) and ``Scorer`` (fitted).

A ``Detector`` is fitted on reference cubes (one or several with the same bands: the reference
population) and returns a ``Scorer``, the fitted "normal model", which turns any target cube with the
same bands into a ``Detection``. ``core.scoring.iter_detect`` is the one-cube case: fit on ``[cube]``,
score ``cube``.

Inside, every scorer is a list of *parts* (one for a plain detector, several for a combination in
``combined.py``). A part gives, per target, a ``Raw`` outlyingness: a fixed per-pixel map (RX distance,
reconstruction error, ...) or a GLOSH handle that answers ``score(p_min)``. ``calibration.compose``
turns the parts' raw values into the calibrated score map (see there for what a score means).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube, rows_view
from napari_hsi_anomaly.core.detectors import calibration as cal
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run

_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One parameter, declared once: Detect dock form, CLI option (``--name-with-dashes``), profile."""

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def option(self) -> str:
        """The CLI option: ``--p-min`` for ``p_min``."""
        return "--" + self.name.replace("_", "-")

    def validate(self, value: Any, where: str = "") -> Any:
        """``value`` converted to ``kind`` and checked; ``HsiAnomalyError`` naming the parameter."""
        label = f"{where}{self.name}"
        if value is None:
            if self.default is None:
                return None  # "auto"
            raise HsiAnomalyError(f"{label} needs a value ({self.help}).")
        try:
            if self.kind is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    v: Any = value.lower() in ("true", "1", "yes")
                else:
                    v = bool(value)
            elif self.kind is int:
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError(value)
                v = int(float(value))
            elif self.kind is float:
                v = float(value)
                if not np.isfinite(v):
                    raise ValueError(value)
            else:
                v = self.kind(value)
        except (TypeError, ValueError):
            raise HsiAnomalyError(f"{label} must be {_KIND_NAMES.get(self.kind, self.kind.__name__)}; "
                                  f"got {value!r}.") from None
        if self.choices is not None and v not in self.choices:
            raise HsiAnomalyError(f"{label} must be one of {', '.join(map(str, self.choices))}; got {v!r}.")
        if self.minimum is not None and v < self.minimum:
            raise HsiAnomalyError(f"{label} must be at least {self.minimum:g}; got {v!r}.")
        if self.maximum is not None and v > self.maximum:
            raise HsiAnomalyError(f"{label} must be at most {self.maximum:g}; got {v!r}.")
        return v


# parameters shared by the GLOSH-based detectors
P_MIN = Param("p_min", int, None, "HDBSCAN minimum cluster size (auto: see auto_p_min)", minimum=2)
MIN_SAMPLES = Param("min_samples", int, 10, "HDBSCAN min_samples (neighbours for the core distance)",
                    minimum=1, maximum=1000)
MAX_FIT = Param("max_fit", int, 20000, "at most this many reference points fitted (the rest predicted)",
                minimum=100, maximum=200000)
SEED = Param("seed", int, 0, "random seed (subsampling)", minimum=0)
GLOSH_PARAMS = (P_MIN, MIN_SAMPLES, MAX_FIT, SEED)


@dataclass
class Raw:
    """One part's raw outlyingness on a target (higher = more outlying).

    ``fixed``: a ``(rows, cols)`` float32 map (NaN where invalid); or ``glosh``: an object with
    ``score(p_min) -> GloshResult`` over ``regions`` (None: one point per pixel, row-major).
    ``n_points``: the reference points behind ``glosh`` (for the automatic p_min).
    """

    fixed: np.ndarray | None = None
    glosh: Any = None
    regions: np.ndarray | None = None
    feature: str = "pixel"
    n_points: int = 0
    per_pixel: bool = True
    reference: Any = None  # GLOSH: the reference hierarchy (``score(p_min)`` over the reference rows)
    extras: dict = field(default_factory=dict)


def check_cubes(cubes: Sequence[Cube | np.ndarray] | Cube | np.ndarray) -> list[Cube]:
    """Reference cubes as a list of ``Cube`` with the same band count (and wavelengths where known)."""
    if isinstance(cubes, (Cube, np.ndarray)):
        cubes = [cubes]
    out = [as_cube(c, "Fitting") for c in cubes]
    if not out:
        raise HsiAnomalyError("Fitting needs at least one reference cube.")
    for i, c in enumerate(out[1:], 1):
        if c.bands != out[0].bands:
            raise ShapeError(f"Reference cube {i + 1} ({c.name}) has {c.bands} bands; the first has "
                             f"{out[0].bands}. Give reference cubes with the same bands.")
        w0, w = out[0].wavelengths, c.wavelengths
        if w0 is not None and w is not None and not np.allclose(w0, w, atol=0.5, equal_nan=True):
            raise ShapeError(f"Reference cube {i + 1} ({c.name}) has other wavelengths than the first. "
                             "Give reference cubes with the same bands.")
        if not c.valid_mask().any():
            raise HsiAnomalyError(f"Reference cube {i + 1} ({c.name}) has no valid pixel.")
    if not out[0].valid_mask().any():
        raise HsiAnomalyError("The cube has no valid pixel (every pixel has NaN or no-data in some band).")
    return out


class Detector(ABC):
    """A detector's settings; ``iter_fit(cubes)`` returns its ``Scorer``. Class attributes describe it."""

    name: ClassVar[str]
    label: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()  # the instance's ``params`` is the validated dict
    needs_model: ClassVar[bool] = False
    uses_p_min: ClassVar[bool] = False
    scorer_class: ClassVar[type[Scorer]]  # what ``iter_fit`` returns (``from_state`` rebuilds it)
    calibration_z0: ClassVar[float] = cal.Z0  # score 0.7 at this many reference spreads (calibration.py)
    order: ClassVar[float] = float("inf")  # place in the method lists (registry.detector_names)
    requires: ClassVar[tuple[str, ...]] = ()  # optional packages: not registered where one is missing

    def __init__(self, **params: Any) -> None:
        decl = {p.name: p for p in type(self).params}
        unknown = sorted(set(params) - set(decl))
        if unknown:
            names = ", ".join(decl) or "none"
            raise HsiAnomalyError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                                  f"it takes: {names}.")
        self.params: dict[str, Any] = {  # type: ignore[misc]
            n: p.validate(params.get(n, p.default), f"{self.name}: ") for n, p in decl.items()
        }

    @classmethod
    def declared(cls) -> tuple[Param, ...]:
        """The parameter declarations (``cls.params``; an instance's ``params`` is its values)."""
        return cls.params

    def _iter_fit(
        self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
    ) -> Generator[Progress, None, Scorer]:
        """The detector's own fitting (``iter_fit`` adds the calibration); or override ``iter_fit``."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _iter_fit nor iter_fit")

    def iter_fit(
        self, cubes: Sequence[Cube] | Cube | np.ndarray, *, model: Any = None, train_options: Any = None
    ) -> Generator[Progress, None, Scorer]:
        """Fit the normal model on the reference ``cubes`` (and calibrate it on them); returns the
        ``Scorer``."""
        cubes = check_cubes(cubes)  # type: ignore[arg-type]
        scorer = yield from self._iter_fit(cubes, model=model, train_options=train_options)
        if scorer.detector_class is None:  # the fitted part carries its detector (z0, halo)
            scorer.detector_class = type(self)
        yield from scorer.iter_calibrate(cubes)
        return scorer

    def fit(self, cubes: Sequence[Cube] | Cube | np.ndarray, **kwargs: Any) -> Scorer:
        """``iter_fit`` run to the end."""
        return run(self.iter_fit(cubes, **kwargs))


class Scorer(ABC):
    """A fitted normal model; ``iter_score(cube)`` gives a ``Detection`` of a target with the same bands.

    ``parts()``: the scorers whose raw outputs are composed (itself for a plain detector).
    """

    detector: str
    params: dict
    bands: int
    wavelengths: np.ndarray | None
    detector_class: type[Detector] | None = None  # set by ``Detector.iter_fit`` and ``scorer_from_state``

    def parts(self) -> list[Scorer]:
        return [self]

    def halo(self) -> int:
        """Rows beyond its own that a block of the target needs for this part's map to be exact
        (windowed and spatial parts; ``core.scoring.blocks``)."""
        return 0

    def detection_params(self) -> dict:
        """What the ``Detection``'s params record about this scorer beyond its method and GLOSH
        settings (rx-local: its window); a combination merges its parts'."""
        out: dict = {}
        for part in self.parts():
            if part is not self:
                out.update(part.detection_params())
        return out

    def part_weights(self) -> list[float]:
        """The weight of each part in the mean of a combination (all 1 unless a combination says)."""
        return [1.0] * len(self.parts())

    @abstractmethod
    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        """This part's raw outlyingness on ``cube``."""

    def check_target(self, cube: Cube | np.ndarray) -> Cube:
        cube = as_cube(cube, "Scoring")
        if cube.bands != self.bands:
            raise ShapeError(f"{cube.name} has {cube.bands} bands; the {self.detector} normal model was "
                             f"fitted on {self.bands}. Score cubes with the reference's bands.")
        w = self.wavelengths
        if w is not None and cube.wavelengths is not None and not np.allclose(
                w, cube.wavelengths, atol=0.5, equal_nan=True):
            raise ShapeError(f"{cube.name}: its wavelengths differ from the reference's "
                             f"({self.detector} normal model). Score cubes with the reference's bands.")
        return cube

    calibration: Any = None  # calibration.Calibration, set by iter_calibrate (None: the target's own)

    def raw_for(self, cube: Cube) -> Generator[Progress, None, Raw]:
        """``iter_raw`` with a cache of the reference cubes' fixed maps (computed once at calibration)."""
        cache = self.__dict__.setdefault("_raw_cache", [])
        for ref, raw in cache:
            if ref() is cube:
                return raw
        raw = yield from self.iter_raw(cube)
        return raw

    def remember_raw(self, cube: Cube, raw: Raw) -> None:
        import weakref

        if raw.fixed is not None:
            self.__dict__.setdefault("_raw_cache", []).append((weakref.ref(cube), raw))

    def iter_calibrate(self, cubes: Sequence[Cube]) -> Generator[Progress, None, None]:
        """Learn the calibration from the reference cubes' raw outlyingness (``calibration.py``)."""
        yield from cal.iter_calibrate(self, cubes)

    def iter_score(self, cube: Cube | np.ndarray, rows: tuple[int, int] | None = None
                   ) -> Generator[Progress, None, Any]:
        """Score ``cube`` against this normal model: a ``Detection``.

        ``rows=(lo, hi)``: a ``Detection`` of those rows of ``cube`` only (a row block with its halo):
        each part reads at most its own ``halo()`` rows beyond them, so a pixel-wise part (GLOSH) scores
        no halo row and a spatial part sees as many as it needs. A scorer whose composition is itself
        spatial (its own ``halo()``: a combination, or CAE GLOSH's peaks) is scored on all of ``cube`` and
        cropped."""
        cube = self.check_target(cube)
        spatial = self.parts() != [self] or (self.calibration is not None and self.calibration.fusion)
        if rows is not None and spatial and self.halo() > 0:
            det = yield from self.iter_score(cube)
            lo, hi = rows
            compose = det._compose
            if compose is not None:  # a new p_min: the rows of the new map
                det._compose = lambda results: compose(results)[lo:hi]
            det.score_map = det.score_map[lo:hi]  # (extras stay the whole cube's)
            return det
        target = cube if rows is None else rows_of(cube, *rows)
        valid = target.valid_mask()
        if not valid.any():
            raise HsiAnomalyError(f"{cube.name}: no valid pixel (every pixel has NaN or no-data in a band).")
        raws = []
        for part in self.parts():
            if rows is None:
                raw = yield from part.raw_for(cube)
            else:
                raw = yield from part_rows_raw(part, cube, *rows)
            raws.append(raw)
        det = cal.compose(self, target, valid, raws)
        yield Progress(1, 1, f"{self.detector}: done")
        return det

    def score(self, cube: Cube | np.ndarray) -> Any:
        """``iter_score`` run to the end."""
        return run(self.iter_score(cube))

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Plain arrays (safetensors) and JSON-able meta that ``from_state`` turns back into a scorer."""
        arrays, meta = self._state()
        if self.calibration is not None:
            a, m = self.calibration.state()
            arrays = {**arrays, **{f"calib.{k}": v for k, v in a.items()}}
            meta = {**meta, "calibration": m}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> Scorer:
        """The scorer ``state`` describes (``model``: the CAE for detectors that need one)."""
        own = {k: v for k, v in arrays.items() if not k.startswith("calib.")}
        scorer = cls._from_state(own, meta, model=model)
        if "calibration" in meta:
            scorer.calibration = cal.Calibration.from_state(prefixed(arrays, "calib."), meta["calibration"])
        return scorer

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        """The detector's own arrays and meta (``state`` adds the calibration)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _state nor state")

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> Scorer:
        """The detector's own part of ``from_state``."""
        raise NotImplementedError(f"{cls.__name__} implements neither _from_state nor from_state")

    def _meta(self) -> dict:
        wl = None if self.wavelengths is None else [float(x) for x in self.wavelengths]
        return {"detector": self.detector, "params": dict(self.params), "bands": int(self.bands),
                "wavelengths": wl}


def rows_of(cube: Cube, lo: int, hi: int) -> Cube:
    """Rows ``[lo, hi)`` of ``cube`` as a cube (a view; the cube itself when that is all of it)."""
    return cube if lo == 0 and hi == cube.rows else rows_view(cube, lo, hi)


def part_rows_raw(part: Scorer, cube: Cube, lo: int, hi: int) -> Generator[Progress, None, Raw]:
    """``part``'s raw outlyingness on rows ``[lo, hi)`` of ``cube``, computed on those rows plus the
    part's ``halo()`` rows each side (as far as ``cube`` goes) and cropped back: exact by the halo's
    contract. A spatial part gives fixed maps; a GLOSH part (halo 0) is scored on the rows alone."""
    halo = int(part.halo())
    a0, a1 = max(0, lo - halo), min(cube.rows, hi + halo)
    raw = yield from part.raw_for(rows_of(cube, a0, a1))
    if (a0, a1) == (lo, hi):
        return raw
    if raw.glosh is not None:  # pragma: no cover - no GLOSH part declares a halo
        raise HsiAnomalyError(f"{part.detector}: a GLOSH part with a halo cannot be scored in row blocks.")
    shape, cut = (a1 - a0, cube.cols), slice(lo - a0, hi - a0)

    def crop(a: Any) -> Any:
        return a[cut] if isinstance(a, np.ndarray) and a.shape[:2] == shape else a

    return replace(raw, fixed=crop(raw.fixed), extras={k: crop(v) for k, v in raw.extras.items()})


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose key starts with ``prefix``, with it removed."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
