"""Issue 10 / 12 item 5: how fast and how lean bad input is refused, and how fast the CLI starts.

``python benchmarks/bench_guards.py [--skip-big] [--old PATH]``: every reproduction case of issue 10
run as a separate ``hsi-anomaly`` process; its wall time, peak memory (``ru_maxrss`` of that child)
and first error line. Targets: each rejection < 2 s and < 1 GB. Then start-up (``--help``, ``info``)
and, with the real data, the padded abu-airport-1 case (fill detection on and off).
``--old PATH``: a tree of the package before the change (``git archive f69980f napari_hsi_anomaly``)
for the start-up comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, git_head, save_table  # noqa: E402

CACHE = Path(os.environ.get("HSI_BENCH_CACHE", Path(tempfile.gettempdir()) / "hsi-bench-guards"))
SHARED = Path(os.environ.get("HSI_SHARED_DATA", REPO.parent / "shared" / "data"))


def cli(argv: list[str], *, env: dict | None = None, timeout: float = 120) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak MB, stderr) of one ``hsi-anomaly`` process, measured by GNU time (a
    small parent: Linux counts the forking parent's memory in a child's ru_maxrss until it execs)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-o", tf.name, "-f", "%M", sys.executable, "-m",
                              "napari_hsi_anomaly.cli.main", *map(str, argv)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        err = p.stderr.read()
        p.wait()
        timer.cancel()
        secs = time.perf_counter() - t0
        text = Path(tf.name).read_text().split()
    kb = float(text[-1]) if text and text[-1].isdigit() else float("nan")
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("Command exited"))
    return p.returncode, secs, kb / 1024, err


def setup(d: Path, big: bool) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    if not (d / "s64" / "scene_000.hdr").exists():
        cli(["sample", "--rows", "64", "--cols", "64", "--out", d / "s64"])
    paths["C"] = d / "s64" / "scene_000.hdr"
    if big:
        if not (d / "s1830" / "scene_000.hdr").exists():
            cli(["sample", "--rows", "1830", "--cols", "1830", "--out", d / "s1830"], timeout=900)
        paths["BIG"] = d / "s1830" / "scene_000.hdr"
        tif = d / "zlib16000.tif"
        if not tif.exists():  # 16000^2 x 12 uint8 (3 GB) of zeros as zlib tiles: a few MB on disk
            import tifffile

            tile = np.zeros((512, 512), np.uint8)
            tiles = (tile for _ in range(12 * 32 * 32))
            tifffile.imwrite(tif, tiles, shape=(12, 16384, 16384), dtype=np.uint8, tile=(512, 512),
                             compression="zlib", photometric="minisblack", planarconfig="separate")
        paths["TIF"] = tif
    from napari_hsi_anomaly.core.model import CAE, PRESETS, MinMaxScaler, TrainedModel, save_model

    for name, arch in (("kernels4000", {"kernels": [4000, 4000]}), ("kernels1e9", {"kernels": [10**9] * 2}),
                       ("list", None)):
        m = d / f"model-{name}"
        if not m.exists():
            config = PRESETS["fast"].with_bands(12)
            save_model(TrainedModel(net=CAE(config), config=config,
                                    scaler=MinMaxScaler(np.zeros(12), np.ones(12))), m)
            cfg = json.loads((m / "config.json").read_text())
            if arch is None:
                cfg = [cfg]
            else:
                cfg["architecture"].update(arch)
            (m / "config.json").write_text(json.dumps(cfg))
        paths[f"M_{name}"] = m
    (d / "notmodel").mkdir(exist_ok=True)
    (d / "notmodel" / "notes.txt").write_text("keep")
    fifo = d / "x.npy"
    if not fifo.exists():
        os.mkfifo(fifo)
    inf_hdr = d / "inf" / "c.hdr"
    inf_hdr.parent.mkdir(exist_ok=True)
    text = paths["C"].read_text().replace("lines = 64", "lines = inf")
    inf_hdr.write_text(text)
    (d / "inf" / "c.img").write_bytes((d / "s64" / "scene_000.img").read_bytes())
    nan = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    nan[0, 0] = np.nan
    np.save(d / "nan_scores.npy", nan)
    np.save(d / "constant.npy", np.full((64, 64, 12), 3.0, np.float32))
    paths.update(D=d, FIFO=fifo, INF=inf_hdr, GT=d / "s64" / "scene_000_gt.npy")
    paths.update(setup_issue19(d, paths, big))
    return paths


def _zeros_npz(path: Path, member: str, shape: tuple[int, ...]) -> None:
    """An .npz whose ``member`` is a float32 array of zeros of ``shape``, streamed (never in memory)."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    chunk = bytes(64 * 1024**2)
    left = 4 * int(np.prod(shape))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open(member, "w", force_zip64=True) as f:
        f.write(b"\x93NUMPY" + header.getvalue()[6:])
        while left:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))


