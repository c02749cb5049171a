"""Why is this flagged: what each part of the detector weighed, for a pixel or a region.

``explain(detection_or_scorer, cube, where)`` (``where``: ``(row, col)`` or a ``(rows, cols)`` mask) gives
an ``Explanation`` with one ``PartExplanation`` per part of the detector:

- global RX and local RX: the per-band contributions to the squared Mahalanobis distance,
  ``c = (x - mu) * (P (x - mu))`` with ``P`` the (shrunk) inverse covariance, so ``sum_b c_b = d^2``
  exactly (local RX: ``mu``, ``P`` of the ring between the windows around the pixel, as the detector);
- GLOSH on spectra: the principal components that separate the pixel from the reference's fitted points
  (robust z of its scaled coordinate against theirs; ``share`` = z^2 over the sum), and per band the
  components' shares spread over their squared loadings (sums to 1);
- attribute filters: per component image the residue of the area opening/closing at the pixel, the size
  of the object it sits in (its connected pixels with at least half its residue), and per band the
  shares spread over the squared loadings.

- the CAE parts (``glosh`` on CAE features, ``recon``, ``ssim-recon``, ``iforest-cae``): two entries each,
  ``"<part>: encoder"`` (the encoder maps and band groups that differ most, and the input bands that drive
  them) and ``"<part>: residual"`` (the reconstruction residual per band), see ``core.explain_cae``.

For a region the values are the mean over its pixels (local RX and the CAE: over its ``MAX_LOCAL``
highest-scoring pixels). Other parts (KNN) are listed with a note and no values.
``to_rows``/``to_csv`` give the table the Inspect dock exports.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.feedback import scorer_of

MAX_LOCAL = 64  # region pixels explained by local RX (one ring covariance each)
CAE_PARTS = ("glosh", "recon", "ssim-recon", "iforest-cae")  # explained by core.explain_cae


@dataclass
class PartExplanation:
    """One part: ``bands`` (per band: contribution or share), ``total`` (RX: d^2; others: the sum),
    ``components`` (dicts: GLOSH/attribute), ``unit`` says what ``bands`` holds."""

    part: str
    unit: str
    bands: np.ndarray | None
    total: float = float("nan")
    components: list[dict] = field(default_factory=list)
    note: str = ""


@dataclass
class Explanation:
    pixels: int
    wavelengths: np.ndarray | None
    band_names: list[str]
    parts: list[PartExplanation]

    def to_rows(self) -> list[dict]:
        """One row per (part, band) and per (part, component): what the CSV holds."""
        rows: list[dict] = []
        for p in self.parts:
            if p.bands is not None:
                for b, v in enumerate(p.bands):
                    wl = "" if self.wavelengths is None else f"{float(self.wavelengths[b]):g}"
                    rows.append({"part": p.part, "item": "band", "name": self.band_names[b],
                                 "wavelength_nm": wl, "value": float(v), "unit": p.unit, "detail": ""})
            for c in p.components:
                detail = "; ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in c.items() if k not in ("name", "share", "loadings"))
                rows.append({"part": p.part, "item": "component", "name": c["name"], "wavelength_nm": "",
                             "value": float(c["share"]), "unit": "share", "detail": detail})
            if p.note:
                rows.append({"part": p.part, "item": "note", "name": "", "wavelength_nm": "", "value": "",
                             "unit": "", "detail": p.note})
        return rows

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, ["part", "item", "name", "wavelength_nm", "value", "unit", "detail"])
            w.writeheader()
            w.writerows(self.to_rows())
        return path


def _where(where: Any, shape: tuple[int, int]) -> np.ndarray:
    """``(n, 2)`` row/col pairs of a pixel ``(row, col)`` or a mask."""
    w = np.asarray(where)
    if w.shape == (2,):
        r, c = int(w[0]), int(w[1])
        if not (0 <= r < shape[0] and 0 <= c < shape[1]):
            raise HsiAnomalyError(f"Pixel ({r}, {c}) is outside the {shape[0]}x{shape[1]} scene.")
        return np.array([[r, c]])
    if w.shape != shape:
        raise ShapeError(f"Explain a (row, col) pixel or a {shape} mask; got shape {w.shape}.")
    idx = np.argwhere(w.astype(bool))
    if not idx.size:
        raise HsiAnomalyError("The region is empty: select a pixel or region first.")
    return idx


def _spectra(cube: Cube, px: np.ndarray) -> np.ndarray:
    r0, r1 = int(px[:, 0].min()), int(px[:, 0].max()) + 1
    x = cube.as_float32(slice(r0, r1))[:, px[:, 0] - r0, px[:, 1]].T.astype(np.float64)
    return x


def mahalanobis_contributions(x: np.ndarray, mean: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """``(n, bands)``: ``(x - mean) * ((x - mean) @ prec)``; each row sums to the squared distance."""
    d = np.atleast_2d(x) - mean
    return d * (d @ prec)


def _rx(part: Any, x: np.ndarray) -> PartExplanation:
    c = mahalanobis_contributions(x, part.mean, part.whiten @ part.whiten.T)
    c = np.nanmean(c, axis=0)
    return PartExplanation("rx", "contribution to d^2", c, float(np.sum(c)))


def _rx_local(part: Any, cube: Cube, px: np.ndarray, score: np.ndarray | None) -> PartExplanation:
    from napari_hsi_anomaly.core.scoring.rx import pca_basis

    inner, outer = int(part.params["rx_inner"]), int(part.params["rx_outer"])
    ridge = float(part.params.get("local_ridge", 1e-6))
    ho, hi = outer // 2, inner // 2
    basis = pca_basis(cube, 20)[1] if cube.bands > 20 else None  # as rx_local's default n_components
    if len(px) > MAX_LOCAL:
        order = np.argsort(-score[px[:, 0], px[:, 1]]) if score is not None else np.arange(len(px))
        px = px[order[:MAX_LOCAL]]
    acc, n = np.zeros(cube.bands), 0
    for r, c in px:
        r0, r1 = max(0, r - ho), min(cube.rows, r + ho + 1)
        c0, c1 = max(0, c - ho), min(cube.cols, c + ho + 1)
        win = cube.as_float32(slice(r0, r1), slice(c0, c1)).astype(np.float64)
        ring = np.isfinite(win).all(axis=0)
        ring[max(0, r - hi) - r0:r + hi + 1 - r0, max(0, c - hi) - c0:c + hi + 1 - c0] = False
        bg, x = win[:, ring].T, win[:, r - r0, c - c0]
        if len(bg) < 2 or not np.isfinite(x).all():
            continue
        y = bg if basis is None else bg @ basis
        cov = np.atleast_2d(np.cov(y, rowvar=False))
        cov += np.eye(cov.shape[0]) * (ridge * np.trace(cov) / cov.shape[0] + 1e-12)
        prec = np.linalg.inv(cov)
        if basis is not None:
            prec = basis @ prec @ basis.T
        acc += mahalanobis_contributions(x, bg.mean(axis=0), prec)[0]
        n += 1
    if not n:
        return PartExplanation("rx-local", "contribution to d^2", None, note="no valid ring around the pixel")
    acc /= n
    return PartExplanation("rx-local", "contribution to d^2", acc, float(acc.sum()),
                           note=f"mean over {n} pixels" if n > 1 else "")


def _spread(shares: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Per band: the components' shares spread over their squared loadings (sums to ``shares.sum()``)."""
    return (basis ** 2) @ shares


