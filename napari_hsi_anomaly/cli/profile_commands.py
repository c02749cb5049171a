"""``fit`` (a normal model from reference cubes, saved as a profile) and ``batch`` (many scenes on dask):
thin callers of ``core.pipeline`` and ``core.batch``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import numpy as np

from napari_hsi_anomaly.cli.common import (
    BANDS_HELP,
    LazyChoices,
    add_cube_options,
    check_usable,
    date_index,
    pick_bands,
    read_input,
    say,
)
from napari_hsi_anomaly.cli.detector_options import add_detector_options, given_params, params_from_args
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress, run


def _names() -> list[str]:
    from napari_hsi_anomaly.core.detectors import detector_names

    return detector_names()


def _add_detector_options(p: argparse.ArgumentParser) -> None:
    """``--method``, and one option per declared detector parameter (default None = the detector's)."""
    p.add_argument("--method", choices=LazyChoices(_names), default=None, metavar="M",
                   help="detector (default: the registry's default; see `hsi-anomaly score --help`)")
    add_detector_options(p)


class Bar:
    """A one-line progress bar on stderr: ``[#####.....] 5/13 message``."""

    def __init__(self, width: int = 30) -> None:
        self.width, self.open = width, False

    def __call__(self, p: Progress) -> None:
        if p.values.get("note"):  # a line worth keeping (a clamped worker count, the dashboard)
            self.close()
            say(f"note: {p.values['note']}")
            return
        frac = p.fraction if p.total else 0.0
        n = int(round(frac * self.width))
        text = f"\r[{'#' * n}{'.' * (self.width - n)}] {p.done}/{p.total} {p.message}"
        cols = shutil.get_terminal_size((100, 20)).columns
        sys.stderr.write(text[: max(20, cols - 1)] + "\033[K")
        sys.stderr.flush()
        self.open = True

    def close(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False


def _band_selection(spec: str | None, cube, model=None) -> np.ndarray | None:
    return pick_bands(cube, spec, model_bands=None if model is None else model.bands)


# -- fit --------------------------------------------------------------------------------------------
def _references(args: argparse.Namespace) -> list[tuple[str, argparse.Namespace]]:
    """(path, options) per reference cube: ``--dates 3,4`` expands each stack REF into those dates
    (1-based, as ``--date``)."""
    if not args.dates:
        return [(p, args) for p in args.refs]
    if args.date is not None:
        raise HsiAnomalyError("Give either --date K or --dates K1,K2,..., not both.")
    try:
        dates = [int(t) for t in str(args.dates).replace(" ", "").split(",") if t]
    except ValueError:
        raise HsiAnomalyError(f"--dates must be integers separated by commas, e.g. 3,4; got "
                              f"{args.dates!r}.") from None
    if not dates:
        raise HsiAnomalyError("--dates names no date; give e.g. --dates 3,4.")
    for k in dates:
        date_index(k, "--dates")
    return [(p, argparse.Namespace(**{**vars(args), "date": k})) for p in args.refs for k in dates]


def _exclude_scl(cubes: list) -> list:
    """``--exclude-scl``: each reference without its classified clouds, shadows and water (said on
    stderr); a reference without a scene classification is one clear line."""
    from napari_hsi_anomaly.core.io.safe import exclude_scl, scl_mask

    out = []
    for cube in cubes:
        mask = scl_mask(cube)
        if mask is None:
            raise HsiAnomalyError(f"--exclude-scl: {cube.name or 'a reference'} has no scene classification "
                                  "(only Sentinel-2 L2A products have one).")
        out.append(exclude_scl(cube))
        print(f"note: {cube.name}: {int(mask.sum()):,} classified cloud/shadow/water pixels left out of "
              "the normal population", file=sys.stderr)
    return out


def cmd_fit(args: argparse.Namespace) -> int:
    """``fit``: ``core.pipeline.iter_fit`` on the references, saved as a profile."""
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD, get_detector
    from napari_hsi_anomaly.core.guards import check_input_path, check_number, check_output_dir
    from napari_hsi_anomaly.core.pipeline import Job, iter_fit, train_options_for
    from napari_hsi_anomaly.core.profile import _replaceable

    method = args.method or DEFAULT_METHOD
    cls = get_detector(method)
    params = params_from_args(args, method)
    check_number(args.epochs, "--epochs", minimum=1, integer=True)
    if args.model and (args.epochs is not None or "preset" in params):
        raise HsiAnomalyError("Give either --model DIR or --preset/--epochs (to train a CAE), not both.")
    if (args.model or args.epochs is not None) and not cls.needs_model:
        raise HsiAnomalyError(f"Method {method} uses no CAE: --model/--epochs do not apply.")
    for p in args.refs:
        check_input_path(p, "reference cube")
    if args.model:
        check_input_path(args.model, "--model", directory=True)
    out = check_output_dir(args.out, inputs=args.refs, what="--out")
    if not _replaceable(out):
        raise HsiAnomalyError(f"--out {args.out} holds other files than a saved profile: saving replaces "
                              "the folder whole; choose a new folder name.")
    refs = [(read_input(p, a, "reference cube"), a) for p, a in _references(args)]
    model = train_options = None
    if args.model:
        from napari_hsi_anomaly.core.model import load_model

        model = load_model(args.model)
    selection = _band_selection(args.bands, refs[0][0], model)  # a bad --bands: before pixels are read
    cubes = [check_usable(c, a) for c, a in refs]
    if args.exclude_scl:
        cubes = _exclude_scl(cubes)
    if args.epochs is not None and model is None:
        train_options = train_options_for(cubes, params.get("preset", "fast"), epochs=args.epochs)
    job = Job(method, params, model=model, train_options=train_options)
    bar = Bar()
    t0 = time.perf_counter()
    try:
        scorer = run(iter_fit(job, cubes, band_selection=selection), bar)
    finally:
        bar.close()
    from napari_hsi_anomaly.core.profile import save_profile

    names = [c.name if c.metadata.get("date") is None else f"{c.name}[date {c.metadata['date'] + 1}]"
             for c in cubes]
    path = save_profile(scorer, out, references=names)
    say(f"profile: {path} ({method}, {scorer.bands} bands, {len(cubes)} reference cube(s), "
        f"{time.perf_counter() - t0:.1f} s)")
    return 0


# -- batch ------------------------------------------------------------------------------------------
def cmd_batch(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.batch import expand_inputs, iter_batch
    from napari_hsi_anomaly.core.guards import (
        check_input_path,
        check_number,
        check_output_dir,
        check_threshold,
    )

    check_threshold(args.t_anom)
    check_number(args.workers, "--workers", minimum=1, integer=True)
    check_number(args.worker_timeout, "--worker-timeout", minimum=0, exclusive_min=True)
    date = date_index(args.date)
    if args.profile and args.method:
        raise HsiAnomalyError("Give either --profile DIR or --method M, not both.")
    if args.profile and args.bands:
        raise HsiAnomalyError("--bands cannot be given with --profile: the profile fixes the bands.")
    params: dict = {}
    if args.profile:
        check_input_path(args.profile, "--profile", directory=True)
        from napari_hsi_anomaly.core.profile import read_profile_info

        read_profile_info(args.profile)  # a bad profile fails here, not once per input
        if given_params(args):
            raise HsiAnomalyError("Detector options do not apply with --profile (it holds its own).")
    else:
        from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

        params = params_from_args(args, args.method or DEFAULT_METHOD)
    out = check_output_dir(args.out, inputs=args.inputs, what="--out")
    items = expand_inputs(args.inputs, date=date, out_dir=out)
    if not items:
        raise HsiAnomalyError(f"No input: the names, folders and patterns given match no file outside --out "
                              f"{out} (the batch never reads its own output folder).")
    bar = Bar()
    t0 = time.perf_counter()
    try:
        rows = run(iter_batch(items, out, profile=args.profile, method=args.method, params=params,
                              t_anom=args.t_anom, scheduler=args.scheduler,
                              scheduler_file=args.scheduler_file, workers=args.workers, layout=args.layout,
                              key=args.key, bands=args.bands, fmt=args.format,
                              worker_timeout=args.worker_timeout), bar)
    finally:
        bar.close()
    errors = [r for r in rows if r.get("error")]
    skipped = sum(1 for r in rows if r.get("skipped"))
    for r in errors:
        say(f"error: {r['input']}: {r['error']}")
    say(f"batch: {len(rows) - len(errors)} of {len(rows)} scored ({skipped} already done), "
        f"{len(errors)} error(s), {time.perf_counter() - t0:.1f} s; {out / 'summary.csv'}")
    return 1 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``batch``."""
    f = sub.add_parser("fit", help="fit a normal model (profile) on reference cubes; score others with "
                       "`score --profile`")
    f.add_argument("refs", nargs="+", metavar="REF", help="reference cubes (same bands): what is normal")
    f.add_argument("--out", required=True, metavar="PROFILE_DIR", help="profile folder to write")
    _add_detector_options(f)
    f.add_argument("--model", metavar="DIR", help="a trained CAE (CAE detectors; default: train one)")
    f.add_argument("--epochs", type=int, default=None, help="training epochs when no --model (the other "
                   "training options: as the Model dock's automatic ones)")
    f.add_argument("--dates", default=None, metavar="K1,K2",
                   help="dates of a 4-D stack REF used as references, 1-based, e.g. 3,4 (--date: one date)")
    f.add_argument("--bands", default=None, metavar="SPEC",
                   help=BANDS_HELP + "; targets are cut the same way")
    f.add_argument("--exclude-scl", action="store_true",
                   help="Sentinel-2 L2A: leave the scene classification's clouds, shadows and water out of "
                        "the normal population")
    add_cube_options(f, fill=True)
    f.set_defaults(func=cmd_fit)

    b = sub.add_parser("batch", help="score many cubes (files, folders, globs) on dask.distributed")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="cube files, folders or glob patterns")
    b.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="folder for NAME.scores.EXT, NAME.mask.EXT (NAME: the input's file name), "
                   "summary.csv and manifest.json; nothing in it is ever taken as an input")
    b.add_argument("--profile", metavar="PROFILE_DIR", help="score against this profile (from `fit`)")
    _add_detector_options(b)
    b.add_argument("--format", choices=("npy", "tif", "cog"), default=None,
                   help="maps as .npy, GeoTIFF or cloud-optimised GeoTIFF (default: tif for a "
                   "georeferenced input, else npy)")
    b.add_argument("--t-anom", type=float, default=0.7, help="threshold for masks and summary (default 0.7)")
    b.add_argument("--bands", default=None, metavar="SPEC", help=BANDS_HELP + " (with --profile: the "
                   "profile's bands)")
    b.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing dask scheduler, tcp://host:port (default: a local cluster)")
    b.add_argument("--scheduler-file", metavar="FILE",
                   help="an existing dask scheduler's file (`dask scheduler --scheduler-file FILE`)")
    b.add_argument("--worker-timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for a worker of an existing scheduler (default 60)")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="workers of the local cluster (default: CPU cores, at most 4; never more than "
                   "the CPU cores)")
    add_cube_options(b)
    b.set_defaults(func=cmd_batch)
