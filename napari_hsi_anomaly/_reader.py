"""npe2 reader: cubes (ENVI, NumPy, TIFF, Sentinel-2 SAFE) as a band stack plus an RGB composite (plus
their ground truth), 2-D maps (saved scores and masks), and 4-D stacks of dates.

Layer contract (what the docks read; see docs/architecture.md):
- band stack: Image ``(bands, rows, cols)``, ``axis_labels`` ("band", "row", "col"), ``metadata``:
  ``cube`` (the ``Cube``), ``wavelengths``, ``band_names``, ``band_labels``, ``source``;
- RGB composite: Image ``(rows, cols, 3)``, ``rgb=True``, ``metadata``: ``cube``, ``rgb_bands``;
- ground truth: Labels ``(rows, cols)`` uint8 named "ground truth", ``metadata``: ``cube``,
  ``ground_truth`` (where it came from): from an ``.npz`` key ``gt`` or a ``<stem>_gt.npy`` beside the file;
- stack of dates: Image ``(bands, dates, rows, cols)`` (a view of the file), ``axis_labels`` ("band",
  "date", "row", "col"), ``metadata``: ``stack`` (``core.stack.Stack``), ``cube`` (date 0), ``band_axis``
  0, ``date_axis`` 1, ``n_dates``, and the band keys above; its RGB: Image ``(dates, rows, cols, 3)``,
  ``metadata``: ``stack``, ``cube``, ``rgb_bands``. Bands first so that napari, which aligns layers on
  their last axes, puts the RGB's dates on the stack's date axis (the band slider stays axis 0 as for
  a cube);
- a 2-D map: Labels (integer values, e.g. a saved mask or ground truth) or Image (scores), ``metadata``:
  ``map`` (the source path).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.io.safe import DEFAULT_RESOLUTION, is_safe

LayerData = tuple[Any, dict, str]
READER_SUFFIXES = (".hdr", ".npy", ".npz", ".tif", ".tiff", ".zip")
SAMPLE_PIXELS = 256 * 256  # per band, for contrast limits
SAMPLE_BANDS = 8
GT_NAME = "ground truth"
MAX_LABEL_VALUES = 256  # an integer map with at most this many distinct values opens as Labels


def _npz_member_ndim(path: Path, key: str = "cube") -> int | None:
    """``ndim`` of ``key`` in an ``.npz`` from its header only; None when absent or unreadable."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape = np.lib.format.read_array_header_1_0(f)[0]
            else:
                shape = np.lib.format.read_array_header_2_0(f)[0]
            return len(shape)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None


def _is_cube_like(path: Path) -> bool:
    """Whether ``path`` looks like a 3-D cube (cheap: headers only)."""
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        from napari_hsi_anomaly.core.io.envi_header import looks_like_envi_header, read_header

        if not looks_like_envi_header(path):  # not e.g. an Analyze 7.5 header
            return False
        try:
            return str(read_header(path).get("bands", "")).strip() != "1"
        except HsiAnomalyError:
            return True  # let read_cube say what is wrong with it
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 3
        except (ValueError, OSError, EOFError):
            return False
    if suffix == ".npz":
        ndim = _npz_member_ndim(path)
        return ndim is None or ndim == 3  # None: let read_cube say which keys it has
    if suffix in (".tif", ".tiff"):
        from napari_hsi_anomaly.core.io.tiff import tiff_shape

        try:
            shape, axes, photometric = tiff_shape(path)
        except HsiAnomalyError:
            return False
        photo = photometric.upper() in ("RGB", "YCBCR", "PALETTE")
        return len(shape) == 3 and 1 not in shape and not (photo and shape[-1] in (3, 4))
    return False


def file_kind(path: str | Path) -> str | None:
    """What the reader makes of ``path``: ``"safe"``, ``"stack"``, ``"cube"``, ``"map"`` or None."""
    from napari_hsi_anomaly.core.io.readers import is_map_file

    p = Path(path)
    if p.is_dir():
        return "safe" if is_safe(p) else None
    suffix = p.suffix.lower()
    if suffix not in READER_SUFFIXES or not p.is_file():
        return None
    if suffix == ".zip":
        return "safe" if is_safe(p) else None
    if suffix == ".npy":
        from napari_hsi_anomaly.core.stack import is_stack_file

        if is_stack_file(p):
            return "stack"
    if _is_cube_like(p):
        return "cube"
    if is_map_file(p):
        return "map"
    return None


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """The reader for ``path`` if we handle it, else None (napari tries others)."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(file_kind(p) is None for p in paths):
        return None
    return read_layers


def read_layers(path: str | list[str], *, resolution: int = DEFAULT_RESOLUTION) -> list[LayerData]:
    """Layer data for each path: see the module docstring. ``resolution`` (m) for SAFE products."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        kind = file_kind(p)
        if kind == "stack":
            from napari_hsi_anomaly.core.stack import read_stack

            layers.extend(stack_layers(read_stack(p)))
        elif kind == "map":
            layers.append(map_layer(Path(p)))
        else:
            cube = read_cube(p, resolution=resolution)
            layers.extend(cube_layers(cube))
            scl = scl_layer(cube)
            if scl is not None:
                layers.append(scl)
            gt = ground_truth_layer(cube)
            if gt is not None:
                layers.append(gt)
    return layers


