"""``info`` and ``view`` sub-commands."""

from __future__ import annotations

import argparse

from napari_hsi_anomaly.core.io import LAYOUTS, describe, read_cube

LAYOUT_HELP = (
    "axis order of .npy/.npz/TIFF arrays: bands-last = (rows, cols, bands) (default for NumPy), "
    "bands-first = (bands, rows, cols), auto = guess; ENVI files follow their header"
)


def _info(args: argparse.Namespace) -> int:
    print(describe(read_cube(args.file, layout=args.layout, key=args.key)))
    return 0


def _view(args: argparse.Namespace) -> int:
    if args.file is not None:
        read_cube(args.file, layout=args.layout, key=args.key)  # fail here, before any window
    from napari_hsi_anomaly._launch import launch

    launch(args.file, layout=args.layout, key=args.key)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``info`` and ``view``."""
    info = sub.add_parser("info", help="describe a cube file (shape, bands, wavelengths, ...)")
    info.add_argument("file", help="ENVI .hdr (or its data file), .npy, .npz, .tif/.tiff")
    info.add_argument("--layout", choices=LAYOUTS, default=None, help=LAYOUT_HELP)
    info.add_argument("--key", default="cube", help="array to read from an .npz (default: cube)")
    info.set_defaults(func=_info)

    view = sub.add_parser("view", help="open napari with a cube (or the sample scene) and the docks")
    view.add_argument("file", nargs="?", default=None, help="cube file; none: the sample scene")
    view.add_argument("--layout", choices=LAYOUTS, default=None, help=LAYOUT_HELP)
    view.add_argument("--key", default="cube", help="array to read from an .npz (default: cube)")
    view.set_defaults(func=_view)
