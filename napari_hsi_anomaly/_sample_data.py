"""npe2 sample data: the generated multispectral scene shipped in ``sample_data/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly._reader import cube_layers
from napari_hsi_anomaly.core.scene import CLASS_NAMES
from napari_hsi_anomaly.core.scene.files import SAMPLE_NAME, make_sample_scene, quantize, scene_paths

LayerData = tuple[Any, dict, str]
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"


def _load(directory: Path) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """(cube, gt, classes) from the committed files, or None where they are missing."""
    from napari_hsi_anomaly.core.io import read_cube

    paths = scene_paths(directory, SAMPLE_NAME)
    if not all(p.is_file() for p in paths.values()):
        return None
    cube = read_cube(paths["cube"])
    gt = np.load(paths["gt"], allow_pickle=False)
    classes = np.load(paths["classes"], allow_pickle=False)
    return cube, gt, classes


def sample_scene(directory: str | Path | None = None) -> list[LayerData]:
    """Band stack, RGB composite, "ground truth" and "land cover" layers of the sample scene.

    Reads ``sample_data/sample_scene.hdr``; generates the same scene in memory when it is missing
    (e.g. in an installed wheel, which does not carry ``sample_data/``).
    """
    loaded = _load(Path(directory) if directory is not None else SAMPLE_DIR)
    if loaded is None:
        scene = make_sample_scene()
        cube, gt, classes = quantize(scene.cube), scene.gt, scene.classes
    else:
        cube, gt, classes = loaded
    layers = cube_layers(cube)
    if cube.source is None:  # generated: name the layers as if read from the file
        for _, kwargs, _ in layers:
            kwargs["name"] = kwargs["name"].replace(cube.name, SAMPLE_NAME, 1)
    layers.append(
        (
            np.asarray(gt, dtype=np.uint8),
            {"name": "ground truth", "opacity": 0.6, "metadata": {"planted": "thesis recipe"}},
            "labels",
        )
    )
    layers.append(
        (
            np.asarray(classes, dtype=np.uint8),
            {
                "name": "land cover",
                "visible": False,
                "opacity": 0.5,
                "metadata": {"class_names": list(CLASS_NAMES)},
            },
            "labels",
        )
    )
    return layers
