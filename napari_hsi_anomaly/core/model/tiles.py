"""Tiling helpers shared by dense features and reconstruction: tiles with a halo, aligned to pooling."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.model.dataset import prepare, read_block
from napari_hsi_anomaly.core.model.trained import TrainedModel

DEFAULT_TILE = 256
TILE_BUDGET = 512 * 2**20  # bytes of first-layer activations per tile batch


@dataclass(frozen=True)
class Tile:
    """Core ``[r0, r1) x [c0, c1)`` of the output; the network sees it with ``halo`` pixels around."""

    r0: int
    r1: int
    c0: int
    c1: int
    size: int
    halo: int


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def tile_grid(rows: int, cols: int, tile: int | None, factor: int, halo: int) -> list[Tile]:
    """Row-major tiles of ``tile`` pixels (a multiple of ``factor``; shrunk for small images).

    Tile starts are multiples of ``factor`` and the halo is a multiple of it too, so the pooling grid
    of every tile is aligned with the one of the whole (reflect-padded) image: no seams.
    """
    size = _round_up(min(tile or DEFAULT_TILE, max(rows, cols)), factor)
    return [
        Tile(r, min(r + size, rows), c, min(c + size, cols), size, halo)
        for r in range(0, rows, size)
        for c in range(0, cols, size)
    ]


def default_tile(config, halo: int) -> int:
    """Largest tile side (at most ``DEFAULT_TILE``, a multiple of the pooling product) whose
    first-layer activations fit ``TILE_BUDGET``: smaller tiles for many bands or many kernels."""
    side = int((TILE_BUDGET / (3 * 4 * max(config.kernels) * config.net_bands)) ** 0.5) - 2 * halo
    f = config.spatial_factor
    return max(4 * f, min(DEFAULT_TILE, side // f * f))


def tiles_per_batch(config, side: int, batch_size: int) -> int:
    """Tiles per forward pass so the first layer's maps (x3: conv, activation, next input) stay
    within ``TILE_BUDGET``; at least 1."""
    per_tile = 3 * 4 * max(config.kernels) * config.net_bands * side * side
    return max(1, min(batch_size, TILE_BUDGET // per_tile))


def load_tile(model: TrainedModel, cube: Cube, t: Tile) -> tuple[np.ndarray, np.ndarray]:
    """Network input ``(net_bands, size+2h, size+2h)`` and its ``valid`` mask for tile ``t``."""
    h, s = t.halo, t.size
    block, inside = read_block(cube, t.r0 - h, t.r0 + s + h, t.c0 - h, t.c0 + s + h)
    return prepare(block, inside, model.scaler, model.config)


def iter_tile_batches(
    model: TrainedModel, cube: Cube, tiles: list[Tile], batch: int
) -> Iterator[tuple[list[Tile], torch.Tensor, np.ndarray]]:
    """Batches of tiles as ``(tiles, x (B, 1, nb, S, S) on the model's device, valid (B, S, S))``."""
    device = next(model.net.parameters()).device
    for i in range(0, len(tiles), batch):
        group = tiles[i : i + batch]
        loaded = [load_tile(model, cube, t) for t in group]
        x = torch.from_numpy(np.stack([a for a, _ in loaded]))[:, None].to(device)
        yield group, x, np.stack([v for _, v in loaded])


@contextmanager
def memory_format(model: TrainedModel, fmt: torch.memory_format) -> Iterator[None]:
    """Run ``model.net`` in memory format ``fmt`` (restored to the contiguous format after), with
    freed memory kept in the heap meanwhile (``kept_heap``)."""
    with kept_heap():
        if fmt is torch.contiguous_format:
            yield
            return
        model.net.to(memory_format=fmt)
        try:
            yield
        finally:
            model.net.to(memory_format=torch.contiguous_format)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_HEAP_USERS = [0]
_HEAP_LOCK = threading.Lock()


def _libc():  # glibc's malloc tuning, or None (another C library)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextmanager
def kept_heap() -> Iterator[None]:
    """Inference allocates and frees tensors of tens of MB per layer and batch: glibc serves those with
    fresh ``mmap`` pages (and trims the heap after each free), so every batch pays page faults (system
    time about half the user time, and the wall time with it). Meanwhile (glibc only) blocks up to 1 GiB
    come from the heap and freed memory stays there; after, glibc's usual thresholds come back (its
    dynamic mmap maximum, 32 MiB) and the freed heap goes back to the system."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is None:
        yield
        return
    with _HEAP_LOCK:
        _HEAP_USERS[0] += 1
        if _HEAP_USERS[0] == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
            libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1)
    try:
        yield
    finally:
        with _HEAP_LOCK:
            _HEAP_USERS[0] -= 1
            if _HEAP_USERS[0] == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
                libc.malloc_trim(0)
