"""The thesis's method: CAE encoder features (per pixel, or f1..f4 per window/section) + HDBSCAN GLOSH.

Per pixel, GLOSH clusters the reference's ``PixelSpace`` (``core.model.features``): the leading principal
components of the encoder's pixel feature and of the signed reconstruction residual, whitened, plus the
reconstruction error normalised per band, all fitted on the reference cubes and kept in the scorer's
state; a target is projected with them.
f1..f4 are clustered as the thesis defines them (min-max scaled by GLOSH).

Per pixel, the score is composed as ``spectral-spatial``'s (``calibration.Fusion``, no fixed parts): GLOSH
plus ``PEAK_WEIGHT`` times its *peaks* (``morphology.glosh_peaks``: bright objects of up to 400 px in GLOSH's
own map), at least GLOSH's odds in reference spreads divided by ``SPECTRAL_MAX``. GLOSH alone ranks a
large target's interior below isolated odd pixels (the CAE learns a large block, and its pixels are near
one another); the peaks rank it at its own size, and the floor keeps a block the peaks cut short
(benchmarks/results/bench_cae.md, round 4). The peaks are those of the automatic ``p_min``, filtered
once per detection, so a ``p_min`` move re-filters nothing.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._glosh import GloshReference
from napari_hsi_anomaly.core.detectors.base import GLOSH_PARAMS, Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.progress import Progress

FEATURES = ("pixel", "f1", "f2", "f3", "f4")
FEATURE = Param("feature", str, "pixel", "CAE feature: per pixel, or per window (f1/f3) / section (f2/f4)",
                choices=FEATURES)
RESIDUAL = Param("residual", int, 8, "per pixel: whitened components of the CAE's reconstruction residual "
                 "clustered with the encoder's (0: none: faster, less accurate; see the README's benchmarks)",
                 minimum=0, maximum=64)
PEAK_WEIGHT = 4.0  # per pixel: weight of the GLOSH peaks (calibration.Fusion; bench_cae.md round 4)
SPECTRAL_MAX = 1.0  # per pixel: at least GLOSH's own odds, in reference spreads, divided by this
PRESET = Param("preset", str, "fast", "CAE preset trained on the reference cubes when no model is given",
               choices=("fast", "thesis"))


def default_train_options(cubes: Sequence[Cube] | None = None, preset: str = "fast") -> Any:
    """Training used when no model is given: ``core.model.auto_train_options`` for the cubes (random
    crops that fit the smallest, several Adam steps an epoch); without cubes, 25 steps on 32x32 crops."""
    from napari_hsi_anomaly.core.model import TrainOptions, auto_train_options

    if cubes:
        return auto_train_options(list(cubes), preset)
    return TrainOptions(epochs=1, optimizer="adam", crop=32, steps_per_epoch=25, batch_size=4,
                        val_fraction=0.0, seed=0)


def get_model(cubes: Sequence[Cube], model: Any, preset: str, train_options: Any
              ) -> Generator[Progress, None, Any]:
    """``model`` checked against the cubes, or a ``preset`` CAE trained on them."""
    if model is not None:
        for c in cubes:
            model.check_cube(c)
        return model
    from napari_hsi_anomaly.core.model import iter_train

    options = train_options or default_train_options(cubes, preset)
    trained = yield from iter_train(list(cubes), preset, options)
    return trained


def model_label(model: Any) -> str:
    return model.describe() if hasattr(model, "describe") else str(model)


def features_of(model: Any, cube: Cube, feature: str) -> Generator[Progress, None, tuple[np.ndarray, Any]]:
    """``(values (N, D) with NaN rows for no-data, FeatureSet)``."""
    from napari_hsi_anomaly.core.model import iter_features

    fs = yield from iter_features(model, cube, feature)
    values = fs.values
    if getattr(fs, "valid", None) is not None and not np.all(fs.valid):
        values = np.where(np.asarray(fs.valid)[:, None], values, np.nan)  # left out of the fit
    return values, fs


def errors_of(model: Any, cube: Cube, residual: bool = False
              ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray | None]]:
    """``(per-band squared reconstruction error, signed residual or None)`` over the model's real bands,
    each ``(bands, rows, cols)``."""
    from napari_hsi_anomaly.core.model import iter_reconstruction

    rec = yield from iter_reconstruction(model, cube, residual=residual)
    nb = model.config.used_bands
    return rec.per_band[:nb], None if rec.residual is None else rec.residual[:nb]


def pixel_points(space: Any, model: Any, cube: Cube, values: np.ndarray
                 ) -> Generator[Progress, None, np.ndarray]:
    """The GLOSH coordinates of ``cube``'s pixel feature rows ``values`` in the fitted ``space``."""
    per_band = residual = None
    if space.uses_reconstruction or space.uses_residual:
        per_band, residual = yield from errors_of(model, cube, residual=space.uses_residual)
    return space.transform(values, per_band, residual)


