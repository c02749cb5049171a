"""Why is this flagged, for the CAE parts (``glosh`` on CAE features, ``recon``, ``ssim-recon``,
``iforest-cae``): the encoder maps and band groups that differ most, the input bands that drive them, and
the reconstruction residual per band.

All four score what the CAE makes of a pixel, so each gets two explanations, computed on a small patch
around the pixel(s) (the network's receptive field as halo, so the values equal the whole-scene pass):

- **encoder**: the pixel feature (``core.model.features``: each Conv1 map averaged over a band group) at
  the pixel as a robust z against the normal population (median and MAD per map); ``components`` are the
  band groups (``kind`` "band group") and the maps (``kind`` "map", with their group) by share of
  ``sum z^2``, and per input band the share of
  ``|sum over the patch of grad(sum z^2) * (x - median spectrum)|`` (gradient times the pixel's
  deviation from the population's median scaled spectrum: the bands whose deviation moves the maps);
- **residual**: the signed reconstruction residual per band. ``recon``: its exact contribution to the
  squared Mahalanobis distance at the pixel (sums to d^2; the detector's map adds that distance's area
  contrast and peaks, ``recon.py``); ``ssim-recon``: each band's SSIM
  dissimilarity over the reference's median in that band (the detector's terms, their mean is the raw
  score); ``glosh``/``iforest-cae``: the robust z^2 of the residual per band against the population.

The normal population is the scene itself, sampled (up to ``POP_TILES`` tiles of ``POP_TILE`` px) and
cached for the last (model, cube) pair: a scene is mostly normal, and a saved profile need not keep its
reference cubes. Scaled units throughout (the model's min-max scaler).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube

POP_TILE = 64  # population tile side (pixels)
POP_TILES = 16  # tiles sampled for the population's medians
PATCH = 64  # pixels of a region explained in one patch; beyond, one patch a pixel
MAX_PIXELS = 64  # region pixels explained (the highest-scoring)
SCALE_FLOOR = 0.1  # robust scales floored at this share of the median scale (dead maps)
_MAD = 1.4826


@dataclass
class Local:
    """Network values on a patch core ``[r0, r1) x [c0, c1)``: ``feat (D, h, w)`` pixel feature,
    ``residual (nb, h, w)``, ``x (nb, h, w)`` scaled input, ``valid (h, w)``."""

    feat: np.ndarray
    residual: np.ndarray
    x: np.ndarray
    valid: np.ndarray


@dataclass
class Population:
    """Robust centre and scale of the pixel feature, residual and scaled spectrum over normal pixels."""

    feat_med: np.ndarray
    feat_mad: np.ndarray
    res_med: np.ndarray
    res_mad: np.ndarray
    x_med: np.ndarray


def _halo(model: Any) -> int:
    """The whole network's receptive-field radius (a multiple of the pooling product)."""
    from napari_hsi_anomaly.core.model.cae import network_halo

    return network_halo(model.config)


