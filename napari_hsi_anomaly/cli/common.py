"""Helpers shared by the sub-command modules: cube options, checked reading, messages.

Light on purpose (no torch, hdbscan, ...): the checks run before any heavy import.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.guards import check_input_path

LAYOUTS = ("bands-last", "bands-first", "auto")
LAYOUT_HELP = (
    "axis order of .npy/.npz/TIFF arrays: bands-last = (rows, cols, bands), bands-first = "
    "(bands, rows, cols); without it the layout is guessed only where the shape leaves no doubt "
    "(and said so); ENVI files follow their header"
)
KEY_HELP = "array to read from an .npz (default: cube)"


def say(msg: str) -> None:
    """A message on stderr (stdout is for results)."""
    print(msg, file=sys.stderr, flush=True)


def write_results(scores: np.ndarray, cube: Cube, out_path: os.PathLike, mask_path: os.PathLike | None,
                  t_anom: float, what: str) -> None:
    """Write the score map (float32) and, with ``mask_path``, the mask ``scores >= t_anom`` (uint8),
    both georeferenced like ``cube``; one line each on stderr (``what`` says how they were scored)."""
    from napari_hsi_anomaly.core.io import write_map

    scores = np.asarray(scores, dtype=np.float32)
    out = write_map(out_path, scores, like=cube)
    say(f"scores: {out} ({what}, max {float(scores.max()):.3f})")
    if mask_path is not None:
        mask = scores >= t_anom
        m = write_map(mask_path, mask.astype(np.uint8), like=cube)
        say(f"mask: {m} ({int(mask.sum())} pixels >= {t_anom}, {100 * mask.mean():.1f} %)")


BANDS_HELP = ("bands to use, 1-based ranges such as '1-10,12', or 'all' (default: the header's good "
              "bands, without Sentinel-2's atmospheric bands B09 and B10, as the viewer)")


def pick_bands(cube: Cube, spec: str | None, *, model_bands: int | None = None,
               quiet: bool = False) -> np.ndarray | None:
    """0-based band indices to use (None: every band): ``spec`` ranges, ``"all"``, or by default
    ``default_band_selection`` (said on stderr). A ``model_bands`` equal to the cube's band count keeps
    every band by default (a model trained on all of them)."""
    from napari_hsi_anomaly.core.bands import bands_for, format_band_spec

    if not spec and model_bands is not None and model_bands == cube.bands:
        return None
    sel = bands_for(cube, spec)
    if sel is not None and not spec and not quiet:
        left = sorted(set(range(cube.bands)) - set(sel.tolist()))
        names = cube.band_names
        what = ", ".join(str(names[i]) if names is not None else str(i + 1) for i in left)
        say(f"note: {cube.name}: using bands {format_band_spec(sel)} (left out: {what}; --bands all keeps "
            "every band)")
    return sel


def add_cube_options(p: argparse.ArgumentParser, *, fill: bool = False) -> None:
    """``--layout`` and ``--key`` (and ``--no-fill-detect`` for commands that score or train)."""
    p.add_argument("--layout", choices=LAYOUTS, default=None, help=LAYOUT_HELP)
    p.add_argument("--key", default="cube", help=KEY_HELP)
    p.add_argument("--date", type=int, default=None, metavar="K",
                   help="date K (1-based: 1 = the first, as the viewer) of a 4-D stack (dates, rows, "
                   "cols, bands); every cube named on the command line is read at that date")
    p.add_argument("--resolution", type=int, choices=(10, 20, 60), default=60, metavar="M",
                   help="grid in metres of a Sentinel-2 .SAFE folder or .zip: 10, 20 or 60 (default 60)")
    if fill:
        p.add_argument(
            "--no-fill-detect", action="store_true",
            help="do not treat a large border-connected area of identical pixels as no-data fill "
            "(the header's no-data value is always honoured)",
        )


def read_input(path: str, args: argparse.Namespace, what: str = "cube", *, quiet: bool = False) -> Cube:
    """Read a cube after checking the path (exists, regular file); notes and warnings to stderr
    (unless ``quiet``: ``info`` prints them itself)."""
    from napari_hsi_anomaly.core.io import read_cube
    from napari_hsi_anomaly.core.io.safe import is_safe

    check_input_path(path, what, directory=os.path.isdir(os.path.expanduser(path)) and is_safe(path))
    date = date_index(getattr(args, "date", None))
    try:
        cube = read_cube(path, layout=getattr(args, "layout", None), key=getattr(args, "key", "cube"),
                         date=date, resolution=getattr(args, "resolution", 60))
    except HsiAnomalyError as exc:
        if date is not None and "out of range" in str(exc):
            from napari_hsi_anomaly.core.stack import read_stack

            layout = getattr(args, "layout", None)
            n = read_stack(path, layout=layout if layout in ("bands-last", "bands-first") else None).n_dates
            raise type(exc)(f"{os.path.basename(path)} has {n} dates (1-{n}); --date {date + 1} is out "
                            "of range (dates count from 1).") from None
        raise
    for note in [] if quiet else cube.metadata.get("notes", []):
        say(f"note: {cube.name}: {note}")
    for warning in [] if quiet else cube.metadata.get("warnings", []):
        say(f"warning: {warning}")
    return cube


def date_index(value: int | None, option: str = "--date") -> int | None:
    """A 1-based ``--date`` (1 = the first date, as the viewer shows) as the 0-based index readers take."""
    if value is None:
        return None
    if int(value) < 1:
        raise HsiAnomalyError(f"{option} {value}: dates count from 1 (1 = the first date).")
    return int(value) - 1


def check_usable(cube: Cube, args: argparse.Namespace | None = None) -> Cube:
    """Refuse cubes no detector or training can use: no valid pixel, or every valid pixel the same.
    Marks border fill as no-data unless ``--no-fill-detect``."""
    from napari_hsi_anomaly.core.nodata import check_not_constant, count_infinite, mark_fill

    if np.dtype(cube.dtype).kind == "c":
        cube.as_float32(slice(0, 1), slice(0, 1))  # raises the one message for complex data
    check_mask_budget(cube)  # before fill detection, which reads the border (a page per row of a memmap)
    shown = len(cube.metadata.get("notes", []))
    if not (args is not None and getattr(args, "no_fill_detect", False)):
        n = mark_fill(cube)
        if n:
            say(f"note: {cube.name}: {n:,} border pixels identical in every band are treated as "
                "no-data fill (use --no-fill-detect to keep them)")
    count_infinite(cube)  # saturated pixels: counted and reported, scored as no-data
    for note in cube.metadata.get("notes", [])[shown:]:
        say(f"note: {cube.name}: {note}")
    valid = valid_mask_budgeted(cube)
    if not valid.any():
        raise HsiAnomalyError(f"{cube.name}: no valid pixel (every pixel has NaN or no-data in a band).")
    check_not_constant(cube, valid)
    cube.metadata["valid_pixels"] = int(valid.sum())
    return cube


VALID_BLOCK_BYTES = 64 * 1024**2  # file bytes of one row block read by the checks below


def _row_step(cube: Cube) -> int:
    per_row = max(1, cube.bands * cube.cols * np.dtype(cube.dtype).itemsize)
    return max(1, int(VALID_BLOCK_BYTES // per_row))


def check_mask_budget(cube: Cube) -> None:
    """The full-size valid-pixel mask (one byte a pixel) and one row block fit the memory budget, else
    one ``MemoryBudgetError`` line: every command needs far more than this per pixel afterwards."""
    from napari_hsi_anomaly.core.guards import check_allocation

    whole = float(cube.bands) * cube.rows * cube.cols * np.dtype(cube.dtype).itemsize
    block = min(float(VALID_BLOCK_BYTES), whole)
    check_allocation(float(cube.rows) * float(cube.cols) + block,
                     f"{cube.name}: its valid-pixel mask ({cube.rows}x{cube.cols})",
                     hint="crop the cube or score it in tiles")


def valid_mask_budgeted(cube: Cube) -> np.ndarray:
    """``cube.valid_mask()`` built row block by row block (one block of the file in memory, not a
    whole band), after the full-size mask itself is checked against the memory budget: a huge scene
    is refused in one line before anything is allocated (every command then needs far more)."""
    from dataclasses import replace

    check_mask_budget(cube)
    mask = np.empty((cube.rows, cube.cols), dtype=bool)
    step = _row_step(cube)
    for r0 in range(0, cube.rows, step):
        r1 = min(cube.rows, r0 + step)
        fill = None if cube.fill is None else cube.fill[r0:r1]
        mask[r0:r1] = replace(cube, data=cube.data[:, r0:r1], fill=fill, metadata={}).valid_mask()
    return mask


def pixel_count(cube: Cube) -> int:
    return int(cube.rows) * int(cube.cols)


def float32_bytes(cube: Cube, copies: float = 1.0) -> float:
    """Bytes of ``copies`` float32 copies of the cube."""
    return float(copies) * cube.bands * cube.rows * cube.cols * np.dtype(np.float32).itemsize


class LazyChoices:
    """argparse ``choices`` read from a heavy module only when the option is given (give the argument
    a ``metavar``; ``cli.main.HelpFormatter`` keeps ``--help`` from reading them). Choices of an
    optional part that is not installed (``MissingExtraError``, e.g. CAE presets without torch) accept
    any value: the command then says in one line what to install."""

    lazy = True

    def __init__(self, load) -> None:
        self._load, self._items = load, None

    def _get(self) -> tuple:
        if self._items is None:
            self._items = tuple(self._load())
        return self._items

    def __contains__(self, item: object) -> bool:
        from napari_hsi_anomaly.core.errors import MissingExtraError

        try:
            return item in self._get()
        except MissingExtraError:
            return True

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


MODEL_FILES = {"model.safetensors", "config.json"}


def check_model_out(path: str, inputs=()) -> None:
    """``train --out``: a new folder, an empty one, or a model this tool saved (replaced whole); never
    a folder holding other files or one the tool did not write (checked before training, not after)."""
    from napari_hsi_anomaly.core.atomic import check_replaceable
    from napari_hsi_anomaly.core.guards import check_output_dir

    real = check_output_dir(path, inputs=inputs, what="--out")
    check_replaceable(real, ("model",), "--out")
