"""Run by tests/test_fuzz.py in a subprocess: hypothesis examples of random ENVI headers/data, NumPy
arrays and model configs; each must give a cube (or model) or one ``HsiAnomalyError``. Prints
``maxrss_kb=N`` at the end (the parent checks it and the time)."""

from __future__ import annotations

import contextlib
import io
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.io import read_cube

EXAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 40
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
TMP = Path(tempfile.mkdtemp(prefix="hsi-fuzz-"))


def _peak_kb() -> int:
    """This process's peak resident memory in kB: VmHWM (ru_maxrss keeps the forking parent's peak over
    exec on Linux, so a big pytest process would be counted)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cli_ok(argv: list[str]) -> None:
    """The CLI answers 0, or 1 with one line and no internal error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    text = err.getvalue()
    errors = [ln for ln in text.splitlines() if "error" in ln]
    assert rc in (0, 1), (argv, rc, text)
    assert "internal error" not in text and "Traceback" not in text, (argv, text)
    if rc == 1:
        assert len(errors) == 1, (argv, text)


def use_cube(path: Path, **kw) -> None:
    try:
        cube = read_cube(path, **kw)
    except HsiAnomalyError:
        return
    try:  # what every detector does first
        cube.valid_mask()
        cube.as_float32(slice(0, 4), slice(0, 4))
    except HsiAnomalyError:
        pass


NUMBER = st.one_of(st.integers(-3, 40), st.sampled_from(["inf", "nan", "12.7", "1e400", "", "x", "-0",
                                                          "7.0", "99999999999999999999"]))
OPTIONAL = st.one_of(st.none(), NUMBER)


@st.composite
def envi(draw):
    fields = {  # a valid header, then up to three fields replaced by anything
        "samples": draw(st.integers(1, 6)), "lines": draw(st.integers(1, 6)),
        "bands": draw(st.integers(1, 4)),
        "header offset": draw(st.sampled_from([None, 0, 4])),
        "data type": draw(st.sampled_from([1, 2, 3, 4, 5, 6, 9, 12, 13, 14, 15])),
        "byte order": draw(st.sampled_from(["0", "1"])),
        "interleave": draw(st.sampled_from(["bsq", "bil", "bip"])),
        "data ignore value": draw(st.one_of(st.none(), st.integers(0, 3))),
        "reflectance scale factor": None, "wavelength": None, "default bands": None, "band names": None,
    }
    wild = {
        "samples": NUMBER, "lines": NUMBER, "bands": NUMBER,
        "header offset": st.one_of(st.none(), st.sampled_from([0, 4, -1, "z"])),
        "data type": NUMBER, "byte order": st.one_of(st.none(), st.sampled_from(["0", "1", "2", ""])),
        "interleave": st.one_of(st.none(), st.sampled_from(["bsq", "bil", "bip", "", "xyz", "BIL"])),
        "data ignore value": OPTIONAL, "reflectance scale factor": OPTIONAL,
        "wavelength": st.one_of(st.none(), st.lists(NUMBER, max_size=6)),
        "default bands": st.one_of(st.none(), st.lists(NUMBER, max_size=4)),
        "band names": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=5)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(wild)), max_size=3, unique=True)):
        fields[key] = draw(wild[key])
    text = "ENVI\n" + "".join(
        f"{k} = {{{', '.join(map(str, v))}}}\n" if isinstance(v, list) else f"{k} = {v}\n"
        for k, v in fields.items() if v is not None
    )
    try:  # a data file of the size the header asks for (when small), else a random size
        s, ln, b = (int(float(fields[k])) for k in ("samples", "lines", "bands"))
        item = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 6: 8, 9: 16, 12: 2, 13: 4, 14: 8, 15: 8}.get(
            int(float(fields["data type"])), 1)
        offset = fields["header offset"]
        need = s * ln * b * item + (offset if isinstance(offset, int) else 0)
    except (ValueError, OverflowError, TypeError):
        need = -1
    size = need if 0 <= need <= 20000 and draw(st.booleans()) else draw(st.integers(0, 4000))
    data = draw(st.binary(min_size=size, max_size=size)) if size <= 512 else bytes(
        np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8))
    return text, data


