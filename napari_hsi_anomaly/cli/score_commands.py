"""``score``, ``evaluate`` and ``synth`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.cli.common import (
    BANDS_HELP,
    add_cube_options,
    check_usable,
    float32_bytes,
    pick_bands,
    read_input,
    write_results,
)
from napari_hsi_anomaly.cli.detector_options import add_detector_options, given_params, params_from_args
from napari_hsi_anomaly.core.detectors.registry import DEFAULT_METHOD, REGISTRY, detector_names
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``score``, ``evaluate`` and ``synth`` to ``sub``."""
    p = sub.add_parser("score", help="anomaly score map of a cube (float32 in [0, 1])")
    p.add_argument("cube", help="cube file (.hdr/.img, .npy, .npz, .tif)")
    p.add_argument("--model", help="trained model directory (default: train a fast model on the cube)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs when no --model (the other "
                   "training options: as the Model dock's automatic ones)")
    p.add_argument("--method", choices=detector_names(), default=DEFAULT_METHOD,
                   help=f"detector (default {DEFAULT_METHOD})")
    p.add_argument("--t-anom", type=float, default=0.7, help="threshold for --mask-out (default 0.7)")
    p.add_argument("--mask-out", help="also write the mask score >= t-anom here (uint8)")
    p.add_argument("--bands", default=None, metavar="SPEC", help=BANDS_HELP + " (with --profile: the "
                   "profile's bands)")
    p.add_argument("--out", required=True, help="score map (.npy, .tif or .hdr)")
    p.add_argument("--profile", metavar="PROFILE_DIR",
                   help="score against a normal model saved by `hsi-anomaly fit` (--method and its "
                   "options are the profile's; --p-min re-condenses its reference hierarchy)")
    add_cube_options(p, fill=True)
    add_detector_options(p)
    p.set_defaults(func=cmd_score)

    e = sub.add_parser("evaluate", help="TPR, FNR, precision, F-score and AUC of a score map")
    e.add_argument("--scores", required=True, help="score map (.npy or anything read_cube reads)")
    e.add_argument("--gt", required=True, help="ground truth mask (.npy, .npz with key gt, image)")
    e.add_argument("--t-anom", type=float, default=0.7, help="anomaly threshold (default 0.7)")
    e.add_argument("--scores-key", default=None, help="array of an --scores .npz (default: scores)")
    e.add_argument("--gt-key", default=None, help="array of a --gt .npz (default: gt)")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("synth", help="plant synthetic anomalies (thesis recipe) in a cube")
    s.add_argument("cube", help="cube file")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--p-anom", type=float, default=0.05, help="fraction of windows (default 0.05)")
    s.add_argument("--s-anom", type=int, default=20, help="anomaly side in pixels (default 20)")
    s.add_argument("--window", type=int, default=128, help="window size (default 128)")
    add_cube_options(s)
    s.set_defaults(func=cmd_synth)


def _progress(p: Progress) -> None:
    print(f"\r[{p.done}/{p.total}] {p.message}"[:100].ljust(100), end="", file=sys.stderr, flush=True)