def contrast_limits(cube: Cube) -> tuple[float, float]:
    """1st-99th percentile of a strided subsample (a few bands, at most ~65k pixels each)."""
    step = max(1, int(np.ceil(np.sqrt(cube.rows * cube.cols / SAMPLE_PIXELS))))
    bands = np.unique(np.linspace(0, cube.bands - 1, min(cube.bands, SAMPLE_BANDS)).astype(int))
    sample = np.stack([np.asarray(cube.data[b, ::step, ::step]) for b in bands]).astype(np.float64)
    if np.iscomplexobj(sample):
        sample = np.abs(sample)
    ok = np.isfinite(sample)
    if cube.nodata is not None:
        ok &= sample != cube.nodata
    if not ok.any():
        return (0.0, 1.0)
    lo, hi = np.percentile(sample[ok], (1, 99))
    if not hi > lo:
        lo, hi = float(sample[ok].min()), float(sample[ok].max())
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def layer_geometry(georef: dict | None, ndim: int = 2) -> dict:
    """napari ``scale``/``translate`` for a north-up georeferenced grid: pixel size and the centre of
    the first pixel (napari places pixel centres; rows grow southwards, so the row axis is -y); ``{}``
    without a usable transform (rotated, flipped or none). ``ndim``: the layer's axes, the leading
    ones (bands, dates) get scale 1 and no shift. Every layer of a scene gets the same, so they
    stay aligned (the docks copy the band stack's)."""
    t = (georef or {}).get("transform")
    if t is None or len(t) < 6 or t[1] or t[3] or not (t[0] > 0 and t[4] < 0):
        return {}
    a, c, e, f = float(t[0]), float(t[2]), float(t[4]), float(t[5])
    lead = ndim - 2
    return {"scale": (1.0,) * lead + (-e, a), "translate": (0.0,) * lead + (-f - 0.5 * e, c + 0.5 * a)}


def _band_meta(cube: Cube) -> dict:
    return {
        "georef": cube.georef,
        "cube": cube,
        "wavelengths": cube.wavelengths,
        "band_names": cube.band_names,
        "band_labels": [cube.band_label(i) for i in range(cube.bands)],
        "source": str(cube.source) if cube.source is not None else None,
    }


def cube_layers(cube: Cube) -> list[LayerData]:
    """An Image layer for the bands (lazy: memmaps stay memmaps) and an RGB composite layer."""
    stack = (
        cube.data,
        {
            "name": cube.name,
            "metadata": _band_meta(cube),
            "contrast_limits": contrast_limits(cube),
            "axis_labels": ("band", "row", "col"),
            "colormap": "gray",
            **layer_geometry(cube.georef, 3),
        },
        "image",
    )
    rgb_bands = cube.rgb_bands()
    rgb = (
        cube.rgb(rgb_bands),
        {
            "name": f"{cube.name} RGB",
            "rgb": True,
            "metadata": {"cube": cube, "rgb_bands": rgb_bands},
            "visible": True,
            **layer_geometry(cube.georef, 2),
        },
        "image",
    )
    return [stack, rgb]


