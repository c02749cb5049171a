"""``score``, ``evaluate`` and ``synth`` sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.detectors.glosh_cae import FEATURES
from napari_hsi_anomaly.core.detectors.registry import DEFAULT_METHOD, REGISTRY, detector_names
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.progress import Progress, run


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``score``, ``evaluate`` and ``synth`` to ``sub``."""
    p = sub.add_parser("score", help="anomaly score map of a cube (float32 in [0, 1])")
    p.add_argument("cube", help="cube file (.hdr/.img, .npy, .npz, .tif)")
    p.add_argument("--model", help="trained model directory (default: train a fast model on the cube)")
    p.add_argument("--preset", default="fast", help="preset to train when no --model (default fast)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs when no --model")
    p.add_argument("--method", choices=detector_names(), default=DEFAULT_METHOD,
                   help=f"detector (default {DEFAULT_METHOD})")
    p.add_argument("--feature", choices=FEATURES, default="pixel", help="CAE feature for glosh")
    p.add_argument("--p-min", type=int, default=None,
                   help="HDBSCAN minimum cluster size (default: auto = max(100, 1 %% of the pixels) per "
                   "pixel; 100 of 2925 as in the thesis for windows/sections)")
    p.add_argument("--min-samples", type=int, default=10, help="HDBSCAN min_samples (default 10)")
    p.add_argument("--t-anom", type=float, default=0.7, help="threshold for --mask-out (default 0.7)")
    p.add_argument("--mask-out", help="also write the mask score >= t-anom here (uint8)")
    p.add_argument("--out", required=True, help="score map (.npy, .tif or .hdr)")
    p.set_defaults(func=cmd_score)

    e = sub.add_parser("evaluate", help="TPR, FNR, precision, F-score and AUC of a score map")
    e.add_argument("--scores", required=True, help="score map (.npy or anything read_cube reads)")
    e.add_argument("--gt", required=True, help="ground truth mask (.npy, .npz with key gt, image)")
    e.add_argument("--t-anom", type=float, default=0.7, help="anomaly threshold (default 0.7)")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("synth", help="plant synthetic anomalies (thesis recipe) in a cube")
    s.add_argument("cube", help="cube file")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--p-anom", type=float, default=0.05, help="fraction of windows (default 0.05)")
    s.add_argument("--s-anom", type=int, default=20, help="anomaly side in pixels (default 20)")
    s.add_argument("--window", type=int, default=128, help="window size (default 128)")
    s.set_defaults(func=cmd_synth)


def _progress(p: Progress) -> None:
    print(f"\r[{p.done}/{p.total}] {p.message}"[:100].ljust(100), end="", file=sys.stderr, flush=True)


def _check_finite(cube) -> None:
    valid = cube.valid_mask()
    if not valid.any():
        raise HsiAnomalyError(f"{cube.name}: no valid pixel (every pixel has NaN or no-data in a band).")


def cmd_score(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.io import read_cube, write_map

    cube = read_cube(args.cube)
    _check_finite(cube)
    model = train_options = None
    if args.model:
        from napari_hsi_anomaly.core.model import load_model

        model = load_model(args.model)
        model.check_cube(cube)
    elif args.epochs is not None and REGISTRY[args.method].needs_model:
        from napari_hsi_anomaly.core.detectors.glosh_cae import default_train_options

        train_options = default_train_options()
        train_options.epochs = int(args.epochs)
    from napari_hsi_anomaly.core.scoring.detect import iter_detect

    det = run(
        iter_detect(cube, args.method, model=model, feature=args.feature, p_min=args.p_min,
                    min_samples=args.min_samples, train_options=train_options, preset=args.preset),
        _progress,
    )
    print(file=sys.stderr)
    out = write_map(args.out, det.score_map.astype(np.float32), like=cube)
    print(f"scores: {out} ({det.method}, feature {det.feature}, max {det.score_map.max():.3f})",
          file=sys.stderr)
    if args.mask_out:
        mask = det.mask(args.t_anom)
        m = write_map(args.mask_out, mask.astype(np.uint8), like=cube)
        print(f"mask: {m} ({int(mask.sum())} pixels >= {args.t_anom})", file=sys.stderr)
    return 0


def load_map(path: str | Path, what: str) -> np.ndarray:
    """A 2-D array from ``.npy``, ``.npz`` (key ``gt``/``scores`` or the only array) or a cube file."""
    path = Path(path)
    if not path.exists():
        raise HsiAnomalyError(f"{what} file not found: {path}")
    if path.suffix.lower() in (".npy", ".npz"):
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise HsiAnomalyError(f"{path}: cannot read as NumPy ({exc}).") from None
        if isinstance(data, np.lib.npyio.NpzFile):
            keys = [k for k in ("gt", "scores", "mask") if k in data.files] or data.files
            if not keys:
                raise HsiAnomalyError(f"{path}: empty .npz.")
            data = data[keys[0]]
        arr = np.asarray(data)
    else:
        from napari_hsi_anomaly.core.io import read_cube

        cube = read_cube(path)
        if cube.bands != 1:
            raise ShapeError(f"{path}: {what} must have one band; it has {cube.bands}.")
        arr = np.asarray(cube.data[0])
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise ShapeError(f"{path}: {what} must be a 2-D (rows, cols) array; got shape {arr.shape}.")
    return arr


def cmd_evaluate(args: argparse.Namespace) -> int:
    from napari_hsi_anomaly.core.scoring.metrics import evaluate

    scores = load_map(args.scores, "scores").astype(np.float32)
    gt = load_map(args.gt, "ground truth")
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
    from napari_hsi_anomaly.core.cube import Cube
    from napari_hsi_anomaly.core.io import read_cube, write_cube
    from napari_hsi_anomaly.core.synth import plant_anomalies

    cube = read_cube(args.cube)
    if cube.rows < args.window or cube.cols < args.window:
        raise ShapeError(
            f"{cube.name}: the cube ({cube.rows}x{cube.cols}) is smaller than the window ({args.window})."
        )
    data = cube.as_float32()
    planted = plant_anomalies(data, window=args.window, p_anom=args.p_anom, s_anom=args.s_anom,
                              seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    new = Cube(planted.data.astype(np.float32), wavelengths=cube.wavelengths,
               band_names=cube.band_names, units=cube.units, default_bands=cube.default_bands)
    path = write_cube(out / f"{cube.name}_synth.hdr", new)
    np.save(out / "gt.npy", planted.gt.astype(np.uint8))
    np.savez(out / "labels.npz", windows=planted.windows, window_labels=planted.window_labels,
             sections=planted.sections, section_labels=planted.section_labels)
    print(f"{path}: {planted.n_anomalies} anomalies of {args.s_anom} px in "
          f"{len(planted.window_labels)} windows; gt.npy, labels.npz in {out}")
    return 0
