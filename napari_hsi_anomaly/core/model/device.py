"""Device and thread selection for torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from napari_hsi_anomaly.core.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Asking for CUDA without one is a ``ModelError``."""
    if device not in DEVICES:
        raise ModelError(f"Device must be one of {DEVICES}; got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was requested but torch sees no CUDA device; use --device cpu.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads (``None``: all CPU cores) and restore the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads or os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)