def find_ground_truth(cube: Cube) -> tuple[np.ndarray, str] | None:
    """(gt, where from) for ``cube``: an ``.npz`` key ``gt``, else ``<stem>_gt.npy`` beside the file,
    when its shape is the cube's ``(rows, cols)``; else None."""
    gt = cube.metadata.get("gt")
    if isinstance(gt, np.ndarray) and gt.shape == (cube.rows, cube.cols):
        return gt, f"{cube.name}: key gt"
    if cube.source is None or not Path(cube.source).is_file():
        return None
    side = Path(cube.source).with_name(f"{Path(cube.source).stem}_gt.npy")
    if not side.is_file():
        return None
    try:  # the header only: the shape is checked before a byte of pixels is read
        arr = np.squeeze(np.load(side, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, EOFError):
        return None
    if arr.shape != (cube.rows, cube.cols) or arr.dtype.kind not in "biuf":
        return None
    from napari_hsi_anomaly.core.guards import check_allocation

    check_allocation(float(arr.nbytes), f"the ground truth {side}")
    return np.array(arr), str(side)


def ground_truth_layer(cube: Cube) -> LayerData | None:
    """A Labels layer "ground truth" (uint8, non-zero = anomaly) for ``cube``, or None."""
    found = find_ground_truth(cube)
    if found is None:
        return None
    gt, origin = found
    labels = np.nan_to_num(np.asarray(gt, dtype=np.float64)) if gt.dtype.kind == "f" else np.asarray(gt)
    labels = np.clip(labels, 0, 255).astype(np.uint8)
    return (labels, {"name": GT_NAME, "opacity": 0.6, "metadata": {"cube": cube, "ground_truth": origin},
                     **layer_geometry(cube.georef, 2)}, "labels")


def scl_layer(cube: Cube) -> LayerData | None:
    """A Sentinel-2 L2A product's scene classification as a Labels layer (hidden; its classes in
    ``metadata["classes"]``), or None."""
    scl = cube.metadata.get("scl")
    if not isinstance(scl, np.ndarray) or scl.shape != (cube.rows, cube.cols):
        return None
    from napari_hsi_anomaly.core.io.safe import SCL_NAMES

    return (scl, {"name": "scene classification", "opacity": 0.5, "visible": False,
                  "metadata": {"cube": cube, "classes": dict(SCL_NAMES)}, **layer_geometry(cube.georef, 2)},
            "labels")


def stack_layers(stack: Any) -> list[LayerData]:
    """A 4-D stack of dates: one Image ``(bands, dates, rows, cols)`` (a view of the file) with a band
    and a date slider, and an RGB composite per date ``(dates, rows, cols, 3)``."""
    data = np.moveaxis(stack.data, -1, 0) if stack.layout == "bands-last" else np.swapaxes(stack.data, 0, 1)
    cube0 = stack.cube(0)
    meta = {**_band_meta(cube0), "stack": stack, "band_axis": 0, "date_axis": 1, "n_dates": stack.n_dates}
    bands = cube0.rgb_bands()
    rgb = np.stack([stack.cube(k).rgb(bands) for k in range(stack.n_dates)])
    return [
        (data, {"name": stack.name, "metadata": meta, "contrast_limits": contrast_limits(cube0),
                "axis_labels": ("band", "date", "row", "col"), "colormap": "gray",
                **layer_geometry(cube0.georef, 4)}, "image"),
        (rgb, {"name": f"{stack.name} RGB", "rgb": True, "axis_labels": ("date", "row", "col"),
               "metadata": {"cube": cube0, "stack": stack, "rgb_bands": bands},
               **layer_geometry(cube0.georef, 3)}, "image"),
    ]


def map_layer(path: Path) -> LayerData:
    """A saved 2-D map: Labels for integer maps with few values (masks, ground truth), else an Image."""
    from napari_hsi_anomaly.core.io.readers import read_map

    arr = read_map(path)
    name = path.stem
    georef = map_georef(path)
    meta = {"map": str(path), "georef": georef}
    geometry = layer_geometry(georef, 2)
    if arr.dtype.kind in "biu" and arr.size and arr.min() >= 0 and arr.max() < MAX_LABEL_VALUES:
        return (np.asarray(arr, dtype=np.uint8), {"name": name, "opacity": 0.7, "metadata": meta, **geometry},
                "labels")
    finite = np.asarray(arr, dtype=np.float64)[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo >= 0 and hi <= 1:
        lo, hi = 0.0, 1.0  # a score map in [0, 1]
    elif not hi > lo:
        hi = lo + 1.0
    kwargs = {"name": name, "colormap": "inferno", "contrast_limits": (lo, hi), "metadata": meta, **geometry}
    return np.asarray(arr), kwargs, "image"


def map_georef(path: Path) -> dict:
    """The georeferencing of a saved map (GeoTIFF CRS/transform, ENVI map info), ``{}`` if none: kept
    in the layer's metadata so that saving it again keeps its CRS."""
    from napari_hsi_anomaly.core.io.geotiff import envi_georef, tiff_header

    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            head = tiff_header(path)
            return dict(head["georef"]) if head else {}
        if suffix in (".hdr", ".img"):
            from napari_hsi_anomaly.core.io.envi import find_pair
            from napari_hsi_anomaly.core.io.envi_header import read_header

            return envi_georef(read_header(find_pair(path)[0]))
    except HsiAnomalyError:
        return {}
    return {}