def _glosh(part: Any, x: np.ndarray) -> PartExplanation:
    gs = getattr(part.ref, "fed", part.ref.scorer)  # after "Mark as normal": the refitted hierarchy
    fit = gs.state(rows=False)[0]["fit_x"]
    med = np.median(fit, axis=0)
    q1, q3 = np.percentile(fit, [25, 75], axis=0)
    scale = np.maximum((q3 - q1) / 1.349, 1e-12)
    y = gs.transform((x - part.mean) @ part.basis)
    z = np.nanmean((y - med) / scale, axis=0)
    shares = z ** 2 / max(float(np.sum(z ** 2)), 1e-300)
    comps = [{"name": f"PC{j + 1}", "share": float(shares[j]), "z": float(z[j]),
              "loadings": part.basis[:, j].copy()} for j in np.argsort(-shares)]
    return PartExplanation("glosh-spectral", "share", _spread(shares, part.basis), float(np.sum(z ** 2)),
                           comps)


def _attribute(part: Any, cube: Cube, px: np.ndarray) -> PartExplanation:
    from scipy import ndimage

    from napari_hsi_anomaly.core.detectors._spectral import project
    from napari_hsi_anomaly.core.scoring.morphology import small_objects

    area = int(part.params["max_area"])
    r0, r1 = max(0, int(px[:, 0].min()) - area - 1), min(cube.rows, int(px[:, 0].max()) + area + 2)
    c0, c1 = max(0, int(px[:, 1].min()) - area - 1), min(cube.cols, int(px[:, 1].max()) + area + 2)
    sub = cube.as_float32(slice(r0, r1), slice(c0, c1))  # objects under max_area lie within this margin
    from napari_hsi_anomaly.core.cube import as_cube

    coords = project(as_cube(sub, "Explain"), part.mean, part.basis).reshape(r1 - r0, c1 - c0, -1)
    rr, cc = px[:, 0] - r0, px[:, 1] - c0
    res, sizes = [], []
    for j in range(coords.shape[-1]):
        img = np.nan_to_num(coords[..., j], nan=float(np.nanmedian(coords[..., j])))
        residue = small_objects(img, area, float(part.steps[j]))
        res.append(float(residue[rr, cc].mean()))
        level = 0.5 * float(residue[rr, cc].max())  # the object: connected pixels at least half as strong
        if not level > 0:
            sizes.append(0)
            continue
        lab, _ = ndimage.label(residue >= level)
        at = lab[rr, cc]
        sizes.append(int(np.bincount(lab.ravel())[at[at > 0]].max()) if (at > 0).any() else 0)
    res_a = np.asarray(res)
    shares = res_a / max(float(res_a.sum()), 1e-300)
    comps = [{"name": f"PC{j + 1}", "share": float(shares[j]), "residue": res[j], "object_px": sizes[j],
              "loadings": part.basis[:, j].copy()} for j in np.argsort(-shares)]
    return PartExplanation("attribute", "share", _spread(shares, part.basis), float(res_a.sum()), comps,
                           note=f"objects under {area} px")