def setup_issue19(d: Path, p: dict[str, Path], big: bool) -> dict[str, Path]:
    """Inputs of the issue-19 cases: folders holding a user's files, damaged profiles and models,
    maps of unknown meaning, a TIFF with ImageWidth 0, and (big) compressed bombs."""
    import shutil
    import struct

    import tifffile

    from napari_hsi_anomaly.core.model import CAE, PRESETS, MinMaxScaler, TrainedModel, save_model

    out: dict[str, Path] = {}
    config = PRESETS["fast"].with_bands(12)
    model = TrainedModel(net=CAE(config), config=config, scaler=MinMaxScaler(np.zeros(12), np.ones(12)))
    results = d / "i19-results"
    if not (results / "model").exists():
        save_model(model, results / "model")  # the user's CAE in results/model
    neg = d / "i19-model-negative"
    if not neg.exists():
        save_model(model, neg)
        cfg = json.loads((neg / "config.json").read_text())
        cfg["architecture"]["kernels"] = [-16, 16]
        (neg / "config.json").write_text(json.dumps(cfg))
    proj = d / "i19-proj"
    proj.mkdir(exist_ok=True)
    (proj / "config.json").write_text('{"mine": true}')
    for name, files in (("i19-u", {"gt.npy": None}), ("i19-s", {"scene_manifest.json": "mine"})):
        (d / name).mkdir(exist_ok=True)
        for f, text in files.items():
            if text is None:
                np.save(d / name / f, np.full((4, 4), 7, np.uint8))
            else:
                (d / name / f).write_text(text)
    prof = d / "i19-profile-z0"
    if not prof.exists():
        cli(["fit", p["C"], "--method", "rx", "--out", prof])
        info = json.loads((prof / "profile.json").read_text())
        info["scorer"]["calibration"]["z0"] = 0
        (prof / "profile.json").write_text(json.dumps(info))
    gt255 = np.load(p["GT"]).astype(np.uint8) * 255
    np.save(d / "i19-gt255.npy", gt255)
    scores01 = np.random.default_rng(0).random(gt255.shape)
    np.save(d / "i19-scores01.npy", scores01.astype(np.float32))
    np.save(d / "i19-scores255.npy", (scores01 * 255).astype(np.uint8))
    w0 = d / "i19-w0.tif"
    tifffile.imwrite(w0, np.ones((3, 8, 8), np.uint16), planarconfig="separate")
    raw = bytearray(w0.read_bytes())
    with tifffile.TiffFile(w0) as t:
        tag = t.pages[0].tags["ImageWidth"]
        fmt, off = ("<H" if tag.dtype == 3 else "<I"), tag.valueoffset
    struct.pack_into(fmt, raw, off, 0)
    w0.write_bytes(bytes(raw))
    out.update(RESULTS=results, NEG=neg, PROJ=proj, U=d / "i19-u", S=d / "i19-s", PROF=prof,
               GT255=d / "i19-gt255.npy", S255=d / "i19-scores255.npy", W0=w0)
    out.update(setup_leftovers(d, p))
    if big:
        stack, member = d / "i19-stack.npz", d / "i19-member.npz"
        if not stack.exists():  # 3.2 GB of zeros as a date stack, a few MB on disk
            _zeros_npz(stack, "stack.npy", (5, 1024, 1024, 160))
        if not member.exists():  # 4.3 GB of zeros in a member named "cube" (no .npy suffix)
            _zeros_npz(member, "cube", (4096, 4096, 64))
        out.update(STACK=stack, MEMBER=member)
    shutil.rmtree(d / "i19-fit-out", ignore_errors=True)
    return out


