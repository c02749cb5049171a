"""Feature extraction (thesis phase 2): encoder maps of a trained CAE turned into data points.

Encoder maps ``fc1`` (Conv1, input resolution) and ``fc2`` (Conv2, after the first pooling) are
brought to ``fc1``'s resolution by nearest (Kronecker) up-sampling and concatenated into ``fc``.

- ``f1``: max of each ``fc`` map over the whole window (rows, cols, bands): ``sum(kernels)`` values
  per window (96 for the thesis preset); one row per window.
- ``f2``: ``fc`` max-pooled over a 4x4 grid of sections, per band and map: ``bands * sum(kernels)``
  values per section (12 * 96 = 1152), ordered band-major then map; one row per section.
- ``f3``/``f4``: the same from the last encoder layer's maps only (48 / 576 for the thesis).
- ``pixel``: for every pixel, the mean of each first-layer encoder map (Conv1, full resolution) over
  ``PIXEL_GROUPS`` contiguous groups of the real bands: ``kernels[0] * groups`` values (64 for the fast
  preset), so *where in the spectrum* a map fires is kept (the deeper, pooled maps blur 1-px targets into
  their neighbours). One row per pixel, row-major, ``regions=None``;
  computed tile by tile with a halo covering Conv1's receptive field (no seams), memory bounded.
  GLOSH does not cluster these 64 values as they are: ``PixelSpace`` (below, fitted on the reference)
  keeps the ``PIXEL_COMPONENTS`` = 3 leading principal components, whitened, plus the leading
  ``PIXEL_RESIDUAL`` = 8 whitened principal components of the signed reconstruction residual
  (reconstruction minus input, over the real bands) and the reconstruction error normalised per band
  as a robust z; GLOSH uses these coordinates without min-max scaling. Why: the encoder's components
  alone lose 1-px targets in the blur of the 3x3 kernels; the error coordinate keeps them; the residual's
  components say *what* the network failed to rebuild. Chosen by leave-one-scene-out over the candidate
  spaces on the same trained networks (benchmarks/results/bench_cae.md; figures in
  benchmarks/results/design_history.md).

Windows follow ``core.windows.window_grid`` (overlap at right/bottom edges); windows or cubes smaller
than the window are reflect-padded, and maxima are taken over the part inside the cube only.
Padded bands (band policy "pad") never enter a feature. ``FeatureSet.valid`` marks rows whose region
has at least one valid pixel (pixel kind: the pixel is valid); invalid rows hold finite values
computed with no-data set to 0 and should be left out of clustering.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model.dataset import prepare, read_block
from napari_hsi_anomaly.core.model.tiles import (
    default_tile,
    iter_tile_batches,
    memory_format,
    tile_grid,
    tiles_per_batch,
)
from napari_hsi_anomaly.core.model.trained import TrainedModel
from napari_hsi_anomaly.core.progress import Progress, run
from napari_hsi_anomaly.core.windows import Region, regions_array, section_grid, window_grid

FEATURE_KINDS = ("f1", "f2", "f3", "f4", "pixel")
GRID = 4  # sections per side for f2/f4
PIXEL_GROUPS = 4  # band groups of the pixel feature (fewer when the cube has fewer bands)
MIN_WINDOWS_PER_SIDE = 4  # default f1-f4 window: at most a quarter of the scene's shorter side
UPSAMPLE_MODES = ("nearest", "bilinear")
TRANSFORM_ROWS = 65536  # pixel-space rows projected per chunk (bounded float64 copies)


@dataclass
class FeatureSet:
    """``values (N, D)`` float32; ``regions (N, 4)`` int64 ``r0, r1, c0, c1`` in cube pixels, or
    ``None`` for one row per pixel in row-major order; ``valid (N,)`` bool or None (all valid)."""

    values: np.ndarray
    regions: np.ndarray | None
    kind: str
    image_shape: tuple[int, int]
    window: int | None = None
    names: list[str] | None = None
    valid: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])


def feature_layers(kind: str, n_layers: int) -> list[int]:
    """Encoder layers a feature kind uses: all for f1/f2, the last for f3/f4, the first for pixel."""
    if kind == "pixel":
        return [0]
    return [n_layers - 1] if kind in ("f3", "f4") else list(range(n_layers))


def band_groups(bands: int, groups: int = PIXEL_GROUPS) -> list[tuple[int, int]]:
    """``min(groups, bands)`` contiguous ``[start, stop)`` band ranges of near-equal size."""
    g = max(1, min(int(groups), int(bands)))
    edges = np.linspace(0, bands, g + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def feature_names(model: TrainedModel, kind: str) -> list[str]:
    layers = feature_layers(kind, len(model.config.kernels))
    maps = [f"conv{i + 1}[{k}]" for i in layers for k in range(model.config.kernels[i])]
    if kind in ("f2", "f4"):
        return [f"b{b}:{m}" for b in range(model.config.used_bands) for m in maps]
    if kind == "pixel":
        groups = band_groups(model.config.used_bands, PIXEL_GROUPS)
        return [f"{m}@b{a}-{b - 1}" for m in maps for a, b in groups]
    return maps


def iter_features(
    model: TrainedModel,
    cube: Cube,
    kind: str = "pixel",
    *,
    batch_size: int = 4,
    window: int | None = None,
    tile: int | None = None,
    upsample: str = "nearest",
    channels_last: bool = True,
) -> Generator[Progress, None, FeatureSet]:
    """Features of ``kind`` for ``cube``; yields a ``Progress`` per batch (see module docstring).

    ``window`` overrides the f1-f4 window (a multiple of the pooling product, clipped to the scene;
    default ``feature_window``); ``tile`` is the core tile size of pixel features (default: up to 256,
    smaller when many bands or kernels would exceed a 512 MB activation budget). ``upsample`` is
    accepted for compatibility (the pixel feature uses Conv1, already at full resolution).
    ``channels_last`` runs the network in the ``channels_last_3d`` memory format (about 2x faster on
    CPU; the net is restored after).
    """
    if kind not in FEATURE_KINDS:
        raise ModelError(f"Unknown feature {kind!r}; choose one of {FEATURE_KINDS}.")
    if upsample not in UPSAMPLE_MODES:
        raise ModelError(f"Up-sampling must be one of {UPSAMPLE_MODES}; got {upsample!r}.")
    if kind != "pixel":
        sets = yield from iter_window_features(model, cube, (kind,), batch_size=batch_size, window=window,
                                               channels_last=channels_last)
        return sets[kind]
    model.check_cube(cube)
    model.net.eval()
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with memory_format(model, fmt):
        return (yield from _iter_pixel(model, cube, batch_size, tile, upsample, fmt))


def extract_features(model: TrainedModel, cube: Cube, kind: str = "pixel", **kwargs) -> FeatureSet:
    """``iter_features`` run to the end."""
    return run(iter_features(model, cube, kind, **kwargs))


def _encode(model: TrainedModel, x: torch.Tensor, fmt: torch.memory_format) -> list[torch.Tensor]:
    with torch.inference_mode():
        return model.net.encode(x.contiguous(memory_format=fmt))


def feature_window(config, rows: int, cols: int, window: int | None = None) -> int:
    """Window of f1-f4 on a ``rows x cols`` scene: ``window`` (default the model's) never larger than the
    scene; by default also at most a quarter of the shorter side, so a small scene still gives at least
    4 x 4 windows to cluster (the thesis's 128 px on its 1830 px scenes is unchanged). A multiple of the
    pooling product, at least that product."""
    f, side = config.spatial_factor, min(rows, cols)
    size = int(window) if window else min(config.window, side // MIN_WINDOWS_PER_SIDE)
    return max(f, min(size, side) // f * f)


def iter_window_features(model: TrainedModel, cube: Cube, kinds: Sequence[str] = ("f1", "f2", "f3", "f4"), *,
                         batch_size: int = 4, window: int | None = None, channels_last: bool = True,
                         ) -> Generator[Progress, None, dict[str, FeatureSet]]:
    """Several window/section kinds from ONE encoder pass per batch: ``{kind: FeatureSet}``, each the
    ``FeatureSet`` that ``iter_features(model, cube, kind)`` gives (the thesis protocol needs all four)."""
    bad = [k for k in kinds if k not in FEATURE_KINDS or k == "pixel"]
    if bad or not kinds:
        raise ModelError(f"Window features are f1-f4; got {list(kinds)}.")
    model.check_cube(cube)
    model.net.eval()
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with memory_format(model, fmt):
        return (yield from _iter_windows(model, cube, tuple(kinds), batch_size, window, fmt))


def _iter_windows(model, cube, kinds: tuple[str, ...], batch_size, window, fmt
                  ) -> Generator[Progress, None, dict[str, FeatureSet]]:
    cfg = model.config
    if window and int(window) % cfg.spatial_factor:
        raise ModelError(f"Window {window} must be a multiple of {cfg.spatial_factor} (pooling).")
    size = feature_window(cfg, cube.rows, cube.cols, window)
    layers = {k: feature_layers(k, len(cfg.kernels)) for k in kinds}
    regions = window_grid(cube.rows, cube.cols, size)
    acc: dict[str, tuple[list, list, list]] = {k: ([], [], []) for k in kinds}
    label = "/".join(kinds)
    for i in range(0, len(regions), batch_size):
        group = regions[i : i + batch_size]
        xs, vs = [], []
        for g in group:
            block, inside = read_block(cube, g.r0, g.r0 + size, g.c0, g.c0 + size)
            x, v = prepare(block, inside, model.scaler, cfg)
            xs.append(x)
            vs.append(v)
        device = next(model.net.parameters()).device
        maps = _encode(model, torch.from_numpy(np.stack(xs))[:, None].to(device), fmt)
        for j, g in enumerate(group):
            h, w = g.r1 - g.r0, g.c1 - g.c0
            for kind in kinds:
                if kind in ("f1", "f3"):
                    sections = [Region(0, h, 0, w)]
                else:
                    sections = [Region(s.r0 - g.r0, s.r1 - g.r0, s.c0 - g.c0, s.c1 - g.c0)
                                for s in section_grid(g, GRID)]
                rows_out, regions_out, valid_out = acc[kind]
                for s in sections:
                    rows_out.append(_section_values(maps, j, layers[kind], s, cfg,
                                                    per_band=kind in ("f2", "f4")))
                    regions_out.append(Region(g.r0 + s.r0, g.r0 + s.r1, g.c0 + s.c0, g.c0 + s.c1))
                    inside = vs[j][s.r0 : max(s.r1, s.r0 + 1), s.c0 : max(s.c1, s.c0 + 1)]
                    valid_out.append(bool(inside.any()))
        done = min(i + batch_size, len(regions))
        yield Progress(done, len(regions), f"{label} features: window {done}/{len(regions)}")
    return {
        kind: FeatureSet(
            values=np.stack(rows).astype(np.float32, copy=False), regions=regions_array(regs), kind=kind,
            image_shape=(cube.rows, cube.cols), window=size, names=feature_names(model, kind),
            valid=np.array(valid, dtype=bool),
        )
        for kind, (rows, regs, valid) in acc.items()
    }


def _section_values(maps, j, layers, s: Region, cfg, per_band: bool) -> np.ndarray:
    """Maxima of the chosen layers' maps of window ``j`` over section ``s`` (window pixels).

    Exact equivalent of max-pooling the nearest-up-sampled ``fc``: a section covers map cells
    ``floor(r0 / f) .. ceil(r1 / f)`` of a layer pooled ``f`` times spatially.
    """
    out = []
    fr, fb = 1, 1
    for li in range(max(layers) + 1):
        if li in layers:
            m = maps[li][j]  # (K, nb_l, h_l, w_l)
            r0, r1 = s.r0 // fr, max(-(-s.r1 // fr), s.r0 // fr + 1)
            c0, c1 = s.c0 // fr, max(-(-s.c1 // fr), s.c0 // fr + 1)
            nb = -(-cfg.used_bands // fb)
            m = m[:, :nb, r0:r1, c0:c1].amax(dim=(2, 3))  # (K, nb_l)
            if per_band:
                idx = torch.arange(cfg.used_bands, device=m.device) // fb
                out.append(m[:, idx].T)  # (bands, K)
            else:
                out.append(m.amax(dim=1))  # (K,)
        fr *= cfg.pooling[li][1]
        fb *= cfg.pooling[li][0]
    if per_band:
        return torch.cat(out, dim=1).reshape(-1).float().cpu().numpy()
    return torch.cat(out).float().cpu().numpy()


def _iter_pixel(model, cube, batch_size, tile, upsample, fmt) -> Generator[Progress, None, FeatureSet]:
    cfg = model.config
    halo = _round_up(cfg.kernel_size // 2, cfg.spatial_factor)  # Conv1's receptive-field radius
    tiles = tile_grid(cube.rows, cube.cols, tile or default_tile(cfg, halo), cfg.spatial_factor, halo)
    groups = PIXEL_GROUPS
    dim = cfg.kernels[0] * len(band_groups(cfg.used_bands, groups))
    from napari_hsi_anomaly.core.guards import check_allocation

    check_allocation(4.0 * cube.rows * cube.cols * dim, f"Pixel features of {cube.name} ({cube.rows}x"
                     f"{cube.cols} px x {dim} values)", hint="use fewer kernels or a smaller scene")
    values = np.empty((cube.rows, cube.cols, dim), dtype=np.float32)
    valid = np.empty((cube.rows, cube.cols), dtype=bool)
    done = 0
    per_batch = tiles_per_batch(cfg, tiles[0].size + 2 * halo, batch_size)
    for group, x, vmask in iter_tile_batches(model, cube, tiles, per_batch):
        full = pixel_maps(_first_layer(model, x, fmt), cfg, groups)  # (B, D, S, S)
        for j, t in enumerate(group):
            h, w = t.r1 - t.r0, t.c1 - t.c0
            core = full[j, :, t.halo : t.halo + h, t.halo : t.halo + w]
            values[t.r0 : t.r1, t.c0 : t.c1] = core.permute(1, 2, 0).float().cpu().numpy()
            valid[t.r0 : t.r1, t.c0 : t.c1] = vmask[j, t.halo : t.halo + h, t.halo : t.halo + w]
        done += len(group)
        yield Progress(done, len(tiles), f"pixel features: tile {done}/{len(tiles)}")
    return FeatureSet(
        values=values.reshape(-1, dim), regions=None, kind="pixel",
        image_shape=(cube.rows, cube.cols), window=None, names=feature_names(model, "pixel"),
        valid=valid.reshape(-1),
    )


def _first_layer(model: TrainedModel, x: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """Conv1 maps (conv + activation, the thesis's fc1): ``(B, K, bands, rows, cols)``."""
    net = model.net
    with torch.inference_mode():
        return net.act(net.encoder[0](x.contiguous(memory_format=fmt)))


def pixel_maps(fc1: torch.Tensor, cfg, groups: int = PIXEL_GROUPS) -> torch.Tensor:
    """Mean of every Conv1 map over each band group of the real bands: ``(B, K * groups, rows, cols)``,
    ordered map-major (``conv1[k]@group``)."""
    parts = [fc1[:, :, a:b].mean(dim=2) for a, b in band_groups(cfg.used_bands, groups)]
    out = torch.stack(parts, dim=2)  # (B, K, G, rows, cols)
    return out.reshape(out.shape[0], -1, *out.shape[-2:])


def _round_up(n: int, m: int) -> int:
    return max(m, -(-n // m) * m)


# --- where GLOSH clusters the pixel feature (fitted on the reference; part of a detector's state) ---

PIXEL_COMPONENTS = 3  # leading principal components of the pixel feature kept for GLOSH (bench_cae.py)
PIXEL_RECON = True  # add the reconstruction error (normalised per band, robust z) as one coordinate
PIXEL_RESIDUAL = 8  # whitened leading components of the signed residual (0: none); glosh's `residual` default
SPACE_SAMPLE = 20000  # reference pixels used for the per-band error medians and the error's bulk
_MAD = 1.4826  # median absolute deviation -> standard deviation of a normal distribution


@dataclass
class PixelSpace:
    """The coordinates GLOSH clusters per pixel, fitted on the reference's pixel features.

    ``(values - mean) @ basis / std``: the ``k`` leading principal components of the ``pixel`` feature,
    whitened (each has unit variance on the reference); with ``band_median`` also the reconstruction
    error as one more coordinate: the squared error of each band divided by the reference's median error
    in that band, averaged over the bands, as a robust z (``(e - center) / scale``, median and MAD of the
    reference). GLOSH then uses these coordinates as they are (no min-max scaling): distances are
    Mahalanobis-like in the encoder's leading subspace. A target is projected with the reference's
    ``mean``/``basis``/``std``/``band_median``, so a saved profile (``state``) reproduces its scores.
    """

    mean: np.ndarray  # (D,) float64
    basis: np.ndarray  # (D, k) float64
    std: np.ndarray  # (k,) float64
    band_median: np.ndarray | None = None  # (used bands,) float64; None: no reconstruction coordinate
    rec_center: float = 0.0
    rec_scale: float = 1.0
    res_mean: np.ndarray | None = None  # (used bands,) float64; None: no residual components
    res_basis: np.ndarray | None = None  # (used bands, j) float64
    res_std: np.ndarray | None = None  # (j,) float64

    @property
    def dim(self) -> int:
        return int(self.basis.shape[1]) + (self.band_median is not None) + self.residual_dim

    @property
    def residual_dim(self) -> int:
        return 0 if self.res_basis is None else int(self.res_basis.shape[1])

    @property
    def uses_residual(self) -> bool:
        return self.res_basis is not None

    @property
    def uses_reconstruction(self) -> bool:
        return self.band_median is not None

    @classmethod
    def fit(cls, values: list[np.ndarray], per_band: list[np.ndarray] | None = None,
            components: int = PIXEL_COMPONENTS, seed: int = 0, residuals: list[np.ndarray] | None = None,
            residual_components: int = PIXEL_RESIDUAL) -> PixelSpace:
        """Fit on the reference cubes' pixel features ``values`` (``(N_i, D)``, NaN rows left out), for
        the reconstruction coordinate their per-band squared errors ``per_band`` (``(bands, rows, cols)``
        over the model's real bands, NaN where invalid) and, for the residual's components, their signed
        residuals ``residuals`` (same layout)."""
        mean, basis, std = whitened_pca(values, components)
        space = cls(mean, basis, std)
        if per_band is not None:
            space._fit_reconstruction(per_band, seed)
        if residuals is not None and residual_components > 0:
            space._fit_residual(residuals, residual_components)
        return space

    def _fit_residual(self, residuals: list[np.ndarray], k: int) -> None:
        """The residuals' pooled mean, ``k`` leading principal axes and their standard deviations (the
        spectral detectors' ``pooled_stats`` / ``pca_basis``: the residual is a cube of used bands)."""
        from napari_hsi_anomaly.core.detectors._spectral import pca_basis, pooled_stats

        mean, cov, _ = pooled_stats([_residual_cube(r) for r in residuals])
        basis = pca_basis(cov, k)
        var = np.einsum("bk,bc,ck->k", basis, cov, basis)
        self.res_mean, self.res_basis = mean, basis
        self.res_std = np.sqrt(np.maximum(var, max(float(var.max()) * 1e-12, 1e-30)))

    @staticmethod
    def band_medians(per_band: list[np.ndarray], seed: int = 0, sample: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The median squared error of each band over the valid pixels of ``per_band`` (``(bands, rows,
        cols)`` arrays, at most ``SPACE_SAMPLE`` pixels drawn), a band with median 0 given the smallest
        positive one; with ``sample`` also the drawn ``(bands, n)`` errors."""
        parts = []
        for e in per_band:
            flat = np.asarray(e).reshape(np.shape(e)[0], -1)
            parts.append(flat[:, np.isfinite(flat).all(axis=0)])
        x = np.concatenate(parts, axis=1)
        if x.shape[1] > SPACE_SAMPLE:
            keep = np.sort(np.random.default_rng(seed).choice(x.shape[1], SPACE_SAMPLE, replace=False))
            x = x[:, keep]
        if x.shape[1] == 0:
            raise ModelError("The reconstruction error needs at least one valid reference pixel.")
        x = x.astype(np.float64)
        med = np.median(x, axis=1)
        pos = med[med > 0]
        med = np.where(med > 0, med, pos.min() if pos.size else 1.0)
        return (med, x) if sample else med

    def _fit_reconstruction(self, per_band: list[np.ndarray], seed: int) -> None:
        self.band_median, x = self.band_medians(per_band, seed, sample=True)
        r = (x / self.band_median[:, None]).mean(axis=0)
        self.rec_center = float(np.median(r))
        mad = _MAD * float(np.median(np.abs(r - self.rec_center)))
        self.rec_scale = mad if mad > 0 else (float(r.std()) or 1.0)

    def transform(self, values: np.ndarray, per_band: np.ndarray | None = None,
                  residual: np.ndarray | None = None) -> np.ndarray:
        """``(N, dim)`` float64 coordinates of the pixel feature rows ``values`` (NaN rows stay NaN);
        ``per_band`` (the same cube's per-band squared errors over the real bands, as in ``fit``) is
        needed with the reconstruction coordinate, ``residual`` (its signed residual) with the residual's
        components."""
        x = np.asarray(values)
        if x.ndim != 2 or x.shape[1] != self.mean.size:
            raise ModelError(f"Pixel features must have {self.mean.size} values; got shape {x.shape}.")
        out = project(x, self.mean, self.basis, self.std)
        parts = [out]
        if self.res_basis is not None:
            if residual is None:
                raise ModelError("This pixel space needs the reconstruction residual of the cube.")
            from napari_hsi_anomaly.core.detectors._spectral import project as project_cube

            cube = _residual_cube(residual)
            if cube.bands != self.res_mean.size or cube.rows * cube.cols != x.shape[0]:
                raise ModelError(f"Residual has shape {np.shape(residual)}; the space needs "
                                 f"{self.res_mean.size} bands and {x.shape[0]} pixels.")
            parts.append(project_cube(cube, self.res_mean, self.res_basis) / self.res_std)
        if self.band_median is not None:
            if per_band is None:
                raise ModelError("This pixel space needs the reconstruction error of the cube.")
            nb = self.band_median.size
            e = np.asarray(per_band).reshape(nb, -1).astype(np.float64)
            if e.shape[1] != x.shape[0]:
                raise ModelError(f"Reconstruction error has {e.shape[1]} pixels; the features {x.shape[0]}.")
            r = (e / self.band_median[:, None]).mean(axis=0)
            parts.append(((r - self.rec_center) / self.rec_scale)[:, None])
        out = np.hstack(parts) if len(parts) > 1 else out
        out[~np.isfinite(out).all(axis=1)] = np.nan  # a no-data row stays one, whole
        return out

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {"mean": self.mean, "basis": self.basis, "std": self.std}
        if self.band_median is not None:
            arrays["band_median"] = self.band_median
        if self.res_basis is not None:
            arrays |= {"res_mean": self.res_mean, "res_basis": self.res_basis, "res_std": self.res_std}
        return arrays, {"rec_center": self.rec_center, "rec_scale": self.rec_scale}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> PixelSpace:
        """Spaces saved before the residual components (no ``res_*`` arrays) load without them."""
        def get(key: str) -> np.ndarray | None:
            return None if key not in arrays else np.asarray(arrays[key], np.float64)

        return cls(get("mean"), get("basis"), get("std"), get("band_median"),
                   float(meta.get("rec_center", 0.0)), float(meta.get("rec_scale", 1.0)),
                   get("res_mean"), get("res_basis"), get("res_std"))


def whitened_pca(chunks: list[np.ndarray], components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (D,), basis (D, k), std (k,))``: the ``k`` leading principal components of the rows of
    the ``(N_i, D)`` pixel features ``chunks`` (rows with a NaN left out), each basis vector's sign fixed
    (its largest entry positive), ``std`` their standard deviations (floored: no division by 0)."""
    n, s1, s2 = 0, None, None
    for v in chunks:
        for i in range(0, v.shape[0], TRANSFORM_ROWS):
            x = np.asarray(v[i : i + TRANSFORM_ROWS], dtype=np.float64)
            x = x[np.isfinite(x).all(axis=1)]
            if s1 is None:
                s1, s2 = np.zeros(x.shape[1]), np.zeros((x.shape[1], x.shape[1]))
            n += x.shape[0]
            s1 += x.sum(axis=0)
            s2 += x.T @ x
    if n < 2:
        raise ModelError("The pixel feature needs at least 2 valid reference pixels.")
    mean = s1 / n
    cov = (s2 - n * np.outer(mean, mean)) / (n - 1)
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    k = max(1, min(int(components), mean.size))
    order = np.argsort(vals)[::-1][:k]
    basis = vecs[:, order]
    basis *= np.where(basis[np.abs(basis).argmax(axis=0), np.arange(k)] < 0, -1.0, 1.0)  # fixed sign
    top = max(float(vals[order[0]]), 0.0)
    std = np.sqrt(np.maximum(vals[order], max(top * 1e-12, 1e-30)))
    return mean, basis, std


def _residual_cube(residual: np.ndarray) -> Cube:
    """A residual ``(bands, rows, cols)`` or ``(bands, pixels)`` as a cube (NaN: no data)."""
    r = np.asarray(residual)
    return Cube(r if r.ndim == 3 else r.reshape(r.shape[0], -1, 1))


def project(x: np.ndarray, mean: np.ndarray, basis: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) @ basis / std`` as float64, a chunk of rows at a time (bounded float64 copies:
    64 x 3.35 M rows whole were 3.4 GB)."""
    out = np.empty((x.shape[0], basis.shape[1]))
    for a in range(0, x.shape[0], TRANSFORM_ROWS):
        out[a : a + TRANSFORM_ROWS] = (np.asarray(x[a : a + TRANSFORM_ROWS], dtype=np.float64) - mean) @ basis
    out /= std
    return out