def explain(obj: Any, cube: Cube, where: Any) -> Explanation:
    """Per part of ``obj``'s detector, what makes ``where`` (a pixel or region mask) score high."""
    scorer = scorer_of(obj)
    cube = scorer.check_target(cube)
    px = _where(where, (cube.rows, cube.cols))
    x = _spectra(cube, px)
    score = getattr(obj, "score_map", None)
    parts = []
    for part in scorer.parts():
        name = part.detector
        if name == "rx":
            parts.append(_rx(part, x))
        elif name == "rx-local":
            parts.append(_rx_local(part, cube, px, score))
        elif name == "glosh-spectral":
            parts.append(_glosh(part, x))
        elif name == "attribute":
            parts.append(_attribute(part, cube, px))
        elif name in CAE_PARTS and getattr(part, "model", None) is not None:
            from napari_hsi_anomaly.core.explain_cae import explain_cae  # torch only when asked

            parts.extend(PartExplanation(**d) for d in explain_cae(part, cube, px, score))
        else:
            parts.append(PartExplanation(name, "", None, note="no explanation for this part yet"))
    names = list(cube.band_names) if cube.band_names else [f"band {i + 1}" for i in range(cube.bands)]
    wl = None if cube.wavelengths is None else np.asarray(cube.wavelengths, np.float64)
    return Explanation(len(px), wl, names, parts)
