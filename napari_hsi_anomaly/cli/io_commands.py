"""``info`` and ``view`` sub-commands."""

from __future__ import annotations

import argparse
import os
import sys

from napari_hsi_anomaly.cli.common import add_cube_options, read_input
from napari_hsi_anomaly.core.errors import HsiAnomalyError

LAYOUTS = ("bands-last", "bands-first", "auto")


def _info(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.io import describe

    cube = read_input(args.file, args, quiet=True)
    print(describe(cube))
    for note in cube.metadata.get("notes", []):
        print(f"note:         {note}")
    return 0


def display_problem() -> str | None:
    """Why a Qt window cannot open here (None when it can): no X11/Wayland display on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display (DISPLAY and WAYLAND_DISPLAY are unset): run it on a desktop, over ssh -X, or "
            "under a virtual display: xvfb-run -a hsi-anomaly view ...")


def _view(args: argparse.Namespace) -> int:
    if args.file is not None:
        read_input(args.file, args)  # fail here, before any window
    problem = display_problem()
    if problem:
        raise HsiAnomalyError(f"cannot open the viewer: {problem}")
    from napari_hsi_anomaly._launch import launch

    launch(args.file, layout=args.layout, key=args.key)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``info`` and ``view``."""
    info = sub.add_parser("info", help="describe a cube file (shape, bands, wavelengths, ...)")
    info.add_argument("file", help="ENVI .hdr (or its data file), .npy, .npz, .tif/.tiff")
    add_cube_options(info)
    info.set_defaults(func=_info)

    view = sub.add_parser("view", help="open napari with a cube (or the sample scene) and the docks")
    view.add_argument("file", nargs="?", default=None, help="cube file; none: the sample scene")
    add_cube_options(view)
    view.set_defaults(func=_view)
