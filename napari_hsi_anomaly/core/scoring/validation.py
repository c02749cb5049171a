"""The thesis's validation protocol on synthetic anomalies (phase 3 evaluated).

1. Plant anomalies in a population of cubes with ``core.synth.plant_population`` (one set of band
   statistics; ``p_anom`` of all windows get one ``s_anom``-px square of ``mean + std * c``).
2. Extract f1..f4 with a trained model: one point per window (f1, f3) or per section (f2, f4).
3. HDBSCAN/GLOSH on the points of the reference population ("full": every cube; "partial": a cleaner
   subset of cubes, whose points alone are clustered and evaluated), ``score >= t_anom`` = anomaly.
4. TPR, FNR, precision, F-score and AUC against the window/section labels (a region is anomalous when
   it holds a planted pixel).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ShapeError
from napari_hsi_anomaly.core.progress import Progress, run
from napari_hsi_anomaly.core.scoring.glosh import GloshScorer
from napari_hsi_anomaly.core.scoring.metrics import Metrics, evaluate

THESIS_FEATURES = ("f1", "f2", "f3", "f4")


@dataclass
class ValidationRow:
    """Metrics of one (clustering, feature) pair, with the point counts behind them."""

    clustering: str
    feature: str
    metrics: Metrics
    n_points: int
    n_anomalous: int
    p_min: int


def plant_one_recipe(cube: np.ndarray, fraction: float, *, seed: int = 0, exclude: np.ndarray | None = None,
                     c_range: tuple[float, float] = (3.0, 5.0), mix: tuple[float, float] = (0.7, 1.0)
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Plant ``fraction`` of the pixels of ``cube (bands, rows, cols)`` as 1-px targets of **one recipe**.

    One spectrum ``mean + std * c`` (c ~ U[c_range) per band, drawn once; band means/stds of the cube)
    mixed into each chosen pixel at ``mix`` (uniform), so the targets are similar and numerous: a
    ``p_min`` below their count lets them form a cluster. Pixels in ``exclude`` are not chosen.
    Returns ``(planted cube float32, planted mask (rows, cols) bool)``.
    """
    rng = np.random.default_rng(seed)
    b, rows, cols = cube.shape
    flat = np.asarray(cube, dtype=np.float32).reshape(b, -1)
    recipe = flat.mean(axis=1) + flat.std(axis=1) * rng.uniform(*c_range, b)
    free = np.arange(rows * cols) if exclude is None else np.flatnonzero(~np.asarray(exclude).ravel())
    idx = rng.choice(free, int(round(fraction * rows * cols)), replace=False)
    alpha = rng.uniform(*mix, idx.size).astype(np.float32)
    out = flat.copy()
    out[:, idx] = alpha * recipe[:, None] + (1 - alpha) * flat[:, idx]
    planted = np.zeros(rows * cols, bool)
    planted[idx] = True
    return out.reshape(b, rows, cols), planted.reshape(rows, cols)


def region_labels(gt: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """``(N,)`` uint8: 1 where a region ``r0, r1, c0, c1`` holds at least one ground-truth pixel."""
    integ = np.pad(np.cumsum(np.cumsum(gt > 0, 0), 1), ((1, 0), (1, 0)))
    r0, r1, c0, c1 = (np.asarray(regions)[:, i] for i in range(4))
    return ((integ[r1, c1] - integ[r0, c1] - integ[r1, c0] + integ[r0, c0]) > 0).astype(np.uint8)


def iter_validate(
    cubes: Sequence[Cube | np.ndarray],
    model,
    *,
    features: Sequence[str] = THESIS_FEATURES,
    partial: Sequence[int] | None = None,
    p_min: int = 100,
    min_samples: int = 10,
    t_anom: float = 0.7,
    window: int | None = None,
    p_anom: float = 0.05,
    s_anom: int = 20,
    c_range: tuple[float, float] = (3.0, 5.0),
    seed: int = 0,
) -> Generator[Progress, None, list[ValidationRow]]:
    """Run the protocol; ``partial``: indices of the cleaner cubes (None: "full" only).

    ``window`` defaults to the model's window (anomalies are planted per window of that size).
    """
    from napari_hsi_anomaly.core.model import iter_features
    from napari_hsi_anomaly.core.synth import plant_population

    arrays = [c.as_float32() if isinstance(c, Cube) else np.asarray(c, dtype=np.float32) for c in cubes]
    size = int(window or model.window)
    for i, a in enumerate(arrays):
        if a.shape[1] < size or a.shape[2] < size:
            raise ShapeError(f"Cube {i} ({a.shape[1]}x{a.shape[2]}) is smaller than the window ({size}).")
    planted = plant_population(arrays, window=size, p_anom=p_anom, s_anom=s_anom, c_range=c_range,
                               seed=seed)
    total = len(arrays) * len(features)
    points: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {f: [] for f in features}
    done = 0
    for pl in planted:
        cube = Cube(pl.data)
        for f in features:
            fs = yield from iter_features(model, cube, f, window=size)
            valid = fs.valid if fs.valid is not None else np.ones(len(fs.values), bool)
            points[f].append((fs.values, region_labels(pl.gt, fs.regions), valid))
            done += 1
            yield Progress(done, total, f"features {f}: cube {len(points[f])}/{len(arrays)}")
    groups = {"full": list(range(len(arrays)))}
    if partial is not None:
        groups["partial"] = sorted(int(i) for i in partial)
    rows = []
    for name, idx in groups.items():
        for f in features:
            x = np.vstack([points[f][i][0] for i in idx])
            y = np.concatenate([points[f][i][1] for i in idx])
            ok = np.concatenate([points[f][i][2] for i in idx])
            x, y = x[ok], y[ok]
            scores = GloshScorer(x, min_samples=min_samples).score(p_min).scores
            rows.append(ValidationRow(name, f, evaluate(scores, y, t_anom), len(y), int(y.sum()), p_min))
            yield Progress(done, total, f"GLOSH {name} {f}: {len(y)} points")
    return rows


def validate(cubes: Sequence[Cube | np.ndarray], model, **kwargs) -> list[ValidationRow]:
    """``iter_validate`` run to the end."""
    return run(iter_validate(cubes, model, **kwargs))


def rows_markdown(
    rows: Sequence[ValidationRow], auc_range: Sequence[tuple[float, float]] | None = None
) -> str:
    """A markdown table like the thesis's: clustering, feature, TPR, FNR, precision, F-score, AUC."""
    extra = " AUC range |" if auc_range else ""
    lines = ["| clustering | feature | points | anomalous | TPR | FNR | precision | F-score | AUC |" + extra,
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if auc_range else "")]
    for i, r in enumerate(rows):
        m = r.metrics
        line = (f"| {r.clustering} | {r.feature} | {r.n_points} | {r.n_anomalous} | {m.tpr:.3f} | "
                f"{m.fnr:.3f} | {m.precision:.3f} | {m.f_score:.3f} | {m.auc:.3f} |")
        if auc_range:
            line += f" {auc_range[i][0]:.3f}-{auc_range[i][1]:.3f} |"
        lines.append(line)
    return "\n".join(lines)
