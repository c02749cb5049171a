"""Attribute filters: pixels in bright or dark objects of up to ``max_area`` pixels (no CAE needed).

The spatial partner of the spectral detectors, after Kang et al.'s attribute-filter detector (AED,
IEEE TGRS 2017): the target is projected on the reference's leading principal components, and in each
component image an area opening and closing (``core.scoring.morphology``) remove the bright and dark
structures of up to 25, 100 and 400 connected pixels (``area_ladder``: every size of target, from a
pixel to a 20x20 block, stands out, the interior of a large one too), weighted 1, 1/2 and 1/4 (a larger
filter also removes more of the background's own structure); what they remove, summed over the components
(in the cube's units, so strong components weigh more), is the raw outlyingness. A target pixel scores
high when it stands out of its surroundings as a small object, whatever its spectrum is like elsewhere
in the scene; large anomalies (a haze, a field) are left to the spectral detectors. AED's
edge-preserving smoothing is left out: on the development scenes it lowered the AUC
(benchmarks/results/design_history.md).
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors._spectral import pca_basis, pooled_stats, project
from napari_hsi_anomaly.core.detectors.base import Detector, Param, Raw, Scorer, check_cubes
from napari_hsi_anomaly.core.detectors.registry import register
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.scoring.morphology import LADDER, filter_threads

# bounds: max_area is also the row halo of a block on a large scene (400 rows x 10980 columns each side),
# larger structures are regional anomalies left to the spectral parts; components bound the projection
MAX_AREA = Param("max_area", int, 400, "attribute filters: the largest object (connected pixels) that counts "
                 "as small (filtered at 25, 100, ... up to it)", minimum=2, maximum=400)
ATTR_COMPONENTS = Param("attr_components", int, 6, "attribute filters: principal components filtered",
                        minimum=1, maximum=32)
ATTR_PARAMS = (MAX_AREA, ATTR_COMPONENTS)
STEPS = 32768  # quantisation steps over a component's reference range (targets twice as wide still fit)


def area_ladder(max_area: int) -> list[int]:
    """The object sizes filtered: ``LADDER`` (25, 100, 400 px: a factor 4 apart) below ``max_area``, and
    ``max_area``."""
    return sorted({a for a in LADDER if a < int(max_area)} | {int(max_area)})


def ladder_weights(sizes: Sequence[int]) -> list[float]:
    """Each size's weight in the sum: ``sqrt(smallest / size)`` (1, 1/2, 1/4 for 25, 100, 400 px): a
    larger filter also removes more of the background's own structure, so it counts less."""
    return [float(np.sqrt(sizes[0] / s)) for s in sizes]


def small_object_map(coords: np.ndarray, valid: np.ndarray, sizes: int | Sequence[int], steps: np.ndarray
                     ) -> np.ndarray:
    """``(rows, cols)`` float32: ``small_objects`` of each component image ``coords[..., j]`` (quantised
    in ``steps[j]``) for objects of at most each of ``sizes`` px, weighted by ``ladder_weights`` and
    summed (no-data pixels take the component's median before filtering, NaN after)."""
    from napari_hsi_anomaly.core.scoring.morphology import weighted_small_objects

    sizes = [int(sizes)] if np.isscalar(sizes) else [int(a) for a in sizes]
    weights = ladder_weights(sizes)
    rows, cols = valid.shape
    k = coords.shape[-1]
    imgs = coords.reshape(rows, cols, k)

    def one(j: int) -> np.ndarray:
        img = np.array(imgs[..., j], dtype=np.float64)
        if not valid.all():
            img[~valid] = np.median(img[valid])
        # "fewer than area" pixels: objects of `size` px included; one component tree serves every size
        return weighted_small_objects(img, [size + 1 for size in sizes], weights, float(steps[j]))

    workers = max(1, min(k, filter_threads()))
    if workers == 1:
        maps = [one(j) for j in range(k)]
    else:  # the kernel releases the GIL
        with ThreadPoolExecutor(workers) as pool:
            maps = list(pool.map(one, range(k)))
    out = np.sum(maps, axis=0, dtype=np.float32)
    out[~valid] = np.nan
    return out


class AttributeScorer(Scorer):
    """The reference's mean, PCA basis and each component's quantisation step (its range in the
    reference / ``STEPS``: every target and row block is filtered on the same grid). The filters are
    spatial: they act on each target."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray, steps: np.ndarray, params: dict,
                 wavelengths=None) -> None:
        self.detector, self.params = "attribute", dict(params)
        self.mean, self.basis, self.steps = mean, basis, np.asarray(steps, np.float64)
        self.bands, self.wavelengths = int(mean.size), wavelengths
        # (weakref to the one reference cube, its projection): the fit's, used once by the first
        # iter_raw (the calibration scores the reference right after the fit), then dropped
        self._fit_coords: tuple[Any, np.ndarray] | None = None

    def halo(self) -> int:
        return int(self.params["max_area"])  # an object of at most max_area px spans as many rows

    def iter_raw(self, cube: Cube) -> Generator[Progress, None, Raw]:
        k, sizes = self.basis.shape[1], area_ladder(int(self.params["max_area"]))
        yield Progress(0, 1, f"attribute filters: objects of up to {'/'.join(map(str, sizes))} px in {k} "
                       "components")
        coords, self._fit_coords = self._fit_coords, None  # the fit's projection, if of this cube
        if coords is None or coords[0]() is not cube:
            coords = (None, project(cube, self.mean, self.basis))
        dist = small_object_map(coords[1], cube.valid_mask(), sizes, self.steps)
        return Raw(fixed=dist, extras={"attribute_map": dist})

    def _state(self) -> tuple[dict[str, np.ndarray], dict]:
        return {"mean": self.mean, "basis": self.basis, "steps": self.steps}, self._meta()

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict, *, model: Any = None) -> AttributeScorer:
        return cls(arrays["mean"], arrays["basis"], arrays["steps"], meta["params"], meta.get("wavelengths"))


@register
class AttributeDetector(Detector):
    scorer_class = AttributeScorer
    order = 8
    name = "attribute"
    label = "Attribute filters (small objects)"
    calibration_z0 = 2.1  # bench_scenes.py: 8/9 dev scenes and 18/18 stress scenes in [0.25, 4]
    summary = "area opening/closing of the leading principal components: small bright or dark objects"
    params = ATTR_PARAMS

    def _iter_fit(self, cubes: Sequence[Cube], *, model: Any = None, train_options: Any = None
                 ) -> Generator[Progress, None, AttributeScorer]:
        cubes = check_cubes(cubes)
        k = int(self.params["attr_components"])
        yield Progress(0, 1, f"attribute filters: {k} principal components")
        mean, cov, _ = pooled_stats(cubes)
        basis = pca_basis(cov, k)
        lo, hi = np.full(basis.shape[1], np.inf), np.full(basis.shape[1], -np.inf)
        for c in cubes:
            coords = project(c, mean, basis)
            lo, hi = np.fmin(lo, np.nanmin(coords, axis=0)), np.fmax(hi, np.nanmax(coords, axis=0))
        steps = np.where(hi > lo, (hi - lo) / STEPS, 1.0)
        scorer = AttributeScorer(mean, basis, steps, self.params, cubes[0].wavelengths)
        if len(cubes) == 1:
            scorer._fit_coords = (weakref.ref(cubes[0]), coords)
        return scorer

