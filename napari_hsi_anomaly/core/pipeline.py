"""One flow from a cube to a score map, the same for the CLI, the Detect dock and the batch.

A ``Job`` says where the normal model comes from -- the scene itself, reference cubes, a saved profile,
or a scorer already fitted -- which detector with which parameters, and how a CAE is trained when one
is needed. ``iter_score(job, cube)`` plans whole scene versus row blocks (``plan``: the memory budget
and the size of one task), fits the normal model where it must, and scores. Blocks run through
``core.scoring.blocks.iter_score_blocks``: a loop in this process, or dask tasks when the job has a
``client`` (the fitted model scattered once to the workers). ``iter_fit(job, cubes)`` is ``fit``'s half:
large references are fitted on evenly spaced strips, as a large scene fitted on itself is.

``detector_kwargs`` turns offered values (CLI options, keyword arguments) into a detector's parameters;
``train_options_for`` is the one rule for CAE training defaults (``core.model.auto_train_options``,
then whatever the user gave).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

BLOCK_SCENE_PIXELS = 4_000_000  # one task's size: a larger scene is scored in row blocks whatever the budget
BYTES_PER_BAND_PIXEL = 12  # scoring whole: a float32 copy of the cube, a centred copy and projections
BYTES_PER_PIXEL = 96  # per-pixel maps, masks and GLOSH's per-point arrays


@dataclass(frozen=True)
class Plan:
    """Whole scene (``blocked`` False) or row blocks of about ``block_pixels`` pixels; ``reason`` says why."""

    blocked: bool
    block_pixels: int
    reason: str


def working_bytes(bands: int, pixels: int) -> float:
    """About what scoring ``pixels`` pixels of ``bands`` bands at once takes."""
    return float(pixels) * (BYTES_PER_BAND_PIXEL * bands + BYTES_PER_PIXEL)


def plan(cube: Cube, *, needs_model: bool = False, block_pixels: int | None = None) -> Plan:
    """Whole scene or row blocks for ``cube``: blocks above ``BLOCK_SCENE_PIXELS`` or where the whole
    scene's working set exceeds the memory budget (blocks then sized to it); ``block_pixels`` forces a
    block size. A CAE detector scores whole (its receptive field declares no halo): a scene beyond the
    budget is refused with one line (``MemoryBudgetError``)."""
    from napari_hsi_anomaly.core.guards import check_allocation, memory_budget
    from napari_hsi_anomaly.core.scoring.blocks import BLOCK_PIXELS

    pixels = int(cube.rows) * int(cube.cols)
    need = working_bytes(cube.bands, pixels)
    if needs_model:
        check_allocation(need, f"Scoring {cube.name} ({cube.bands}x{cube.rows}x{cube.cols}) with a CAE",
                         hint="crop the cube, use fewer bands, or a detector without a CAE")
        return Plan(False, pixels, "a CAE detector scores the scene whole")
    per_block = int(memory_budget() // max(1.0, working_bytes(cube.bands, 1)))
    size = max(int(cube.cols), min(BLOCK_PIXELS, per_block))
    if block_pixels is not None:
        size = max(int(cube.cols), int(block_pixels))
        return Plan(pixels > size, size, f"blocks of {size:,} pixels asked for")
    if pixels > BLOCK_SCENE_PIXELS:
        return Plan(True, size, f"{pixels:,} pixels, more than one task's {BLOCK_SCENE_PIXELS:,}")
    if need > memory_budget():
        return Plan(True, size, "the whole scene exceeds the memory budget")
    return Plan(False, pixels, "the whole scene fits one task")


def halo_block_pixels(block_pixels: int, cube: Cube, halo: int) -> int:
    """Pixels a row block scores: at least ``4 * halo`` rows where the memory budget allows, so a
    spatial part (the attribute filters' 400-row halo) reads at most 1.5 times the rows it scores: on
    a 10980-wide tile, blocks of ``BLOCK_PIXELS`` would be 182 rows read with 800 more."""
    from napari_hsi_anomaly.core.guards import memory_budget

    want = 4 * int(halo) * int(cube.cols)
    if want <= block_pixels:
        return int(block_pixels)
    in_memory = int(memory_budget() // max(1.0, working_bytes(cube.bands, 1)))  # pixels read at once
    return int(max(block_pixels, min(want, in_memory - 2 * int(halo) * int(cube.cols))))


# -- parameters -------------------------------------------------------------------------------------
def declared_params(method: str | None = None) -> dict[str, Any]:
    """``Param`` declarations by name: ``method``'s, or every registered detector's (first one wins)."""
    from napari_hsi_anomaly.core.detectors import REGISTRY, get_detector

    classes = [get_detector(method)] if method else list(REGISTRY.values())
    seen: dict[str, Any] = {}
    for cls in classes:
        for p in cls.params:
            seen.setdefault(p.name, p)
    return seen


def detector_kwargs(method: str, offered: dict[str, Any], *, strict: bool = True,
                    label: Any = None) -> dict[str, Any]:
    """The values of ``offered`` (None = the detector's own) that ``method`` declares. ``strict``: a
    value it does not declare is one clear line (``label(name)`` names it, default ``--name``); else
    such values are left out (``iter_detect``'s keywords, offered to every detector)."""
    declared = declared_params(method)
    out: dict[str, Any] = {}
    for name, value in offered.items():
        if value is None:
            continue
        if name in declared:
            out[name] = value
        elif strict:
            opt = label or (lambda n: "--" + n.replace("_", "-"))
            takes = ", ".join(opt(n) for n in declared) or "none"
            raise HsiAnomalyError(f"{opt(name)} does not apply to method {method} (its options: {takes}).")
    return out


def train_options_for(cubes: Sequence[Cube] | Cube, preset: str = "fast", **given: Any) -> Any:
    """The one rule for CAE training: ``auto_train_options`` for the cubes (random crops that fit the
    scene, Adam, a fixed amount of work), with every option the user gave (not None) on top."""
    from dataclasses import replace

    from napari_hsi_anomaly.core.model import auto_train_options

    options = auto_train_options(cubes, preset)
    given = {k: v for k, v in given.items() if v is not None}
    if "optimizer" in given and "learning_rate" not in given:
        given["learning_rate"] = None  # the optimizer's own default rate
    return replace(options, **given)


# -- the job ----------------------------------------------------------------------------------------
@dataclass
class Job:
    """What to do with a scene: detector ``method`` with ``params``; the normal model from ``profile``
    (a folder), ``scorer`` (fitted), ``references`` (cubes) or, with none of these, the scene itself.

    ``model``/``train_options``: the CAE of CAE detectors (default: trained by the detector with
    ``train_options_for``). ``p_min``: re-condense a fitted GLOSH hierarchy (profiles). ``block_pixels``
    forces row blocks of that size; ``client``: a dask client that runs the blocks as tasks.
    """

    method: str | None = None
    params: dict = field(default_factory=dict)
    references: Sequence[Cube] | None = None
    profile: str | os.PathLike | None = None
    scorer: Any = None
    model: Any = None
    train_options: Any = None
    p_min: int | None = None
    block_pixels: int | None = None
    client: Any = None

    @property
    def normal(self) -> str:
        """Where the normal model comes from: ``profile``, ``scorer``, ``references`` or ``scene``."""
        if self.profile is not None:
            return "profile"
        if self.scorer is not None:
            return "scorer"
        return "references" if self.references else "scene"

    def detector(self) -> Any:
        from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD, get_detector

        return get_detector(self.method or DEFAULT_METHOD)(**self.params)


@dataclass
class Outcome:
    """A scored scene: the ``(rows, cols)`` float32 ``score_map``, its ``Detection`` (a plain map without
    a GLOSH hierarchy when blocked), the fitted ``scorer`` and the ``plan`` followed."""

    score_map: np.ndarray
    detection: Any
    scorer: Any
    plan: Plan


def _needs_model(name: str) -> bool:
    from napari_hsi_anomaly.core.detectors import REGISTRY

    cls = REGISTRY.get(name)
    return bool(getattr(cls, "needs_model", False))


def fit_cubes(cubes: Sequence[Cube], needs_model: bool) -> list[Cube]:
    """The cubes a normal model is fitted on: each large one's evenly spaced strips (as the plan blocks
    it), the others whole."""
    from napari_hsi_anomaly.core.scoring.blocks import reference_strips

    out: list[Cube] = []
    for c in cubes:
        c = as_cube(c, "Fitting")
        out.extend(reference_strips(c) if plan(c, needs_model=needs_model).blocked else [c])
    return out


def iter_fit(job: Job, cubes: Sequence[Cube], *, band_selection: Any = None
             ) -> Generator[Progress, None, Any]:
    """Fit the job's detector on the reference ``cubes`` (cut to ``band_selection``; large ones on
    strips); returns the ``Scorer`` (``core.profile.save_profile`` saves it)."""
    from napari_hsi_anomaly.core.profile import iter_fit_profile

    detector = job.detector()
    refs = fit_cubes(cubes, type(detector).needs_model)
    scorer = yield from iter_fit_profile(refs, detector.name, band_selection=band_selection,
                                         model=job.model, train_options=job.train_options, **job.params)
    return scorer


def iter_normal(job: Job) -> Generator[Progress, None, Any]:
    """The job's fitted normal model (loaded, given, or fitted on the references); None when the scene
    itself is the normal (fitted per scene by ``iter_score``)."""
    if job.normal == "profile":
        from napari_hsi_anomaly.core.profile import load_profile

        yield Progress(0, 1, f"loading profile {job.profile}")
        return load_profile(job.profile)
    if job.normal == "scorer":
        return job.scorer
    if job.normal == "references":
        detector = job.detector()
        refs = fit_cubes(list(job.references or ()), type(detector).needs_model)
        scorer = yield from detector.iter_fit(refs, model=job.model, train_options=job.train_options)
        return scorer
    return None


def iter_score(job: Job, cube: Cube | np.ndarray, *, scorer: Any = None
               ) -> Generator[Progress, None, Outcome]:
    """Score ``cube`` as the job says (``scorer``: its normal model already from ``iter_normal``)."""
    from napari_hsi_anomaly.core.detectors.detection import Detection
    from napari_hsi_anomaly.core.scoring.blocks import halo_rows, iter_score_blocks, reference_strips

    cube = as_cube(cube, "Scoring")
    if scorer is None and job.normal != "scene":
        scorer = yield from iter_normal(job)
    if scorer is not None:
        if getattr(scorer, "band_selection", None) is not None or getattr(scorer, "profile_path", None):
            from napari_hsi_anomaly.core.profile import prepare_target

            cube = prepare_target(scorer, cube)
        cube = scorer.check_target(cube)
        needs_model = _needs_model(scorer.detector)
    else:
        needs_model = type(job.detector()).needs_model  # validates the parameters before any work
    if not cube.valid_mask().any():
        raise HsiAnomalyError(f"{cube.name}: no valid pixel (every pixel has NaN or no-data in a band).")
    if job.p_min is not None and scorer is not None:
        from napari_hsi_anomaly.core.detectors import REGISTRY

        if not getattr(REGISTRY.get(scorer.detector), "uses_p_min", False):
            raise HsiAnomalyError(f"--p-min does not apply: the method {scorer.detector} has no p_min.")
    how = plan(cube, needs_model=needs_model, block_pixels=job.block_pixels)
    if not how.blocked:
        if scorer is None:
            scorer = yield from job.detector().iter_fit([cube], model=job.model,
                                                        train_options=job.train_options)
        det = yield from scorer.iter_score(cube)
        if job.p_min is not None and det.can_rescore:
            det.rescore(int(job.p_min))
        return Outcome(det.score_map, det, scorer, how)
    from napari_hsi_anomaly.core.guards import check_allocation

    check_allocation(4.0 * cube.rows * cube.cols * 3, f"Scoring {cube.name} in blocks (score map)",
                     hint="crop the cube or score it in tiles")
    if scorer is None:
        refs = reference_strips(cube)
        detector = job.detector()
        yield Progress(0, 1, f"{detector.name}: fitting the normal model on {len(refs)} strip(s)")
        scorer = yield from detector.iter_fit(refs, model=job.model, train_options=job.train_options)
        scorer.calibration.scene_reference = True  # strips of this scene: calibrated as its own reference
    block = how.block_pixels if job.block_pixels is not None else halo_block_pixels(
        how.block_pixels, cube, halo_rows(scorer))
    scores = yield from iter_score_blocks(scorer, cube, block_pixels=block, p_min=job.p_min,
                                          client=job.client)
    params = dict(scorer.params)
    det = Detection(scores, scorer.detector, str(params.get("feature", "pixel")), params,
                    {"blocked": True, "plan": how.reason})
    return Outcome(scores, det, scorer, how)
