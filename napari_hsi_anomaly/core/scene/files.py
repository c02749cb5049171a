"""Writing generated scenes to disk, and the sample scene shipped in the repository."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.scene import Scene, make_scene

REFLECTANCE_SCALE = 10000.0
FORMATS = ("envi", "npy")
SAMPLE_NAME = "sample_scene"
# The sample in ``sample_data/``: 16 windows of 64 px, 4 of them with a 10x10 anomaly.
SAMPLE_SCENE: dict = {"rows": 256, "cols": 256, "seed": 0, "p_anom": 0.25, "window": 64, "s_anom": 10}


def quantize(cube: Cube, scale: float = REFLECTANCE_SCALE) -> Cube:
    """A uint16 copy of a reflectance cube: ``round(reflectance * scale)`` with ``scale_factor=scale``."""
    data = np.empty(cube.shape, dtype=np.uint16)
    for b in range(cube.bands):
        data[b] = np.clip(np.rint(np.asarray(cube.data[b], dtype=np.float64) * scale), 0, 65535)
    return replace(cube, data=data, scale_factor=float(scale), metadata=dict(cube.metadata))


def scene_paths(directory: str | Path, stem: str, fmt: str = "envi") -> dict[str, Path]:
    """Where ``write_scene`` puts the cube, its ground truth and its land-cover classes."""
    d = Path(directory)
    cube = d / (f"{stem}.hdr" if fmt == "envi" else f"{stem}.npy")
    return {"cube": cube, "gt": d / f"{stem}_gt.npy", "classes": d / f"{stem}_classes.npy"}


def write_scene(
    scene: Scene,
    directory: str | Path,
    stem: str,
    *,
    fmt: str = "envi",
    scale: float | None = REFLECTANCE_SCALE,
) -> dict[str, Path]:
    """Write a scene: ENVI ``.hdr``/``.img`` (uint16 x ``scale``, or float32 with ``scale=None``) or
    ``.npy`` ``(rows, cols, bands)``, plus ``*_gt.npy`` and ``*_classes.npy`` (uint8)."""
    from napari_hsi_anomaly.core.io import write_cube

    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of {FORMATS}.")
    paths = scene_paths(directory, stem, fmt)
    Path(directory).mkdir(parents=True, exist_ok=True)
    cube = quantize(scene.cube, scale) if scale else scene.cube
    paths["cube"] = write_cube(paths["cube"], cube)
    from napari_hsi_anomaly.core.atomic import save_npy

    save_npy(paths["gt"], scene.gt.astype(np.uint8))
    save_npy(paths["classes"], scene.classes.astype(np.uint8))
    return paths


def make_sample_scene() -> Scene:
    """The scene shipped as ``sample_data/sample_scene`` (before uint16 quantisation)."""
    return make_scene(**SAMPLE_SCENE)


def write_sample(directory: str | Path) -> dict[str, Path]:
    """Regenerate the shipped sample files into ``directory``."""
    return write_scene(make_sample_scene(), directory, SAMPLE_NAME)