class CaeGloshScorer(Scorer):
    """The CAE (kept outside the state: profiles save it with ``save_model``), the GLOSH hierarchy and,
    for the pixel feature, the ``PixelSpace`` fitted on the reference (None: profiles saved before it,
    the raw pixel feature)."""

    def __init__(self, model: Any, ref: GloshReference, params: dict, bands: int, wavelengths=None,
                 ref_features: list | None = None, space: Any = None) -> None:
        self.detector, self.params = "glosh", dict(params)
        self.model, self.ref, self.space = model, ref, space
        self.bands, self.wavelengths = int(bands), wavelengths
        self._ref_features = ref_features or []  # FeatureSets of the reference cubes (same order)

    def fusion(self) -> dict | None:
        """Per pixel: ``calibration.Fusion``'s GLOSH peaks and spectral floor (see the module docstring);
        None for f1..f4."""
        if self.params.get("feature") != "pixel":
            return None
        return {"peak_weight": PEAK_WEIGHT, "spectral_max": SPECTRAL_MAX}

    def halo(self) -> int:
        """The peaks filter objects of up to ``LADDER[-1]`` px: as many rows, where this scorer's own
        calibration composes them (0 as a part of a combination, or a profile saved before them)."""
        from napari_hsi_anomaly.core.scoring.morphology import LADDER

        cal = self.calibration
        return LADDER[-1] if cal is not None and cal.fusion is not None else 0

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        feature = self.params["feature"]
        k = self.ref.reference_index(cube)
        if k is not None and k < len(self._ref_features):
            fs = self._ref_features[k]
            handle = self.ref.handle(cube, None)
        else:
            self.model.check_cube(cube)
            values, fs = yield from features_of(self.model, cube, feature)
            if self.space is not None:
                values = yield from pixel_points(self.space, self.model, cube, values)
            handle = self.ref.handle(cube, lambda c: values)
        per_pixel = feature == "pixel"
        return Raw(glosh=handle, reference=self.ref.scorer, regions=fs.regions, feature=feature,
                   per_pixel=per_pixel,
                   n_points=self.ref.n_valid if per_pixel else self.ref.n_points,
                   extras={"features": fs, "regions": fs.regions, "model": self.model})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, meta = self.ref.state()
        meta = {**self._meta(), **meta, "model": model_label(self.model)}
        if self.space is not None:
            a, m = self.space.state()
            arrays = {**arrays, **{f"pixel_space.{k}": v for k, v in a.items()}}
            meta["pixel_space"] = m
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> CaeGloshScorer:
        from napari_hsi_anomaly.core.detectors.base import prefixed
        from napari_hsi_anomaly.core.model.features import PixelSpace

        if model is None:
            raise ModelError("This normal model needs its CAE: load the profile with its model folder.")
        own = {k: v for k, v in arrays.items() if not k.startswith("pixel_space.")}
        space = None
        if "pixel_space" in meta:
            space = PixelSpace.from_state(prefixed(arrays, "pixel_space."), meta["pixel_space"])
        return cls(model, GloshReference.from_state(own, meta), meta["params"], meta["bands"],
                   meta.get("wavelengths"), space=space)


@register
class CaeGloshDetector(Detector):
    scorer_class = CaeGloshScorer
    order = 3
    name = "glosh"
    label = "CAE + GLOSH (thesis)"
    calibration_z0 = 1.7  # with the peaks: 8/9 dev, 36/36 stress in [0.25, 4] (bench_cae.md round 4)
    summary = "3-D CAE encoder features (per pixel or f1..f4) clustered by HDBSCAN, GLOSH outlier score"
    params = (FEATURE, PRESET, RESIDUAL, *GLOSH_PARAMS)
    needs_model = True
    uses_p_min = True

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, CaeGloshScorer]:
        cubes = check_cubes(cubes)
        model = yield from get_model(cubes, model, self.params["preset"], train_options)
        feature = self.params["feature"]
        values, sets = [], []
        for c in cubes:
            v, fs = yield from features_of(model, c, feature)
            values.append(v)
            sets.append(fs)
        space = None
        if feature == "pixel":  # GLOSH clusters the reference's leading components (+ the error)
            from napari_hsi_anomaly.core.model import features as feat

            errors, residuals = None, None
            n_res = int(self.params.get("residual", feat.PIXEL_RESIDUAL))
            if feat.PIXEL_RECON or n_res:
                pairs = []
                for c in cubes:
                    pair = yield from errors_of(model, c, residual=n_res > 0)
                    pairs.append(pair)
                errors = [e for e, _ in pairs] if feat.PIXEL_RECON else None
                residuals = [r for _, r in pairs] if n_res else None
            space = feat.PixelSpace.fit(values, errors, feat.PIXEL_COMPONENTS, seed=self.params["seed"],
                                        residuals=residuals, residual_components=n_res)
            values = [space.transform(v, None if errors is None else errors[i],
                                      None if residuals is None else residuals[i])
                      for i, v in enumerate(values)]
        unit = "pixels" if feature == "pixel" else ("windows" if feature in ("f1", "f3") else "sections")
        n = sum(v.shape[0] for v in values)
        yield Progress(0, 1, f"GLOSH: fitting HDBSCAN on {n} x {values[0].shape[1]}")
        ref = GloshReference(values, cubes, min_samples=self.params["min_samples"],
                             max_fit=self.params["max_fit"], seed=self.params["seed"], unit=unit,
                             shape_hint=f" on this {cubes[0].rows}x{cubes[0].cols} cube",
                             scale=space is None)
        return CaeGloshScorer(model, ref, self.params, cubes[0].bands, cubes[0].wavelengths, sets, space)