@SETTINGS
@given(envi())
def fuzz_envi(case):
    text, data = case
    d = Path(tempfile.mkdtemp(dir=TMP))
    (d / "c.hdr").write_text(text)
    (d / "c.img").write_bytes(data)
    use_cube(d / "c.hdr")
    cli_ok(["info", str(d / "c.hdr")])
    shutil.rmtree(d)


DTYPES = st.sampled_from(["u1", "i2", "u2", "i4", "f4", "f8", "c8", "bool", ">f4", ">u2"])
SHAPES = st.one_of(hnp.array_shapes(min_dims=3, max_dims=3, min_side=2, max_side=7),
                   hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
ARRAYS = st.tuples(DTYPES, SHAPES).flatmap(lambda t: hnp.arrays(np.dtype(t[0]), t[1]))


@SETTINGS
@given(ARRAYS, st.sampled_from([None, "bands-first", "bands-last"]), st.integers(0, 3))
def fuzz_numpy(arr, layout, variant):
    d = Path(tempfile.mkdtemp(dir=TMP))
    if variant == 0:
        path = d / "c.npy"
        np.save(path, arr)
    elif variant == 1:
        path = d / "c.npz"
        np.savez(path, cube=arr, gt=arr[..., 0] if arr.ndim and arr.shape[-1] else arr)
    elif variant == 2:
        path = d / "c.npy"
        np.save(path, arr)
        raw = path.read_bytes()
        path.write_bytes(raw[: max(1, len(raw) // 2)])  # truncated
    else:
        path = d / "c.npz"
        np.savez_compressed(path, other=arr)
    use_cube(path, layout=layout)
    argv = ["--layout", layout] if layout else []
    cli_ok(["info", str(path), *argv])
    cli_ok(["score", str(path), "--method", "rx", "--out", str(d / "s.npy"), *argv])
    if (d / "s.npy").exists():
        cli_ok(["evaluate", "--scores", str(d / "s.npy"), "--gt", str(d / "s.npy")])
    cli_ok(["evaluate", "--scores", str(path), "--gt", str(path)])
    shutil.rmtree(d)


def _base_model() -> Path:
    from napari_hsi_anomaly.core.model import CAE, PRESETS, MinMaxScaler, TrainedModel, save_model

    config = PRESETS["fast"].with_bands(4)
    return save_model(TrainedModel(net=CAE(config), config=config,
                                   scaler=MinMaxScaler(np.zeros(4), np.ones(4))), TMP / "base")


BIG = st.one_of(st.integers(-2, 64), st.sampled_from([0, 10**6, 10**9, 10**12, 4000]), st.floats(),
                st.text(max_size=3), st.none())


@SETTINGS
@given(st.fixed_dictionaries({}, optional={
    "kernels": st.one_of(st.lists(BIG, max_size=3), BIG),
    "kernel_size": BIG,
    "pooling": st.one_of(st.lists(st.lists(BIG, max_size=4), max_size=3), BIG),
    "window": BIG,
    "bands": BIG,
    "bias": st.one_of(st.booleans(), BIG),
    "activation": st.sampled_from(["relu", "nope", 3]),
    "band_policy": st.sampled_from(["pad", "crop", "x"]),
}), st.sampled_from(["dict", "list", "arch-list", "version"]))
def fuzz_model(arch, shape):
    from napari_hsi_anomaly.core.model import load_model

    base = TMP / "base"
    d = Path(tempfile.mkdtemp(dir=TMP)) / "m"
    shutil.copytree(base, d)
    cfg = json.loads((base / "config.json").read_text())
    if shape == "list":
        cfg = [cfg]
    elif shape == "arch-list":
        cfg["architecture"] = list(arch.values())
    elif shape == "version":
        cfg["format_version"] = arch.get("window", 99)
    else:
        cfg["architecture"].update(arch)
    (d / "config.json").write_text(json.dumps(cfg))
    with contextlib.suppress(HsiAnomalyError):
        load_model(d)
    cube = TMP / "cube.npy"
    if not cube.exists():
        np.save(cube, np.random.default_rng(0).random((16, 16, 4), dtype=np.float32))
    cli_ok(["features", str(cube), "--model", str(d), "--out", str(d.parent / "f.npz")])
    shutil.rmtree(d.parent)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    _base_model()
    for fuzz in (fuzz_envi, fuzz_numpy, fuzz_model):
        fuzz()
        print(f"{fuzz.__name__}: ok", flush=True)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"maxrss_kb={_peak_kb()}")