def _input(model: Any, cube: Cube, r0: int, r1: int, c0: int, c1: int, halo: int):
    """``(x (1, 1, net_bands, H, W), valid (H, W), (row, col) of the core's corner in x)``: the core plus
    ``halo``, started on the pooling grid as the whole-scene tiles are (so the values equal theirs)."""
    import torch

    from napari_hsi_anomaly.core.model.dataset import prepare, read_block

    f = model.config.spatial_factor
    ar0, ac0 = r0 // f * f - halo, c0 // f * f - halo
    h = -(-(r1 + halo - ar0) // f) * f
    w = -(-(c1 + halo - ac0) // f) * f
    block, inside = read_block(cube, ar0, ar0 + h, ac0, ac0 + w)
    x, valid = prepare(block, inside, model.scaler, model.config)
    device = next(model.net.parameters()).device
    return torch.from_numpy(x)[None, None].to(device), valid, (r0 - ar0, c0 - ac0)


def local(model: Any, cube: Cube, r0: int, r1: int, c0: int, c1: int) -> Local:
    """``Local`` of the core ``[r0, r1) x [c0, c1)`` (no gradient)."""
    import torch

    from napari_hsi_anomaly.core.model.features import pixel_maps

    x, valid, (oy, ox) = _input(model, cube, r0, r1, c0, c1, _halo(model))
    nb, net = model.config.used_bands, model.net
    net.eval()
    with torch.inference_mode():
        feat = pixel_maps(net.act(net.encoder[0](x)), model.config)[0]
        res = (net(x) - x)[0, 0, :nb]
    core = (slice(oy, oy + r1 - r0), slice(ox, ox + c1 - c0))
    def arr(t: Any) -> np.ndarray:
        return t[:, core[0], core[1]].float().cpu().numpy()

    return Local(arr(feat), arr(res), arr(x[0, 0, :nb]), valid[core])


_CACHE: dict[str, Any] = {}


def _ref(obj: Any) -> Any:
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def population(model: Any, cube: Cube, seed: int = 0) -> Population:
    """The scene's normal population (sampled tiles), cached for the last (model, cube)."""
    hit = _CACHE.get("last")
    if hit is not None and hit[0]() is model and hit[1]() is cube:
        return hit[2]
    rng = np.random.default_rng(seed)
    starts = [(r, c) for r in range(0, cube.rows, POP_TILE) for c in range(0, cube.cols, POP_TILE)]
    if len(starts) > POP_TILES:
        starts = [starts[i] for i in np.sort(rng.choice(len(starts), POP_TILES, replace=False))]
    feats, ress, xs = [], [], []
    for r, c in starts:
        loc = local(model, cube, r, min(r + POP_TILE, cube.rows), c, min(c + POP_TILE, cube.cols))
        ok = loc.valid
        feats.append(loc.feat[:, ok])
        ress.append(loc.residual[:, ok])
        xs.append(loc.x[:, ok])
    f, r, x = (np.concatenate(a, axis=1).astype(np.float64) for a in (feats, ress, xs))

    def robust(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median and MAD per row; the MAD floored at ``SCALE_FLOOR`` x the median MAD of the rows, so a
        map that is nearly constant on the scene (a ReLU map off almost everywhere) does not explode."""
        med = np.median(a, axis=1)
        mad = np.median(np.abs(a - med[:, None]), axis=1) * _MAD
        live = mad[mad > 0]
        floor = SCALE_FLOOR * float(np.median(live)) if live.size else 1.0
        return med, np.maximum(mad, max(floor, 1e-9))

    fm, fs = robust(f)
    rm, rs = robust(r)
    pop = Population(fm, fs, rm, rs, np.median(x, axis=1))
    _CACHE["last"] = (_ref(model), _ref(cube), pop)
    return pop


def patches(px: np.ndarray, side: int = PATCH) -> list[tuple[int, int, int, int, np.ndarray]]:
    """``(r0, r1, c0, c1, pixels)``: one patch around all ``px`` when they fit ``side``, else one a pixel."""
    r0, r1 = int(px[:, 0].min()), int(px[:, 0].max()) + 1
    c0, c1 = int(px[:, 1].min()), int(px[:, 1].max()) + 1
    if r1 - r0 <= side and c1 - c0 <= side:
        return [(r0, r1, c0, c1, px)]
    return [(int(r), int(r) + 1, int(c), int(c) + 1, np.array([[r, c]])) for r, c in px]


def encoder_drive(model: Any, cube: Cube, px: np.ndarray, pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """``(z (D,) mean robust z of the pixel feature over px, drive (nb,) per input band)``: the drive is
    ``|sum over the patch of grad(mean sum z^2) * (x - median spectrum)|`` per band."""
    import torch

    from napari_hsi_anomaly.core.model.features import pixel_maps

    halo = _halo(model)
    nb, net = model.config.used_bands, model.net
    net.eval()
    z_sum, drive = np.zeros(len(pop.feat_med)), np.zeros(nb)
    for r0, r1, c0, c1, sub in patches(px):
        x, _, (oy, ox) = _input(model, cube, r0, r1, c0, c1, halo)
        x = x.clone().requires_grad_(True)
        med = torch.as_tensor(pop.feat_med, dtype=x.dtype, device=x.device)
        mad = torch.as_tensor(pop.feat_mad, dtype=x.dtype, device=x.device)
        rows = torch.as_tensor(sub[:, 0] - r0 + oy, device=x.device)
        cols = torch.as_tensor(sub[:, 1] - c0 + ox, device=x.device)
        with torch.enable_grad():
            feat = pixel_maps(net.act(net.encoder[0](x)), model.config)[0]  # (D, H, W)
            z = (feat[:, rows, cols].T - med) / mad  # (n, D)
            ((z ** 2).sum(dim=1).sum() / len(px)).backward()
        grad = x.grad[0, 0, :nb].double().cpu().numpy()
        dev = x.detach()[0, 0, :nb].double().cpu().numpy() - pop.x_med[:, None, None]
        drive += (grad * dev).sum(axis=(1, 2))
        z_sum += z.detach().double().sum(dim=0).cpu().numpy()
        net.zero_grad(set_to_none=True)
    return z_sum / len(px), np.abs(drive)


def residuals_at(model: Any, cube: Cube, px: np.ndarray) -> np.ndarray:
    """``(n, nb)`` signed reconstruction residual at ``px``."""
    out = []
    for r0, r1, c0, c1, sub in patches(px):
        loc = local(model, cube, r0, r1, c0, c1)
        out.append(loc.residual[:, sub[:, 0] - r0, sub[:, 1] - c0].T)
    return np.concatenate(out).astype(np.float64)


def _part(part: str, unit: str, bands: np.ndarray, total: float, components: list | None = None,
          note: str = "") -> dict:
    """The keyword arguments of a ``core.explain.PartExplanation`` (built there: no import circle)."""
    return {"part": part, "unit": unit, "bands": bands, "total": total, "components": components or [],
            "note": note}


def _pad(v: np.ndarray, bands: int) -> np.ndarray:
    out = np.full(bands, np.nan)
    out[: len(v)] = v
    return out


def group_label(a: int, b: int, wavelengths: np.ndarray | None) -> str:
    """``bands a-b`` (1-based, inclusive) or ``560-665 nm`` for the band group ``[a, b)``."""
    if wavelengths is not None and np.isfinite(wavelengths[a:b]).all():
        return f"{float(wavelengths[a]):.0f}-{float(wavelengths[b - 1]):.0f} nm"
    return f"bands {a + 1}-{b}" if b - a > 1 else f"band {a + 1}"


def _encoder_part(name: str, model: Any, cube: Cube, px: np.ndarray, pop: Population, wl) -> dict:
    from napari_hsi_anomaly.core.model.features import PIXEL_GROUPS, band_groups

    z, drive = encoder_drive(model, cube, px, pop)
    z2 = z ** 2
    total = float(z2.sum())
    shares = z2 / max(total, 1e-300)
    groups = band_groups(model.config.used_bands, PIXEL_GROUPS)
    g = len(groups)
    by_group = shares.reshape(-1, g).sum(axis=0)
    comps = [{"name": group_label(*groups[gi], wl), "share": float(by_group[gi]), "kind": "band group"}
             for gi in np.argsort(-by_group)]
    for j in np.argsort(-shares)[:12]:
        k, gi = divmod(int(j), g)
        comps.append({"name": f"conv1[{k}]", "share": float(shares[j]), "z": float(z[j]),
                      "group": group_label(*groups[gi], wl), "kind": "map"})
    top = int(np.argmax(by_group))
    note = (f"encoder maps vs the scene; band group {group_label(*groups[top], wl)} carries "
            f"{100 * by_group[top]:.0f} %")
    d = drive / max(float(drive.sum()), 1e-300)
    return _part(f"{name}: encoder", "share of the input drive", _pad(d, cube.bands), total, comps,
                           note=note)


def _residual_part(name: str, part: Any, model: Any, cube: Cube, px: np.ndarray, pop: Population) -> dict:
    nb = model.config.used_bands
    if name == "ssim-recon":
        from napari_hsi_anomaly.core.detectors.ssim_recon import ssim_dissimilarity

        win = int(part.params["ssim_window"])
        m = win // 2
        vals = []
        for r0, r1, c0, c1, sub in patches(px):
            lr0, lc0 = max(0, r0 - m), max(0, c0 - m)
            loc = local(model, cube, lr0, min(cube.rows, r1 + m), lc0, min(cube.cols, c1 + m))
            d = ssim_dissimilarity(loc.x, loc.x + loc.residual, win, float(part.params.get("ssim_sigma", 0)),
                                   float(getattr(part, "k1", 0.01)))
            vals.append(d[:, sub[:, 0] - lr0, sub[:, 1] - lc0])
        v = np.concatenate(vals, axis=1).astype(np.float64)  # (nb, n)
        terms = np.nanmean(v / np.maximum(np.asarray(part.band_median, np.float64)[:nb, None], 1e-12), axis=1)
        return _part(f"{name}: residual", "dissimilarity / reference median",
                               _pad(terms, cube.bands), float(np.nanmean(terms)),
                               note="SSIM of the reconstruction per band")
    res = residuals_at(model, cube, px)  # (n, nb)
    if name == "recon" and getattr(part, "res_whiten", None) is not None:
        w = np.asarray(part.res_whiten, np.float64)
        d = res - np.asarray(part.res_mean, np.float64)
        c = np.nanmean(d * (d @ (w @ w.T)), axis=0)  # each row sums to the squared distance
        return _part(f"{name}: residual", "contribution to d^2", _pad(c, cube.bands),
                               float(c.sum()), note="reconstruction residual, Mahalanobis terms")
    z = np.nanmean((res - pop.res_med) / pop.res_mad, axis=0)
    comps = [{"name": f"band {b + 1}", "share": float(z[b] ** 2 / max(float((z ** 2).sum()), 1e-300)),
              "z": float(z[b])} for b in np.argsort(-(z ** 2))[:5]]
    z2 = z ** 2
    return _part(f"{name}: residual", "residual z^2", _pad(z2, cube.bands), float(z2.sum()), comps,
                           note="reconstruction residual per band vs the scene")


def explain_cae(part: Any, cube: Cube, px: np.ndarray, score: np.ndarray | None = None) -> list[dict]:
    """The encoder and residual explanations (``PartExplanation`` keyword dicts) of a CAE ``part`` for
    pixels ``px`` (``(n, 2)`` row/col; a region: its ``MAX_PIXELS`` highest-scoring pixels of ``score``)."""
    if len(px) > MAX_PIXELS:
        order = np.argsort(-score[px[:, 0], px[:, 1]]) if score is not None else np.arange(len(px))
        px = px[order[:MAX_PIXELS]]
    model = part.model
    model.check_cube(cube)
    pop = population(model, cube)
    wl = None if cube.wavelengths is None else np.asarray(cube.wavelengths, np.float64)
    name = part.detector
    return [_encoder_part(name, model, cube, px, pop, wl), _residual_part(name, part, model, cube, px, pop)]
