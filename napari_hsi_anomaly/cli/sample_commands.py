"""``sample``: write generated multispectral scenes with planted anomalies (and their ground truth)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.atomic import check_may_write, claim, write_text
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.guards import check_allocation, check_free_space, check_number, check_output_dir
from napari_hsi_anomaly.core.scene import default_s_anom, make_scene
from napari_hsi_anomaly.core.scene.files import (
    FORMATS,
    SAMPLE_NAME,
    SAMPLE_SCENE,
    scene_paths,
    write_sample,
    write_scene,
)
from napari_hsi_anomaly.core.synth import band_stats

SCENE_BYTES_PER_PIXEL = 400  # peak while generating one scene (measured 230-345 bytes/px)
THESIS = {"rows": 1830, "cols": 1830, "scenes": 13, "window": 128, "s_anom": 20, "p_anom": 0.05}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _scene_kwargs(args: argparse.Namespace) -> dict:
    return {
        "bands": args.bands,
        "anomalies": not args.no_anomalies,
        "p_anom": args.p_anom,
        "window": args.window,
        "s_anom": args.s_anom,
        "clouds": args.clouds,
        "haze": args.haze,
    }


def _population_stats(args: argparse.Namespace, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Band means/stds over all scenes before planting (a first pass, one scene at a time)."""
    kw = {**_scene_kwargs(args), "anomalies": False}
    n = total = total_sq = 0
    for i, seed in enumerate(seeds):
        _say(f"statistics pass: scene {i + 1}/{len(seeds)} (seed {seed})")
        data = make_scene(args.rows, args.cols, seed=seed, **kw).cube.data
        m, s = band_stats([data])
        count = data.shape[1] * data.shape[2]
        n += count
        total = total + m * count
        total_sq = total_sq + (s**2 + m**2) * count
    means = total / n
    return means, np.sqrt(np.maximum(total_sq / n - means**2, 0.0))


def _check_options(args: argparse.Namespace) -> None:
    check_number(args.rows, "--rows", minimum=8, integer=True)
    check_number(args.cols, "--cols", minimum=8, integer=True)
    check_number(args.scenes, "--scenes", minimum=1, maximum=100_000, integer=True)
    check_number(args.seed, "--seed", minimum=0, maximum=2**31, integer=True)
    check_number(args.window, "--window", minimum=8, integer=True)
    check_number(args.p_anom, "--p-anom", minimum=0, maximum=1)
    check_number(args.s_anom, "--s-anom", minimum=1, integer=True)
    if args.s_anom is not None and args.s_anom > args.window:
        raise HsiAnomalyError(
            f"--s-anom {args.s_anom} does not fit in a {args.window}-px --window; use at most {args.window}."
        )
    check_number(args.clouds, "--clouds", minimum=0, maximum=1)
    check_number(args.haze, "--haze", minimum=0, maximum=1)
    if not args.name or any(c in args.name for c in "/\\\0") or args.name in (".", ".."):
        raise HsiAnomalyError(f"--name {args.name!r} must be a plain file name prefix (no folders).")


def _names(paths: dict[str, Path]) -> list[str]:
    """File names a scene's paths stand for (an ENVI header's data file included)."""
    out = []
    for p in paths.values():
        out.append(p.name)
        if p.suffix == ".hdr":
            out.append(p.with_suffix(".img").name)
    return out


