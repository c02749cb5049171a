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


LADDER_W = np.array([1.0, 0.5, 0.25])  # the attribute detector's weights for SIZES
FLAG_FLOOR, T_Z0 = 98.25, np.round(np.arange(1.0, 3.01, 0.1), 2)


def _range(x: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(x[ok & np.isfinite(x)], [0.0, 99.9])
    return float(lo), float(hi)


def _scaled(x: np.ndarray, rng: tuple[float, float]) -> np.ndarray:
    lo, hi = rng
    return np.maximum((x - lo) / (hi - lo), 0.0) if hi > lo else np.zeros_like(x)


def _bulk(x: np.ndarray) -> tuple[float, float]:
    med, q = np.percentile(x[np.isfinite(x)], [50.0, 95.0])
    return float(med), float(q - med) if q > med else 1.0


def _odds(g: np.ndarray) -> np.ndarray:
    g = np.minimum(g, 1 - 1e-6)
    return g / (1 - g)


class Parts:
    """One target's parts and the reference's (the scene itself, or Sentinel-2's dates 3 and 4)."""

    def __init__(self, g: list[np.ndarray], a: list[np.ndarray], valid: list[np.ndarray], pos: np.ndarray,
                 target: int) -> None:
        from napari_hsi_anomaly.core.scoring.morphology import glosh_peaks, peak_image

        gf = np.concatenate([x.ravel() for x in g]).astype(np.float64)
        ok = np.concatenate([v.ravel() for v in valid])
        gf[~ok] = np.nan
        at = sum(x.size for x in g[:target])
        self.t = slice(at, at + g[target].size)
        ref = np.ones(gf.size, bool)  # the reference: every image but a separate target
        if len(g) > 1:
            ref[self.t] = False
        img = peak_image(gf[ref])
        level = float(np.median(img[np.isfinite(img)]))
        top = float(np.nanmax(img))
        step = (top - level) / 32768 if top > level else None
        attr = np.concatenate([np.tensordot(LADDER_W, x, 1).ravel() for x in a])
        peaks = np.concatenate([glosh_peaks(np.where(v, x, np.nan), level, step).ravel()
                                for x, v in zip(g, valid)]).astype(np.float64)
        self.a, self.p = _scaled(attr, _range(attr, ok & ref)), _scaled(peaks, _range(peaks, ok & ref))
        self.g, self.ok, self.pos = gf, ok, pos
        self.o = _odds(np.nan_to_num(gf, nan=0.0))
        self.o_med = float(np.median(self.o[pos]))

    def raw(self, aw: float, pw: float, c: float) -> tuple[np.ndarray, np.ndarray]:
        """``(R of the target, R at the reference's sample)`` under the rule (``calibration.Fusion``; with
        ``pw`` and ``c`` 0 the weighted mean alone, ungated, as the product)."""
        gt = np.minimum(self.o / self.o_med, 1.0) if pw > 0 or c > 0 else 1.0
        m = np.nan_to_num(self.g, nan=-np.inf) + aw * self.a * gt + pw * self.p
        if c > 0:
            (mm, ms), (om, os_) = _bulk(m[self.pos]), _bulk(self.o[self.pos])
            m = np.maximum((m - mm) / ms, (self.o - om) / (os_ * c))
        m[~self.ok] = -np.inf
        return m[self.t], m[self.pos]


def _threshold(sample: np.ndarray, z0: float, floor: bool) -> float:
    med, spread = _bulk(sample)
    if floor:
        top = float(np.percentile(sample, FLAG_FLOOR))
        if top > med:
            spread = min(spread, (top - med) / z0)
    return med + z0 * spread


def screen(path: str) -> None:
    """AUC, flagged/true, haze and the leave-one-scene-out choice of each rule in the grid."""
    import itertools

    from sklearn.metrics import roc_auc_score

    z = np.load(path, allow_pickle=False)
    dev, stress = list(z["dev"]), list(z["stress"])
    names = dev + stress
    scenes = {n: (Parts([z[f"{n}|g"]], [z[f"{n}|a"]], [z[f"{n}|valid"]], z[f"{n}|pos"], 0), z[f"{n}|gt"])
              for n in names}
    s2 = {k: Parts([z[f"s2/{d}|g"] for d in (3, 4, k)], [z[f"s2/{d}|a"] for d in (3, 4, k)],
                   [z[f"s2/{d}|valid"] for d in (3, 4, k)], z["s2_pos"], 2) for k in (0, 1, 2)}
    grid = [(aw, 0.0, 0.0) for aw in (0.25, 0.4, 0.6, 1.0, 1.8)]
    grid += list(itertools.product((0.4, 1.0, 1.4, 1.8), (0.8, 1.2, 1.6, 2.0), (0.0, 2.0, 3.0)))
    rows, auc = [], {}
    for aw, pw, c in grid:
        a = np.array([roc_auc_score(gt.ravel(), scenes[n][0].raw(aw, pw, c)[0]) for n, (_, gt)
                      in ((n, scenes[n]) for n in names)])
        auc[(aw, pw, c)] = a
        ratio = {}
        for n in names:
            r, smp = scenes[n][0].raw(aw, pw, c)
            ratio[n] = [(r >= _threshold(smp, z0, True)).sum() / max(1, scenes[n][1].sum()) for z0 in T_Z0]
        ok = [z0 for i, z0 in enumerate(T_Z0) if sum(0.25 <= ratio[n][i] <= 4 for n in dev) >= 8
              and all(0.25 <= ratio[n][i] <= 4 for n in stress)]
        z0 = ok[len(ok) // 2] if ok else None
        haze = ""
        if z0 is not None:
            f = {}
            for k, p in s2.items():
                r, smp = p.raw(aw, pw, c)
                f[k] = float((r >= _threshold(smp, z0, False)).mean())
            haze = f"{100 * (f[0] + f[1]) / 2:.1f} % / {100 * f[2]:.1f} %"
        merit = (a.mean() + a.min()) / 2
        rows.append((merit, f"| {aw} | {pw} | {c} | {a[:9].mean():.4f} / {a[:9].min():.4f} | "
                     f"{a[9:].mean():.4f} / {a[9:].min():.4f} | {merit:.4f} | "
                     f"{ok[0] if ok else '-'}..{ok[-1] if ok else '-'} | {z0 or '-'} | {haze or '-'} |"))
    print("| attribute_weight | peak_weight | spectral_max | dev mean / worst | stress mean / worst | merit "
          "| z0 with 8/9 + 36/36 | z0 (middle) | Sentinel-2 hazy / date 2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for _, line in sorted(rows, reverse=True):
        print(line)
    held = []
    for i, k in enumerate(dev):
        idx = [j for j, n in enumerate(names) if n != k and not n.startswith(k + "/")]
        best = max(auc, key=lambda c: (auc[c][idx].mean() + auc[c][idx].min()) / 2)
        held.append(auc[best][i])
        print(f"| {k} | {best} | {auc[best][i]:.4f} | {auc[(0.4, 0.0, 0.0)][i]:.4f} |")
    print(f"held-out mean / worst {np.mean(held):.4f} / {np.min(held):.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        screen(sys.argv[2])
