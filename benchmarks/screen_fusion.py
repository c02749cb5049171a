"""Offline screen of fusion rules for the default (issue 24): the parts' raw maps computed once, every rule
scored from them.

``python benchmarks/screen_fusion.py dump CACHE`` fits ``spectral-spatial``'s parts on each of the 45
scenes (9 development + 36 stress, as ``bench_scenes.py``) and on the Sentinel-2 reference (dates 3 and 4,
default bands), and saves per scene: GLOSH's score ``g`` at the automatic ``p_min``, the attribute
filters' map per area (25, 100, 400 px, each summed over the components, unweighted), the valid mask, the
ground truth and the calibration's sample positions. ``python benchmarks/screen_fusion.py screen CACHE``
scores the rules (``RULES``) from it: AUC per scene, flagged/true at t_anom 0.7 with the calibration of
``calibration.py`` (median, 95th percentile, floor), the Sentinel-2 haze check, and the leave-one-scene-out
choice of ``bench_scenes.py``. Results: ``benchmarks/results/bench_scenes.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

SIZES = (25, 100, 400)


def _attr_per_size(scorer, cube) -> np.ndarray:
    """``(len(SIZES), rows, cols)``: the attribute filters' removed values per area, summed over the
    components (the detector weights them 1, 1/2, 1/4 and sums)."""
    from napari_hsi_anomaly.core.detectors._spectral import project
    from napari_hsi_anomaly.core.scoring.morphology import small_objects_multi

    valid = cube.valid_mask()
    coords = project(cube, scorer.mean, scorer.basis)
    k = coords.shape[-1]
    imgs = coords.reshape(cube.rows, cube.cols, k)
    out = np.zeros((len(SIZES), cube.rows, cube.cols), np.float32)
    for j in range(k):
        img = np.array(imgs[..., j], dtype=np.float64)
        if not valid.all():
            img[~valid] = np.median(img[valid])
        for i, m in enumerate(small_objects_multi(img, [s + 1 for s in SIZES], float(scorer.steps[j]))):
            out[i] += m
    out[:, ~valid] = np.nan
    return out


def _parts(refs, targets) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(g, attr per size)`` of each target, the parts fitted on ``refs``."""
    from napari_hsi_anomaly.core.detectors import get_detector
    from napari_hsi_anomaly.core.detectors.calibration import auto_p_min
    from napari_hsi_anomaly.core.progress import run

    scorer = get_detector("spectral-spatial")(local_weight=0.0).fit(refs)
    gpart, apart = scorer.parts()
    out = []
    for cube in targets:
        raw = run(gpart.raw_for(cube))
        g = raw.glosh.score(auto_p_min(raw.n_points)).scores.reshape(cube.rows, cube.cols)
        out.append((np.asarray(g, np.float32), _attr_per_size(apart, cube)))
    return out


def dump(path: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    from demo_sentinel2 import DATA as S2
    from demo_sentinel2 import NORMAL
    from stress import DATA, load_scene, stress_set

    from napari_hsi_anomaly.core.bands import default_band_selection
    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.detectors.calibration import _sample_positions
    from napari_hsi_anomaly.core.stack import read_stack

    out: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    scenes = [(p.stem, *load_scene(p)) for p in sorted(DATA.glob("*.npz"))]
    out["dev"] = np.array([n for n, _, _ in scenes])
    stress = stress_set()
    out["stress"] = np.array([n for n, _, _ in stress])
    for name, data, gt in scenes + stress:
        cube = Cube(data)
        [(g, a)] = _parts([cube], [cube])
        valid = cube.valid_mask()
        out.update({f"{name}|g": g, f"{name}|a": a, f"{name}|valid": valid, f"{name}|gt": gt,
                    f"{name}|pos": _sample_positions([valid])})
        print(name, f"{time.perf_counter() - t0:.0f} s", flush=True)
    stack = read_stack(S2 / "sentinel2-eolearn-ref.npz")
    refs = [stack.cube(k) for k in NORMAL]
    bands = default_band_selection(refs[0])
    dates = [stack.cube(k).select_bands(bands) for k in range(stack.n_dates)]
    refs = [dates[k] for k in NORMAL]
    for k, (g, a) in enumerate(_parts(refs, dates)):
        out.update({f"s2/{k}|g": g, f"s2/{k}|a": a, f"s2/{k}|valid": dates[k].valid_mask()})
    out["s2_pos"] = _sample_positions([c.valid_mask() for c in refs])
    np.savez(path, **out)
    print("saved", path, f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