def setup_leftovers(d: Path, p: dict[str, Path]) -> dict[str, Path]:
    """Issue-19/21 leftovers: a sparse 200000x200000x10 ENVI scene (400 GB declared, nothing on disk),
    a SAFE zip whose metadata XML inflates to 64 MB, and LZW / ZSTD GeoTIFF score and truth maps."""
    import zipfile

    import rasterio

    sparse = d / "i19-sparse"
    sparse.mkdir(exist_ok=True)
    (sparse / "big.hdr").write_text(
        "ENVI\nsamples = 200000\nlines = 200000\nbands = 10\nheader offset = 0\n"
        "file type = ENVI Standard\ndata type = 1\ninterleave = bsq\nbyte order = 0\n")
    with open(sparse / "big.img", "wb") as fh:
        fh.truncate(10 * 200_000 * 200_000)
    safe = d / "S2A_MSIL1C_i19-mtd.zip"
    if not safe.exists():
        with zipfile.ZipFile(safe, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("S2A_MSIL1C_X.SAFE/MTD_MSIL1C.xml", b"<a>" + b" " * (64 * 1024**2) + b"</a>")
            zf.writestr("S2A_MSIL1C_X.SAFE/GRANULE/G/IMG_DATA/T_B02.jp2", b"x")
    gt = np.load(p["GT"]).astype(np.uint8)
    scores = np.load(d / "i19-scores01.npy")
    for name, arr, comp in (("i21-gt-zstd.tif", gt, "zstd"), ("i21-scores-lzw.tif", scores, "lzw")):
        with rasterio.open(d / name, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                           dtype=arr.dtype.name, compress=comp) as ds:
            ds.write(arr, 1)
    return {"SPARSE": sparse / "big.hdr", "SAFE_MTD": safe, "GT_ZSTD": d / "i21-gt-zstd.tif",
            "S_LZW": d / "i21-scores-lzw.tif"}


def cases(p: dict[str, Path], big: bool) -> list[tuple[str, list]]:
    C, D = p["C"], p["D"]
    out = [
        ("train --crop 1024 (64x64 cube)", ["train", C, "--out", D / "m1", "--crop", "1024"]),
        ("train --window 4096", ["train", C, "--out", D / "m2", "--window", "4096"]),
        ("train --lr nan", ["train", C, "--out", D / "m3", "--lr", "nan"]),
        ("train --steps-per-epoch -1", ["train", C, "--out", D / "m3", "--steps-per-epoch", "-1"]),
        ("train --out a folder that is not a model", ["train", C, "--out", D / "notmodel"]),
        ("config.json kernels [4000, 4000]", ["features", C, "--model", p["M_kernels4000"], "--out",
                                              D / "f.npy"]),
        ("config.json kernels 1e9", ["features", C, "--model", p["M_kernels1e9"], "--out", D / "f.npy"]),
        ("config.json is a JSON list", ["features", C, "--model", p["M_list"], "--out", D / "f.npy"]),
        ("sample --rows 40000 --cols 40000", ["sample", "--rows", "40000", "--cols", "40000", "--out",
                                              D / "huge"]),
        ("score --mask-out scene_000.img (the input)", ["score", C, "--out", D / "s.npy", "--mask-out",
                                                        C.with_suffix(".img")]),
        ("score --out a.npy --mask-out a.npy", ["score", C, "--out", D / "a.npy", "--mask-out", D / "a.npy"]),
        ("score --t-anom 1.5", ["score", C, "--out", D / "s.npy", "--t-anom", "1.5"]),
        ("score constant cube", ["score", D / "constant.npy", "--out", D / "s.npy"]),
        ("ENVI lines = inf", ["info", p["INF"]]),
        ("FIFO x.npy", ["info", p["FIFO"]]),
        ("evaluate NaN scores", ["evaluate", "--scores", D / "nan_scores.npy", "--gt", p["GT"]]),
        # issue 19: nothing lost, nothing silently wrong
        ("i19 fit --out results/ holding only the user's model/", ["fit", C, "--method", "rx", "--out",
                                                                   p["RESULTS"]]),
        ("i19 train --out proj/ holding the user's config.json", ["train", C, "--out", p["PROJ"]]),
        ("i19 synth --out u/ holding the user's gt.npy", ["synth", C, "--out", p["U"], "--window", "32",
                                                         "--s-anom", "4"]),
        ("i19 sample --out s/ holding the user's manifest", ["sample", "--rows", "32", "--cols", "32",
                                                            "--out", p["S"]]),
        ("i19 score --profile with z0 = 0", ["score", C, "--profile", p["PROF"], "--out", D / "s.npy"]),
        ("i19 features: config.json kernels [-16, 16]", ["features", C, "--model", p["NEG"], "--out",
                                                         D / "f.npy"]),
        ("i19 evaluate gt 0/255", ["evaluate", "--scores", D / "i19-scores01.npy", "--gt", p["GT255"]]),
        ("i19 evaluate uint8 scores 0..255", ["evaluate", "--scores", p["S255"], "--gt", p["GT"]]),
        ("i19 synth constant cube", ["synth", D / "constant.npy", "--out", D / "i19-flat", "--window", "32",
                                    "--s-anom", "4"]),
        ("i19 info TIFF ImageWidth 0", ["info", p["W0"]]),
        ("i19 score sparse 200000x200000x10 ENVI (400 GB declared)", ["score", p["SPARSE"], "--method", "rx",
                                                                     "--out", D / "s.npy"]),
        ("i19 info SAFE zip, metadata XML 64 MB inflated", ["info", p["SAFE_MTD"]]),
        ("i19/i21 evaluate LZW GeoTIFF scores vs ZSTD truth (exit 0)", ["evaluate", "--scores", p["S_LZW"],
                                                                         "--gt", p["GT_ZSTD"]]),
    ]
    if big:
        B = p["BIG"]
        out += [
            ("1830^2: score --out no/such/dir/s.npy", ["score", B, "--out", D / "no/such/dir/s.npy"]),
            ("1830^2: score --p-min 1", ["score", B, "--out", D / "s.npy", "--p-min", "1"]),
            ("1830^2: score --min-samples 0", ["score", B, "--out", D / "s.npy", "--min-samples", "0"]),
            ("1830^2: score --out s.txt", ["score", B, "--out", D / "s.txt"]),
            ("1830^2: score --p-min 4000000", ["score", B, "--out", D / "s.npy", "--p-min", "4000000"]),
            ("zlib TIFF 16384^2 x 12 uint8, budget 1G", ["info", p["TIF"]]),
            ("i19 .npz stack 3.2 GB of zeros, budget 1G", ["info", p["STACK"], "--date", "0"]),
            ("i19 .npz member 'cube' (no .npy) 4.3 GB, budget 1G", ["info", p["MEMBER"]]),
        ]
    return out


def startup(C: Path, old: str | None, runs: int = 7) -> list[str]:
    rows = []
    for label, argv in (("--help", ["--help"]), ("info 64x64 ENVI", ["info", C])):
        for tree, pythonpath in (("this commit", None), ("before (f69980f)", old)):
            if tree.startswith("before") and not old:
                continue
            env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
            res = [cli(argv, env=env) for _ in range(runs)]
            secs = [r[1] for r in res]
            rows.append(f"| `hsi-anomaly {label}` | {tree} | {statistics.median(secs):.2f} | "
                        f"{min(secs):.2f} | {max(r[2] for r in res):.0f} |")
    return rows


def padded_airport(d: Path) -> list[str]:
    src = SHARED / "hsi-ad" / "abu-airport-1.npz"
    if not src.exists():
        return [f"(skipped: {src} not found)"]
    with np.load(src) as z:
        cube = z["cube"]
    pad = np.zeros((200, 200, cube.shape[2]), cube.dtype)
    pad[50:150, 50:150] = cube
    path = d / "airport-padded.npy"
    np.save(path, pad)
    frame = np.ones((200, 200), bool)
    frame[50:150, 50:150] = False
    rows = []
    for method in ("glosh-spectral", "rx", "spectral-rx"):
        for opts in ([], ["--no-fill-detect"]):
            rc, secs, mb, err = cli(["score", path, "--method", method, "--out", d / "air.npy", *opts],
                                    timeout=900)
            if rc:
                rows.append(f"| {method} | {' '.join(opts) or 'on'} | error: {err.strip()[-120:]} |")
                continue
            s = np.load(d / "air.npy")
            rows.append(f"| {method} | {' '.join(opts) or 'fill detection on (default)'} | "
                        f"{int((s >= 0.7).sum()):,} | {int((s[frame] >= 0.7).sum()):,} | "
                        f"{float(s[frame].mean()):.3f} | {secs:.1f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-big", action="store_true", help="no 1830^2 scene, no 3 GB TIFF")
    ap.add_argument("--old", default=None, help="package tree before the change, for start-up")
    ap.add_argument("--skip-airport", action="store_true")
    args = ap.parse_args()
    big = not args.skip_big
    load = os.getloadavg()
    p = setup(CACHE, big)
    lines = [
        "# Guards: rejections and start-up (issue 10, issue 12 item 5)", "",
        f"`python benchmarks/bench_guards.py` at {git_head()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} at the start (other jobs share the machine). Each row is a separate `hsi-anomaly` "
        "process: wall time from start to exit (Python start-up included) and its peak resident memory.", "",
        "| case | exit | seconds | peak MB | message (start) |", "|---|---|---|---|---|",
    ]
    for name, argv in cases(p, big):
        env = {**os.environ}
        if "budget 1G" in name or name.startswith("i19"):
            env["HSI_ANOMALY_MEMORY_BUDGET"] = "1G"
        rc, secs, mb, err = cli(argv, env=env)
        msg = err.strip().splitlines()[-1] if err.strip() else ""
        msg = msg.split("error: ", 1)[-1][:90].replace("|", "/")
        lines.append(f"| {name} | {rc} | {secs:.2f} | {mb:.0f} | {msg} |")
    lines += ["", "## Start-up", "", f"{7} runs each; load average {os.getloadavg()[0]:.1f}.", "",
              "| command | tree | median s | min s | peak MB |", "|---|---|---|---|---|"]
    lines += startup(p["C"], args.old)
    if not args.skip_airport:
        lines += ["", "## abu-airport-1 padded to 200x200 with zeros (issue 10)", "",
                  "| method | option | flagged >= 0.7 | of them fill | mean fill score | seconds |",
                  "|---|---|---|---|---|---|"]
        lines += padded_airport(p["D"])
    save_table("bench_guards", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
