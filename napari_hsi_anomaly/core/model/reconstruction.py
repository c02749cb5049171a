"""Per-pixel reconstruction error of a trained CAE (an extra anomaly score and a training check)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.model.cae import network_halo
from napari_hsi_anomaly.core.model.tiles import (
    default_tile,
    iter_tile_batches,
    memory_format,
    tile_grid,
    tiles_per_batch,
)
from napari_hsi_anomaly.core.model.trained import TrainedModel
from napari_hsi_anomaly.core.progress import Progress, run


@dataclass
class Reconstruction:
    """``per_band (bands, rows, cols)`` squared error and ``per_pixel (rows, cols)`` mean over bands,
    float32 in scaled units; NaN at no-data pixels (and for bands a "crop" band policy dropped).
    ``residual``: the signed error (reconstruction minus input, same layout) when asked for."""

    per_pixel: np.ndarray
    per_band: np.ndarray
    residual: np.ndarray | None = None


def iter_reconstruction(
    model: TrainedModel,
    cube: Cube,
    *,
    tile: int | None = None,
    batch_size: int = 4,
    channels_last: bool = True,
    residual: bool = False,
) -> Generator[Progress, None, Reconstruction]:
    """Reconstruct ``cube`` tile by tile (halo = the network's receptive field, no seams); ``residual``:
    keep the signed error too (one more float32 cube)."""
    model.check_cube(cube)
    cfg = model.config
    model.net.eval()
    halo = network_halo(cfg)
    tiles = tile_grid(cube.rows, cube.cols, tile or default_tile(cfg, halo), cfg.spatial_factor, halo)
    batch_size = tiles_per_batch(cfg, tiles[0].size + 2 * tiles[0].halo, batch_size)
    per_band = np.full((cube.bands, cube.rows, cube.cols), np.nan, dtype=np.float32)
    signed = np.full_like(per_band, np.nan) if residual else None
    nb = cfg.used_bands
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with memory_format(model, fmt):
        for done, (group, diff, vmask) in enumerate(_errors(model, cube, tiles, batch_size, fmt), 1):
            for j, t in enumerate(group):
                h, w = t.r1 - t.r0, t.c1 - t.c0
                d = diff[j, :, t.halo : t.halo + h, t.halo : t.halo + w]
                ok = vmask[j, t.halo : t.halo + h, t.halo : t.halo + w]
                d = np.where(ok, d, np.nan)
                per_band[:nb, t.r0 : t.r1, t.c0 : t.c1] = d * d
                if signed is not None:
                    signed[:nb, t.r0 : t.r1, t.c0 : t.c1] = d
            yield Progress(done, -(-len(tiles) // batch_size), "reconstruction")
    per_pixel = np.full((cube.rows, cube.cols), np.nan, dtype=np.float32)
    ok = np.isfinite(per_band[:nb]).all(axis=0)
    per_pixel[ok] = per_band[:nb, ok].mean(axis=0)
    return Reconstruction(per_pixel=per_pixel, per_band=per_band, residual=signed)


def _errors(model, cube, tiles, batch_size, fmt):
    """``(tiles, signed error (batch, bands, h, w) float32, valid masks)`` per batch."""
    nb = model.config.used_bands
    for group, x, vmask in iter_tile_batches(model, cube, tiles, batch_size):
        with torch.inference_mode():
            x = x.contiguous(memory_format=fmt)
            diff = (model.net(x) - x)[:, 0, :nb].float().cpu().numpy()
        yield group, diff, vmask


def reconstruct(model: TrainedModel, cube: Cube, **kwargs) -> Reconstruction:
    """``iter_reconstruction`` run to the end."""
    return run(iter_reconstruction(model, cube, **kwargs))
