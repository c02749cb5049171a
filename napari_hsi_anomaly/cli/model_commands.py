"""``train`` and ``features`` sub-commands."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.cli.common import (
    LazyChoices,
    add_cube_options,
    check_model_out,
    check_usable,
    read_input,
)
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.guards import (
    check_allocation,
    check_input_path,
    check_number,
    check_output_path,
    precheck_model_dir,
)
from napari_hsi_anomaly.core.progress import Progress, run


def _presets() -> list[str]:
    from napari_hsi_anomaly.core.model import PRESETS

    return sorted(PRESETS)


def _feature_kinds() -> tuple[str, ...]:
    from napari_hsi_anomaly.core.model import FEATURE_KINDS

    return FEATURE_KINDS


class ProgressLine:
    """A single ``\\r`` status line on stderr, refreshed at most every 0.2 s."""

    def __init__(self, stream=None, every: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.every, self.last, self.open = every, 0.0, False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self.last < self.every and p.done < p.total and p.values.get("phase") != "epoch_end":
            return
        self.last = now
        v = p.values
        parts = [p.message or f"{p.done}/{p.total}", f"{100 * p.fraction:5.1f}%"]
        if v.get("loss") is not None:
            parts.append(f"loss {v['loss']:.5f}")
        if v.get("val_loss") is not None:
            parts.append(f"val {v['val_loss']:.5f}")
        if v.get("windows_per_s"):
            parts.append(f"{v['windows_per_s']:.1f} win/s")
        if v.get("eta") is not None:
            parts.append(f"eta {_hms(v['eta'])}")
        self.stream.write("\r" + "  ".join(parts) + "\033[K")
        self.open = True
        if v.get("phase") == "epoch_end":
            self.stream.write("\n")
            self.open = False
        self.stream.flush()

    def close(self) -> None:
        """End the status line (if one is open), e.g. before an error message."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _check_train_options(args: argparse.Namespace) -> None:
    check_number(args.epochs, "--epochs", minimum=1, integer=True)
    check_number(args.batch_size, "--batch-size", minimum=1, maximum=65536, integer=True)
    check_number(args.lr, "--lr", minimum=0, exclusive_min=True)
    check_number(args.window, "--window", minimum=1, integer=True)
    check_number(args.crop, "--crop", minimum=1, integer=True)
    check_number(args.steps_per_epoch, "--steps-per-epoch", minimum=1, integer=True)
    check_number(args.val_fraction, "--val-fraction", minimum=0, maximum=0.9)
    check_number(args.seed, "--seed", minimum=0, integer=True)
    check_number(args.threads, "--threads", minimum=1, maximum=4096, integer=True)


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    _check_train_options(args)
    for p in args.cubes:
        check_input_path(p, "cube")
    check_model_out(args.out, inputs=args.cubes)
    cubes = [check_usable(read_input(p, args), args) for p in args.cubes]
    if len({c.bands for c in cubes}) > 1:
        raise HsiAnomalyError(
            "All training cubes need the same band count; got "
            + ", ".join(f"{c.name}: {c.bands}" for c in cubes) + "."
        )
    side = max(max(c.rows, c.cols) for c in cubes)
    if args.crop and args.crop > side:
        raise HsiAnomalyError(
            f"--crop {args.crop} is larger than the cube ({side} px at most); use --crop {side} or less."
        )
    from napari_hsi_anomaly.core.guards import check_cae_size
    from napari_hsi_anomaly.core.model import PRESETS, iter_train, save_model
    from napari_hsi_anomaly.core.pipeline import train_options_for

    preset = PRESETS[args.preset]
    if args.window:
        preset = dataclasses.replace(preset, window=args.window)
    options = train_options_for(  # the Model dock's automatic options, then what was given
        cubes, preset, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
        learning_rate=args.lr, seed=args.seed, device=args.device, threads=args.threads,
        val_fraction=args.val_fraction, flips=True if args.flips else None, crop=args.crop,
        steps_per_epoch=args.steps_per_epoch, scaling=args.scaling)
    if args.window and not args.crop:  # an explicit window: the window grid, as the thesis trains
        options = dataclasses.replace(options, crop=None, steps_per_epoch=args.steps_per_epoch)
    side = options.crop or preset.window  # a lower bound before importing torch: input, one map, output
    check_allocation(12.0 * options.batch_size * cubes[0].bands * float(side) ** 2,
                     f"Training on {side}-px windows x {cubes[0].bands} bands, batch {options.batch_size}",
                     hint="use a smaller --window, --crop or --batch-size")
    config = preset.with_bands(cubes[0].bands)
    check_cae_size(config, window=options.crop or config.window, batch=options.batch_size, training=True,
                   what="Training")
    from napari_hsi_anomaly.core.guards import cae_parameter_count, check_free_space

    weights = 4.0 * cae_parameter_count(config.kernels, config.kernel_size, config.bias)
    check_free_space(Path(args.out).expanduser(), weights + 1024**2,  # before minutes of training
                     f"Saving the trained model to --out {args.out}")
    line = ProgressLine()
    try:
        model = run(iter_train(cubes, preset, options), line)  # Ctrl-C here: nothing written yet
    finally:
        line.close()
    out = save_model(model, Path(args.out).expanduser())  # atomic; a failed save keeps it elsewhere
    s = model.summary
    print(
        f"saved {out}: {model.describe()}, {s['windows']} windows in {s['seconds']:.1f} s",
        file=sys.stderr,
    )
    return 0


