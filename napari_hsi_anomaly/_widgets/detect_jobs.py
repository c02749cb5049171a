"""What the Detect dock runs in its worker (no Qt here): fit a normal model, score one or more scenes.

- "this cube": every target is fitted on itself (``Detector.iter_fit([cube])``), the thesis's default.
- reference cubes: one fit on the references, every target scored against it.
- a loaded profile (a fitted ``Scorer``): no fit, every target scored against it.

Each scene goes through ``core.pipeline`` (whole scene or row blocks, as the CLI decides it).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress


@dataclass
class SceneResult:
    """One scored scene: its name (a layer or ``date K``), the cube and the ``Detection``."""

    name: str
    cube: Any
    detection: Any
    layer: str | None = None  # the cube's layer (None for a date of a stack)
    rgb_layer: str | None = None
    date: int | None = None  # the date of a stack (the layer's first axis)


@dataclass
class JobResult:
    scenes: list[SceneResult] = field(default_factory=list)
    scorer: Any = None  # the fitted normal model when one fit served every scene (save as a profile)
    model: Any = None  # a CAE trained on the way (no model was loaded)


@dataclass
class Target:
    """A scene to score: ``cube`` as analysed (band selection applied), ``full`` as displayed."""

    name: str
    cube: Any
    layer: str | None = None
    rgb_layer: str | None = None
    date: int | None = None
    full: Any = None  # the cube with every band (None: ``cube``)


def _relay(gen: Iterator, prefix: str) -> Generator[Any, None, Any]:
    """Re-yield ``gen``'s progress with ``prefix`` on its messages; return its result."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if isinstance(p, Progress) and prefix:
            p = replace(p, message=f"{prefix}{p.message}")
        yield p


def _trained_model(*objs: Any) -> Any:
    for obj in objs:
        model = getattr(obj, "model", None)
        if model is None and hasattr(obj, "extras"):
            model = obj.extras.get("model")
        if model is not None:
            return model
    return None


def score_job(
    targets: Sequence[Target],
    method: str,
    params: dict,
    *,
    model: Any = None,
    references: Sequence[Any] | None = None,
    scorer: Any = None,
) -> Generator[Progress, None, JobResult]:
    """Score every target; see the module docstring for where the normal model comes from."""
    if not targets:
        raise HsiAnomalyError("Nothing to score: open a cube first.")

    from napari_hsi_anomaly.core.pipeline import Job, iter_normal, iter_score

    out = JobResult(scorer=scorer)
    many = len(targets) > 1
    if scorer is None and references:
        label = f"fitting on {len(references)} reference cube{'s' if len(references) > 1 else ''}: "
        job = Job(method, dict(params), references=list(references), model=model)
        scorer = yield from _relay(iter_normal(job), label)
        out.scorer = scorer
        out.model = _trained_model(scorer)
    for i, t in enumerate(targets):
        prefix = f"{t.name} ({i + 1}/{len(targets)}): " if many else ""
        job = Job(method, dict(params), scorer=scorer, model=model)  # no scorer: fitted on the scene
        done = yield from _relay(iter_score(job, t.cube), prefix)
        if scorer is None:
            model = model or _trained_model(done.scorer)
            out.model = out.model or _trained_model(done.scorer)
            if not many:
                out.scorer = done.scorer
        det = done.detection
        det.extras.setdefault("scorer", done.scorer)  # its normal model: Mark as normal, false-alarm rate
        det.extras.setdefault("analysed_cube", t.cube)  # what it was scored on (band selection applied)
        out.model = out.model or _trained_model(det)
        out.scenes.append(SceneResult(t.name, t.full if t.full is not None else t.cube, det, t.layer,
                                      t.rgb_layer, t.date))
    return out
