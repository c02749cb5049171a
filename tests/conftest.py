"""Shared fixtures: the real data in ``../shared/data`` and bounded CPU use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HSI_SHARED_DATA", REPO.parent / "shared" / "data"))

try:  # keep tests light on a 2-core machine
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skipped with a reason where absent, but never in CI (CI has it)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real data at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA} (set HSI_SHARED_DATA)")
    return SHARED_DATA