def _sample(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out)
    if args.repo_sample:
        names = _names(scene_paths(out, SAMPLE_NAME))
        check_may_write(out, names)  # never over a user's own files
        paths = write_sample(out)
        claim(out, names, "sample")
        _say(f"wrote the repository sample scene ({SAMPLE_SCENE})")
        print(paths["cube"])
        return 0
    if args.thesis:
        for key, value in THESIS.items():
            setattr(args, key, value)
        args.global_stats = True
    _check_options(args)
    check_allocation(float(args.rows) * args.cols * SCENE_BYTES_PER_PIXEL,
                     f"Generating a {args.rows}x{args.cols} scene", hint="use smaller --rows/--cols")
    if args.s_anom is None:
        args.s_anom = default_s_anom(args.window)
    seeds = list(range(args.seed, args.seed + args.scenes))
    fmt_names = [_names(scene_paths(out, f"{args.name}_{seed:03d}", args.format)) for seed in seeds]
    manifest_name = f"{args.name}_manifest.json"
    check_may_write(out, [n for names in fmt_names for n in names] + [manifest_name])  # before any work
    n_bands = 13 if args.bands == "s2-13" else 12
    itemsize = 4 if (args.float32 or args.format == "npy") else 2
    per_scene = args.rows * args.cols * (n_bands * itemsize + 2)
    _say(
        f"{args.scenes} scene(s) of {args.rows}x{args.cols} px x {n_bands} bands "
        f"({'float32' if itemsize == 4 else 'uint16 x 10000'}): about {_human(per_scene * args.scenes)} "
        f"on disk in {out}"
    )
    check_free_space(out, per_scene * args.scenes, f"--out {args.out}: the scenes")
    if per_scene * args.scenes > 1024**3:
        _say(f"warning: this needs {_human(per_scene * args.scenes)} of free disk space")
    stats = _population_stats(args, seeds) if args.global_stats and not args.no_anomalies else None
    kw = _scene_kwargs(args)
    written = []
    for i, seed in enumerate(seeds):
        _say(f"scene {i + 1}/{len(seeds)} (seed {seed}): generating")
        scene = make_scene(args.rows, args.cols, seed=seed, stats=stats, **kw)
        stem = f"{args.name}_{seed:03d}"
        scale = None if (args.float32 or args.format == "npy") else 10000.0
        paths = write_scene(scene, out, stem, fmt=args.format, scale=scale)
        claim(out, _names(paths), "sample")
        n_anom = scene.planted.n_anomalies if scene.planted is not None else 0
        _say(f"scene {i + 1}/{len(seeds)}: {n_anom} anomalies -> {paths['cube'].name}")
        written.append({"seed": seed, "anomalies": n_anom, **{k: p.name for k, p in paths.items()}})
        print(paths["cube"])
    manifest = {
        "generator": "hsi-anomaly sample",
        "rows": args.rows,
        "cols": args.cols,
        "global_stats": stats is not None,
        **{k: v for k, v in kw.items()},
        "scenes": written,
    }
    write_text(out / manifest_name, json.dumps(manifest, indent=1) + "\n")
    claim(out, [manifest_name], "sample")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``sample``."""
    p = sub.add_parser(
        "sample",
        help="write generated multispectral scenes with planted anomalies and their ground truth",
        description="Generate deterministic Sentinel-2-like mountain scenes (seeds S..S+N-1), plant "
        "thesis-recipe anomalies and write each cube with <name>_<seed>_gt.npy and _classes.npy.",
    )
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--rows", type=int, default=256, help="rows per scene (default 256)")
    p.add_argument("--cols", type=int, default=256, help="columns per scene (default 256)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--scenes", type=int, default=1, help="number of scenes (default 1)")
    p.add_argument("--format", choices=FORMATS, default="envi", help="envi (.hdr/.img) or npy")
    p.add_argument("--name", default="scene", help="file name prefix (default: scene)")
    p.add_argument("--bands", choices=("s2", "s2-13", "s2-l2a"), default="s2", help="band set")
    p.add_argument("--float32", action="store_true", help="ENVI float32 instead of uint16 x 10000")
    p.add_argument("--window", type=int, default=64, help="window size for planting (default 64)")
    p.add_argument("--p-anom", type=float, default=0.05, help="fraction of windows (default 0.05)")
    p.add_argument("--s-anom", type=int, default=None, help="anomaly side (default window*20/128)")
    p.add_argument("--no-anomalies", action="store_true", help="plant nothing")
    p.add_argument("--global-stats", action="store_true", help="band stats over all scenes")
    p.add_argument("--clouds", type=float, default=0.10, help="cloud cover 0-1 (default 0.10)")
    p.add_argument("--haze", type=float, default=0.03, help="haze strength (default 0.03)")
    p.add_argument(
        "--thesis",
        action="store_true",
        help="thesis preset: 13 scenes of 1830x1830, 128-px windows, 20-px anomalies, p_anom 0.05, "
        "global band statistics (about 1 GB as uint16, 2 GB float32)",
    )
    p.add_argument(
        "--repo-sample", action="store_true", help="write exactly the sample scene shipped in sample_data/"
    )
    p.set_defaults(func=_sample)