def _check_score_args(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Options and paths of ``score``, before anything is read (guards); the resolved outputs."""
    from napari_hsi_anomaly.core.guards import (
        check_input_path,
        check_min_samples,
        check_number,
        check_output_path,
        check_p_min,
        check_threshold,
        precheck_model_dir,
    )
    from napari_hsi_anomaly.core.io.writers import MAP_SUFFIXES

    check_threshold(args.t_anom)
    check_p_min(getattr(args, "param_p_min", None))
    check_min_samples(getattr(args, "param_min_samples", None))
    check_number(args.epochs, "--epochs", minimum=1, integer=True)
    check_input_path(args.cube, "cube")
    if args.model:
        precheck_model_dir(args.model)
    exts = MAP_SUFFIXES + (".img",)
    out = check_output_path(args.out, inputs=[args.cube], exts=exts)
    mask_out = None
    if args.mask_out:
        mask_out = check_output_path(args.mask_out, inputs=[args.cube], others=[out], exts=exts,
                                     what="--mask-out")
    return out, mask_out


def _profile_options(args: argparse.Namespace) -> int | None:
    """With ``--profile`` only ``--p-min`` (a re-condense) of the detector options applies."""
    given = given_params(args)
    p_min = given.pop("p_min", None)
    if given:
        raise HsiAnomalyError(f"--{next(iter(given)).replace('_', '-')} cannot be given with --profile: the "
                              "profile fixes the detector's parameters.")
    for flag, value in (("--bands", args.bands), ("--model", args.model), ("--epochs", args.epochs)):
        if value is not None:
            raise HsiAnomalyError(f"{flag} cannot be given with --profile: the profile fixes the bands, "
                                  "the detector and its CAE.")
    return p_min


def _check_clustering(cube: Any, method: str, params: dict) -> None:
    """A GLOSH-based method on a cube with too few valid pixels: one line naming what fits."""
    from napari_hsi_anomaly.core.guards import check_p_min

    cls = REGISTRY[method]
    if not cls.uses_p_min:
        return
    n = cube.metadata["valid_pixels"]
    check_p_min(params.get("p_min"), n)
    min_samples = cls(**params).params.get("min_samples")
    if min_samples is not None and min_samples >= n:
        raise HsiAnomalyError(
            f"{cube.name} has {n:,} valid pixels, too few to cluster with min_samples {min_samples}: use "
            f"--min-samples {max(1, n - 1)} or less, a larger cube, or a method that does not cluster "
            "(e.g. --method rx).")


def _check_room(cube: Any, out_path: Path, mask_path: Path | None) -> None:
    """The maps must fit on their disks: refused before the scoring, not after (a compressed GeoTIFF
    is counted at a quarter of its raw size)."""
    from napari_hsi_anomaly.core.guards import check_free_space

    for path, itemsize in ((out_path, 4.0), (mask_path, 1.0)):
        if path is not None:
            raw = itemsize * cube.rows * cube.cols
            packed = path.suffix.lower() in (".tif", ".tiff")
            check_free_space(path.parent, raw / 4 if packed else raw, f"Writing {path.name}")


def cmd_score(args: argparse.Namespace) -> int:
    """``score``: one ``core.pipeline`` job (normal: the scene itself or a profile), written here."""
    from napari_hsi_anomaly.core.pipeline import Job, iter_score, train_options_for

    out_path, mask_path = _check_score_args(args)
    p_min = _profile_options(args) if args.profile else None
    params = {} if args.profile else params_from_args(args, args.method)
    cube = read_input(args.cube, args)
    model = train_options = None
    if args.model:
        from napari_hsi_anomaly.core.model import load_model

        model = load_model(args.model)
    if not args.profile:  # a bad --bands is refused before the cube's pixels are read
        sel = pick_bands(cube, args.bands, model_bands=None if model is None else model.bands)
        if sel is not None:
            cube = cube.select_bands(sel)
    cube = check_usable(cube, args)
    if args.profile:
        from napari_hsi_anomaly.core.guards import check_p_min

        check_p_min(p_min, cube.metadata["valid_pixels"])
    else:
        _check_clustering(cube, args.method, params)
        if model is not None:
            model.check_cube(cube)
        elif args.epochs is not None and REGISTRY[args.method].needs_model:
            train_options = train_options_for([cube], params.get("preset", "fast"), epochs=args.epochs)
    _check_room(cube, out_path, mask_path)
    job = Job(args.method, params, profile=args.profile, model=model, train_options=train_options,
              p_min=p_min)
    outcome = run(iter_score(job, cube), _progress)
    print(file=sys.stderr)
    det = outcome.detection
    what = (f"{det.method} against profile {args.profile}" if args.profile else
            f"{det.method}, scored in row blocks" if outcome.plan.blocked else
            f"{det.method}, feature {det.feature}")
    write_results(outcome.score_map, cube, out_path, mask_path, args.t_anom, what)
    return 0


def load_map(path: str | Path, role: str, key: str | None = None) -> np.ndarray:
    """A 2-D map by role (``scores`` or ``gt``): see ``core.io.map_reader.read_map``."""
    from napari_hsi_anomaly.core.io.map_reader import read_map

    return read_map(path, role, key)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.guards import check_threshold

    check_threshold(args.t_anom)
    scores = load_map(args.scores, "scores", args.scores_key).astype(np.float32)
    gt = load_map(args.gt, "gt", args.gt_key)
    from napari_hsi_anomaly.core.scoring.metrics import evaluate

    if scores.shape != gt.shape:
        raise ShapeError(f"scores {scores.shape} and ground truth {gt.shape} differ in shape.")
    m = evaluate(scores, gt, args.t_anom)
    print(f"t_anom     {args.t_anom:g}")
    print(f"TPR        {m.tpr:.4f}")
    print(f"FNR        {m.fnr:.4f}")
    print(f"precision  {m.precision:.4f}")
    print(f"F-score    {m.f_score:.4f}")
    print(f"AUC        {m.auc:.4f}")
    print(f"TP {m.tp}  FP {m.fp}  FN {m.fn}  TN {m.tn}")
    if m.note:
        print(f"note: {m.note}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.atomic import check_may_write, claim, save_npy, save_npz
    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.guards import (
        check_allocation,
        check_free_space,
        check_input_path,
        check_number,
        check_output_dir,
        check_output_path,
    )
    from napari_hsi_anomaly.core.io import write_cube
    from napari_hsi_anomaly.core.synth import plant_anomalies

    check_number(args.seed, "--seed", minimum=0, maximum=2**32 - 1, integer=True)
    check_number(args.p_anom, "--p-anom", minimum=0, maximum=1)
    check_number(args.window, "--window", minimum=4, integer=True)
    check_number(args.s_anom, "--s-anom", minimum=1, maximum=args.window, integer=True)
    check_input_path(args.cube, "cube")
    out_dir = check_output_dir(args.out, inputs=[args.cube])
    name = Path(args.cube).stem
    names = (f"{name}_synth.hdr", f"{name}_synth.img", "gt.npy", "labels.npz")
    if out_dir.is_dir():
        for target in names:
            check_output_path(out_dir / target, inputs=[args.cube])
        check_may_write(out_dir, names)  # a user's own gt.npy is never overwritten
    cube = read_input(args.cube, args)
    check_allocation(float32_bytes(cube, 3), f"Planting anomalies in {cube.name}")
    check_free_space(out_dir, float32_bytes(cube, 1) + 2.0 * cube.rows * cube.cols,
                     f"Writing the planted cube to --out {args.out}")
    if cube.rows < args.window or cube.cols < args.window:
        raise ShapeError(
            f"{cube.name}: the cube ({cube.rows}x{cube.cols}) is smaller than the window ({args.window})."
        )
    data = cube.as_float32()
    planted = plant_anomalies(data, window=args.window, p_anom=args.p_anom, s_anom=args.s_anom,
                              seed=args.seed)
    out = out_dir
    out.mkdir(parents=True, exist_ok=True)
    new = Cube(planted.data.astype(np.float32), wavelengths=cube.wavelengths,
               band_names=cube.band_names, units=cube.units, default_bands=cube.default_bands)
    path = write_cube(out / f"{cube.name}_synth.hdr", new)
    claim(out, [path.name, path.with_suffix(".img").name], "synth")
    save_npy(out / "gt.npy", planted.gt.astype(np.uint8))
    claim(out, ["gt.npy"], "synth")
    save_npz(out / "labels.npz", windows=planted.windows, window_labels=planted.window_labels,
             sections=planted.sections, section_labels=planted.section_labels)
    claim(out, ["labels.npz"], "synth")
    print(f"{path}: {planted.n_anomalies} anomalies of {args.s_anom} px in "
          f"{len(planted.window_labels)} windows; gt.npy, labels.npz in {out}")
    return 0