def _features(args: argparse.Namespace) -> int:
    check_number(args.window, "--window", minimum=1, integer=True)
    check_number(args.batch_size, "--batch-size", minimum=1, maximum=65536, integer=True)
    out = check_output_path(args.out, inputs=[args.cube], exts=(".npy", ".npz"))
    precheck_model_dir(args.model)
    check_input_path(args.cube, "cube")
    if out.suffix.lower() == ".npy":
        stem = out.with_suffix("")
        for extra in (".regions.npy", ".valid.npy"):
            check_output_path(stem.with_name(stem.name + extra), inputs=[args.cube], what="--out (beside)")
    cube = check_usable(read_input(args.cube, args), args)
    from napari_hsi_anomaly.core.guards import check_cae_size
    from napari_hsi_anomaly.core.model import iter_features, load_model

    model = load_model(args.model, device="cuda" if args.device == "cuda" else "cpu")
    model.check_cube(cube)
    window = args.window or model.window
    check_cae_size(model.config, window=window, batch=args.batch_size, training=False,
                   what="Feature extraction")
    if args.feature == "pixel":
        from napari_hsi_anomaly.core.guards import check_allocation, check_free_space
        from napari_hsi_anomaly.core.model.features import PIXEL_GROUPS

        nbytes = 4.0 * cube.rows * cube.cols * model.config.kernels[0] * PIXEL_GROUPS
        check_allocation(nbytes, f"Pixel features of {cube.name}", hint="use a model with fewer kernels")
        check_free_space(out.parent, nbytes, f"Writing the features to --out {out}")
    line = ProgressLine()
    try:
        fs = run(
            iter_features(model, cube, args.feature, batch_size=args.batch_size, window=args.window),
            line,
        )
    finally:
        line.close()
    from napari_hsi_anomaly.core.guards import check_free_space

    check_free_space(out.parent, fs.values.nbytes, f"Writing the features to --out {out}")
    written = write_features(fs, out)
    print(f"{fs.kind}: {fs.n} rows x {fs.dim} features -> {', '.join(map(str, written))}",
          file=sys.stderr)
    return 0


def write_features(fs, out: Path) -> list[Path]:
    """``.npz``: values, regions (if any), valid, image_shape, names. ``.npy``: values, plus
    ``NAME.regions.npy`` (window features) and ``NAME.valid.npy`` beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        arrays = {"values": fs.values, "image_shape": np.array(fs.image_shape, dtype=np.int64),
                  "kind": np.array(fs.kind)}
        if fs.regions is not None:
            arrays["regions"] = fs.regions
        if fs.valid is not None:
            arrays["valid"] = fs.valid
        if fs.names is not None:
            arrays["names"] = np.array(fs.names)
        return [_atomic_save(out, arrays)]
    if out.suffix.lower() != ".npy":
        raise HsiAnomalyError(f"--out must end with .npy or .npz; got {out.name}.")
    written = [_atomic_save(out, fs.values)]
    stem = out.with_suffix("")
    if fs.regions is not None:
        written.append(_atomic_save(stem.with_name(stem.name + ".regions.npy"), fs.regions))
    if fs.valid is not None:
        written.append(_atomic_save(stem.with_name(stem.name + ".valid.npy"), fs.valid))
    return written


def _atomic_save(path: Path, data) -> Path:
    from napari_hsi_anomaly.core.atomic import save_npy, save_npz

    return save_npz(path, **data) if isinstance(data, dict) else save_npy(path, data)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``features``."""
    t = sub.add_parser("train", help="train a 3-D CAE on one or more cubes (same bands)")
    t.add_argument("cubes", nargs="+", metavar="CUBE", help="cube files: the reference population")
    t.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    t.add_argument("--preset", choices=LazyChoices(_presets), default="fast", metavar="PRESET",
                   help="network: fast (light, CPU) or thesis (48 kernels 5x5x5)")
    t.add_argument("--epochs", type=int, default=None,
                   help="default: the automatic training the Model dock uses (scene-adapted: random "
                   "crops, Adam, a fixed amount of work); any option given replaces its part")
    t.add_argument("--batch-size", type=int, default=None, help="default: automatic (4)")
    t.add_argument("--optimizer", choices=("adadelta", "adam"), default=None, help="default: adam")
    t.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1.0 for adadelta, 1e-3 for adam)")
    t.add_argument("--window", type=int, default=None, help="window size (default: the preset's)")
    t.add_argument("--crop", type=int, default=None,
                   help="train on random crops of this size (default: automatic, 32 px at most; "
                   "with --window and no --crop: the window grid)")
    t.add_argument("--steps-per-epoch", type=int, default=None)
    t.add_argument("--flips", action="store_true", help="random horizontal/vertical flips")
    t.add_argument("--scaling", choices=("global", "band"), default="global",
                   help="min-max scaling: one min/max (thesis) or one per band")
    t.add_argument("--val-fraction", type=float, default=None, help="default: automatic (0)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    add_cube_options(t, fill=True)
    t.set_defaults(func=_train)

    f = sub.add_parser("features", help="extract CAE features (f1-f4 per window/section, pixel)")
    f.add_argument("cube", metavar="CUBE")
    f.add_argument("--model", required=True, metavar="MODEL_DIR")
    f.add_argument("--feature", choices=LazyChoices(_feature_kinds), default="pixel", metavar="FEATURE",
                   help="f1-f4 (thesis, per window/section) or pixel (default)")
    f.add_argument("--out", required=True, metavar="FEATURES.npy",
                   help=".npy (regions/valid beside it as NAME.regions.npy, NAME.valid.npy) or .npz")
    f.add_argument("--window", type=int, default=None, help="window for f1-f4 (default: model's)")
    f.add_argument("--batch-size", type=int, default=4)
    f.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    add_cube_options(f, fill=True)
    f.set_defaults(func=_features)
