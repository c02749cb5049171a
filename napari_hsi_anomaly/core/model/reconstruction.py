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
    float32 in scaled units; NaN at no-data pixels (and for bands a "crop" band policy dropped)."""

    per_pixel: np.ndarray
    per_band: np.ndarray


def iter_reconstruction(
    model: TrainedModel,
    cube: Cube,
    *,
    tile: int | None = None,
    batch_size: int = 4,
    channels_last: bool = True,
) -> Generator[Progress, None, Reconstruction]:
    """Reconstruct ``cube`` tile by tile (halo = the network's receptive field, no seams)."""
    model.check_cube(cube)
    cfg = model.config
    model.net.eval()
    halo = network_halo(cfg)
    tiles = tile_grid(cube.rows, cube.cols, tile or default_tile(cfg, halo), cfg.spatial_factor, halo)
    batch_size = tiles_per_batch(cfg, tiles[0].size + 2 * tiles[0].halo, batch_size)
    per_band = np.full((cube.bands, cube.rows, cube.cols), np.nan, dtype=np.float32)
    nb = cfg.used_bands
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    with memory_format(model, fmt):
        for done, (group, err, vmask) in enumerate(_errors(model, cube, tiles, batch_size, fmt), 1):
            for j, t in enumerate(group):
                h, w = t.r1 - t.r0, t.c1 - t.c0
                e = err[j, :, t.halo : t.halo + h, t.halo : t.halo + w]
                ok = vmask[j, t.halo : t.halo + h, t.halo : t.halo + w]
                per_band[:nb, t.r0 : t.r1, t.c0 : t.c1] = np.where(ok, e, np.nan)
            yield Progress(done, -(-len(tiles) // batch_size), "reconstruction")
    per_pixel = np.full((cube.rows, cube.cols), np.nan, dtype=np.float32)
    ok = np.isfinite(per_band[:nb]).all(axis=0)
    per_pixel[ok] = per_band[:nb, ok].mean(axis=0)
    return Reconstruction(per_pixel=per_pixel, per_band=per_band)


def _errors(model, cube, tiles, batch_size, fmt):
    nb = model.config.used_bands
    for group, x, vmask in iter_tile_batches(model, cube, tiles, batch_size):
        with torch.inference_mode():
            x = x.contiguous(memory_format=fmt)
            err = ((model.net(x) - x)[:, 0, :nb] ** 2).float().cpu().numpy()
        yield group, err, vmask


def reconstruct(model: TrainedModel, cube: Cube, **kwargs) -> Reconstruction:
    """``iter_reconstruction`` run to the end."""
    return run(iter_reconstruction(model, cube, **kwargs))
