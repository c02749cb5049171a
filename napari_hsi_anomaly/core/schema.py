"""What a saved profile and a saved model must hold before anything is built from them.

A profile or model folder is a contract, not trusted input: ``validate_profile`` and
``validate_model_config`` check types, ranges, dtypes, shapes (against each other and the band count),
finiteness and index ranges, and refuse with one line naming the field (``ProfileError`` /
``ModelError``). Unknown extra fields are allowed (a later version may add optional fields; add a rule
to ``PROFILE_FIELDS`` for a new one). ``load_json`` reads a JSON file with a size and nesting limit
(deep nesting is a clear error, not a ``RecursionError``). Light: NumPy and the standard library only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError

MAX_JSON_BYTES = 64 * 1024**2
MAX_DEPTH = 32
MAX_Z0 = 100.0  # spreads above the median that score 0.7 (fitted values are 1-3)
MAX_WEIGHT = 1e6  # a part's weight in a combination (the defaults are 0.33-1)
# a combination's part -> the parameter that weighs it in the mean (1 for the others)
PART_WEIGHT_PARAMS = {"rx-local": "local_weight", "attribute": "attribute_weight"}


Fail = Callable[[str], Exception]


class ProfileError(HsiAnomalyError):
    """A profile folder cannot be written, read or applied."""


def _depth(obj: Any) -> int:
    """Nesting depth of parsed JSON (iterative: never a RecursionError)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


def load_json(path: str | os.PathLike, error: type[HsiAnomalyError], hint: str) -> Any:
    """``path`` parsed: at most ``MAX_JSON_BYTES``, valid UTF-8 JSON, nested at most ``MAX_DEPTH``
    deep; else ``error`` naming the file (``hint`` says what to do)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise error(f"{p} is larger than {MAX_JSON_BYTES // 1024**2} MB: not a file this tool wrote; "
                        f"{hint}.")
        obj = json.loads(p.read_text(encoding="utf-8"))
    except RecursionError:
        raise error(f"{p} is nested too deeply to be a file this tool wrote; {hint}.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{p} is damaged (not valid JSON: {exc}); {hint}.") from None
    if _depth(obj) > MAX_DEPTH:
        raise error(f"{p} is nested more than {MAX_DEPTH} levels deep: not a file this tool wrote; {hint}.")
    return obj


# ---------------------------------------------------------------------------------------------------
# small typed checks; each raises ``err(where: field ...)``


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and math.isfinite(float(v))


def _int(v: Any, field: str, fail: Fail, lo: int | None = None,
         hi: int | None = None) -> int:
    if not _is_int(v):
        raise fail(f"{field} must be a whole number; got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = " and ".join(s for s in (f">= {lo}" if lo is not None else "",
                                       f"<= {hi}" if hi is not None else "") if s)
        raise fail(f"{field} must be {rng}; got {v!r}")
    return int(v)


def _num(v: Any, field: str, fail: Fail, *, positive: bool = False,
         lo: float | None = None, hi: float | None = None) -> float:
    if not _is_num(v):
        raise fail(f"{field} must be a finite number; got {v!r}")
    f = float(v)
    if positive and f <= 0:
        raise fail(f"{field} must be > 0; got {v!r}")
    if (lo is not None and f < lo) or (hi is not None and f > hi):
        raise fail(f"{field} must be in [{lo}, {hi}]; got {v!r}")
    return f


def _list(v: Any, field: str, fail: Fail, n: int | None = None) -> list:
    if not isinstance(v, list):
        raise fail(f"{field} must be a list; got {type(v).__name__}")
    if n is not None and len(v) != n:
        raise fail(f"{field} must have {n} entries; got {len(v)}")
    return v


def _dict(v: Any, field: str, fail: Fail) -> dict:
    if not isinstance(v, dict):
        raise fail(f"{field} must be a JSON object; got {type(v).__name__}")
    return v


# ---------------------------------------------------------------------------------------------------
# profiles


def _profile_fail(where: str) -> Callable[[str], ProfileError]:
    return lambda msg: ProfileError(f"{where}: {msg}; the profile is damaged: fit it again.")


def _check_bands(info: dict, fail: Fail) -> int:
    bands = _int(info.get("bands"), "bands", fail, lo=1, hi=100_000)
    wl = info.get("wavelengths")
    if wl is not None:
        for i, w in enumerate(_list(wl, "wavelengths", fail, bands)):
            _num(w, f"wavelengths[{i}]", fail)
    src = info.get("source_bands")
    if src is not None:
        src = _int(src, "source_bands", fail, lo=bands, hi=100_000)
    sel = info.get("band_selection")
    if sel is not None:
        sel = _list(sel, "band_selection", fail, bands)
        if src is None:
            raise fail("band_selection is given without source_bands")
        for i, b in enumerate(sel):
            _int(b, f"band_selection[{i}]", fail, lo=0, hi=src - 1)
        if len(set(sel)) != len(sel):
            raise fail("band_selection repeats a band")
    return bands


def _check_declared(info: dict, arrays: Mapping[str, np.ndarray], fail: Fail) -> None:
    declared = _dict(info.get("arrays"), "arrays", fail)
    if set(declared) != set(arrays):
        missing = sorted(set(declared) - set(arrays))
        extra = sorted(set(arrays) - set(declared))
        raise fail(f"arrays: the file holds other arrays than profile.json lists (missing {missing[:3]}, "
                   f"unlisted {extra[:3]})")
    for name, arr in arrays.items():
        d = _dict(declared[name], f"arrays.{name}", fail)
        shape = _list(d.get("shape"), f"arrays.{name}.shape", fail)
        if list(arr.shape) != shape:
            raise fail(f"arrays.{name}: shape {list(arr.shape)} differs from the declared {shape}")
        if str(d.get("dtype")) != str(arr.dtype):
            raise fail(f"arrays.{name}: dtype {arr.dtype} differs from the declared {d.get('dtype')!r}")
        if arr.dtype.kind not in "biuf":
            raise fail(f"arrays.{name}: {arr.dtype} values are not numbers")
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            raise fail(f"arrays.{name} holds NaN or infinite values")
        if name.rpartition(".")[2] in FLOAT_ARRAYS and arr.dtype.kind != "f":
            raise fail(f"arrays.{name}: {arr.dtype} where floating-point values are due")


# Arrays whose first axis is the band count (by the last part of their name), and square ones.
BAND_AXIS0 = {"mean", "whiten", "basis"}
BAND_AXIS1 = {"fitted", "whiten"}
FLOAT_ARRAYS = BAND_AXIS0 | BAND_AXIS1 | {"steps"}  # statistics: never integers, whatever the JSON says


def _check_band_shapes(arrays: Mapping[str, np.ndarray], bands: int, fail: Fail) -> None:
    for name, arr in arrays.items():
        prefix, _, last = name.rpartition(".")
        if prefix.endswith("pixel_space") or "glosh" in prefix.split("."):
            continue  # CAE-feature / fitted-row space, checked by its own state
        if last in BAND_AXIS0 and (arr.ndim < 1 or arr.shape[0] != bands):
            raise fail(f"arrays.{name}: shape {list(arr.shape)} does not match the {bands} bands")
        if last in BAND_AXIS1 and (arr.ndim != 2 or arr.shape[1] != bands):
            raise fail(f"arrays.{name}: shape {list(arr.shape)} does not match the {bands} bands")
        if last == "steps":
            basis = arrays.get(f"{prefix}.basis" if prefix else "basis")
            if basis is not None and (arr.ndim != 1 or basis.ndim != 2 or arr.shape[0] != basis.shape[1]):
                raise fail(f"arrays.{name}: {list(arr.shape)} does not match the basis {list(basis.shape)}")


def _glosh_metas(meta: Any) -> list[dict]:
    """Every ``glosh`` state meta inside a scorer meta (parts included)."""
    out, stack = [], [meta]
    while stack:
        m = stack.pop()
        if isinstance(m, dict):
            g = m.get("glosh")
            if isinstance(g, dict):
                out.append(g)
            stack.extend(v for k, v in m.items() if k != "glosh")
        elif isinstance(m, list):
            stack.extend(m)
    return out


def _check_calibration(meta: dict, arrays: Mapping[str, np.ndarray], fail: Fail, params: Any = None) -> None:
    cal = meta.get("calibration")
    if cal is None:
        return
    cal = _dict(cal, "scorer.calibration", fail)
    kinds = _list(cal.get("kinds"), "scorer.calibration.kinds", fail)
    if not kinds:
        raise fail("scorer.calibration.kinds is empty")
    for i, k in enumerate(kinds):
        if k not in ("glosh", "fixed"):
            raise fail(f"scorer.calibration.kinds[{i}] must be 'glosh' or 'fixed'; got {k!r}")
    n = len(kinds)
    parts = meta.get("parts")
    own = next((d for d in (meta.get("params"), params) if isinstance(d, dict)), {})  # the scorer's params
    if parts is not None and len(_list(parts, "scorer.parts", fail)) != n:
        raise fail(f"scorer.calibration.kinds has {n} entries for {len(parts)} parts")
    for i, r in enumerate(_list(cal.get("ranges"), "scorer.calibration.ranges", fail, n)):
        lo, hi = (_num(v, f"scorer.calibration.ranges[{i}]", fail)
                  for v in _list(r, f"scorer.calibration.ranges[{i}]", fail, 2))
        if hi < lo:
            raise fail(f"scorer.calibration.ranges[{i}] is reversed ({lo} > {hi})")
    z0 = _num(cal.get("z0"), "scorer.calibration.z0", fail, positive=True)
    if z0 > MAX_Z0:
        raise fail(f"scorer.calibration.z0 must be <= {MAX_Z0:g} (every score would be near 0.1); got {z0:g}")
    _num(cal.get("quantile"), "scorer.calibration.quantile", fail, lo=50.0, hi=100.0)
    weights = cal.get("weights")
    if weights is None:  # saved before weights: every part 1, which the params must agree with
        _check_part_weights([1.0] * n, parts, own, fail)
    else:
        ws = [_num(w, f"scorer.calibration.weights[{i}]", fail, lo=0.0, hi=MAX_WEIGHT)
              for i, w in enumerate(_list(weights, "scorer.calibration.weights", fail, n))]
        if sum(ws) <= 0:
            raise fail("scorer.calibration.weights sum to 0")
        if n == 1 and ws != [1.0]:
            raise fail(f"scorer.calibration.weights must be [1.0] for a single part; got {weights!r}")
        _check_part_weights(ws, parts, own, fail)
    rows = fitted_rows(meta)
    _check_fusion(cal, kinds, rows, fail, own)
    size = None
    for i, kind in enumerate(kinds):
        s = arrays.get(f"calib.sample{i}")
        if s is None:
            raise fail(f"arrays.calib.sample{i} (the calibration sample of part {i}) is missing")
        if s.ndim != 1 or s.size == 0:
            raise fail(f"arrays.calib.sample{i}: the calibration sample is empty or not 1-D")
        if size is not None and s.size != size:
            raise fail(f"arrays.calib.sample{i}: {s.size} values, the other parts' samples {size}")
        size = s.size
        if kind == "glosh":
            if s.dtype.kind not in "iu":
                raise fail(f"arrays.calib.sample{i}: a GLOSH sample holds row numbers, not {s.dtype}")
            if s.min() < 0 or (rows is not None and s.max() >= rows):
                raise fail(f"arrays.calib.sample{i}: row numbers outside the fitted {rows} rows")


def _check_part_weights(ws: list[float], parts: Any, params: dict, fail: Fail) -> None:
    """Each part's weight is its ``PART_WEIGHT_PARAMS`` parameter (1 where it has none), as fitted."""
    if not isinstance(parts, list) or len(parts) != len(ws):
        return
    for i, part in enumerate(parts):
        key = PART_WEIGHT_PARAMS.get(part.get("detector")) if isinstance(part, dict) else None
        want = params.get(key, 1.0) if key else 1.0
        if _is_num(want) and ws[i] != float(want):
            raise fail(f"scorer.calibration.weights[{i}] ({ws[i]:g}) differs from the part's weight "
                       f"({key or 'none: 1'} = {want!r})")


def _check_fusion(cal: dict, kinds: list, rows: int | None, fail: Fail, params: dict) -> None:
    """``floor``, ``fusion`` (spectral-spatial's peaks and spectral floor) and ``shapes`` (the reference
    images, whose GLOSH map the peaks filter): absent in profiles saved before them (whose parameters
    have no ``peak_weight`` or ``spectral_max``), else well-formed."""
    floor = cal.get("floor")
    if floor is not None:
        _num(floor, "scorer.calibration.floor", fail, lo=50.0, hi=100.0)
    fusion = cal.get("fusion")
    if fusion is None:
        if any(_is_num(params.get(k)) and params[k] > 0 for k in ("peak_weight", "spectral_max")):
            raise fail("scorer.calibration.fusion is missing (the parameters ask for peak_weight or "
                       "spectral_max)")
        return
    fusion = _dict(fusion, "scorer.calibration.fusion", fail)
    for key, hi in (("peak_weight", 10.0), ("spectral_max", 100.0)):
        v = _num(fusion.get(key), f"scorer.calibration.fusion.{key}", fail, lo=0.0, hi=hi)
        if _is_num(params.get(key)) and float(params[key]) != v:
            raise fail(f"scorer.calibration.fusion.{key} ({v:g}) differs from params.{key} ({params[key]!r})")
    if "glosh" not in kinds:
        raise fail("scorer.calibration.fusion needs a GLOSH part")
    shapes = _list(cal.get("shapes"), "scorer.calibration.shapes", fail)
    if not shapes:
        raise fail("scorer.calibration.shapes is empty (one [rows, cols] per reference cube)")
    total = 0
    for i, sh in enumerate(shapes):
        r, c = (_int(v, f"scorer.calibration.shapes[{i}]", fail, lo=1, hi=10**6)
                for v in _list(sh, f"scorer.calibration.shapes[{i}]", fail, 2))
        total += r * c
    if rows is not None and total != rows:
        raise fail(f"scorer.calibration.shapes hold {total} pixels, the fitted reference {rows}")


def fitted_rows(meta: Any) -> int | None:
    """The population a profile's GLOSH parts were fitted on (rows of the reference), or None."""
    return max((int(g["n_points"]) for g in _glosh_metas(meta) if _is_int(g.get("n_points"))), default=None)


def _check_p_min(info: dict, meta: dict, fail: Fail) -> None:
    params = _dict(info.get("params"), "params", fail)
    p = params.get("p_min")
    if p is None:
        return
    _int(p, "params.p_min", fail, lo=2, hi=fitted_rows(meta))


def validate_profile(info: Any, arrays: Mapping[str, np.ndarray] | None, where: str) -> None:
    """Refuse (``ProfileError`` naming the field) a ``profile.json`` (parsed) and its arrays that do not
    form a profile this tool could have written. ``arrays=None`` checks the JSON only."""
    fail = _profile_fail(where)
    info = _dict(info, "profile.json", fail)
    det = info.get("detector")
    if not isinstance(det, str) or not det:
        raise fail(f"detector must be a method name; got {det!r}")
    _dict(info.get("params"), "params", fail)
    bands = _check_bands(info, fail)
    if "has_model" in info and not isinstance(info["has_model"], bool):
        raise fail(f"has_model must be true or false; got {info['has_model']!r}")
    refs = info.get("references", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise fail("references must be a list of names")
    meta = _dict(info.get("scorer"), "scorer", fail)
    if "bands" in meta and meta["bands"] != bands:
        raise fail(f"scorer.bands ({meta['bands']!r}) differs from bands ({bands})")
    if "detector" in meta and meta["detector"] != det:
        raise fail(f"scorer.detector ({meta['detector']!r}) differs from detector ({det!r})")
    for i, m in enumerate([meta, *(meta.get("parts") or [])]):
        field = "scorer" if i == 0 else f"scorer.parts[{i - 1}]"
        m = _dict(m, field, fail)
        if "params" in m:
            _dict(m["params"], f"{field}.params", fail)
        if i and "bands" in m and m["bands"] != bands:
            raise fail(f"{field}.bands ({m['bands']!r}) differs from bands ({bands})")
        if m.get("wavelengths") is not None:
            for j, w in enumerate(_list(m["wavelengths"], f"{field}.wavelengths", fail, bands)):
                _num(w, f"{field}.wavelengths[{j}]", fail)
    for i, g in enumerate(_glosh_metas(meta)):
        for key in ("n_points", "n_fit", "dims", "min_samples"):
            if key in g:
                _int(g[key], f"scorer glosh[{i}].{key}", fail, lo=1)
    _check_p_min(info, meta, fail)
    _dict(info.get("arrays"), "arrays", fail)
    if arrays is None:
        return
    _check_declared(info, arrays, fail)
    _check_band_shapes(arrays, bands, fail)
    _check_calibration(meta, arrays, fail, info.get("params"))


# ---------------------------------------------------------------------------------------------------
# models


def validate_model_config(config: Any, where: str) -> None:
    """Refuse (``ModelError`` naming the field) a model ``config.json`` (parsed) whose architecture,
    bands, window or scaling this tool could not have written."""
    def fail(msg: str) -> ModelError:
        return ModelError(f"{where}: {msg}; the model folder is damaged (re-save or re-train it).")

    config = _dict(config, "config.json", fail)
    arch = _dict(config.get("architecture"), "architecture", fail)
    kernels = _list(arch.get("kernels"), "architecture.kernels", fail)
    if not kernels:
        raise fail("architecture.kernels is empty")
    for i, k in enumerate(kernels):
        _int(k, f"architecture.kernels[{i}]", fail, lo=1)  # sizes: the memory budget decides
    size = _int(arch.get("kernel_size", 5), "architecture.kernel_size", fail, lo=1)
    if size % 2 == 0:
        raise fail(f"architecture.kernel_size must be odd; got {size}")
    pooling = _list(arch.get("pooling"), "architecture.pooling", fail, len(kernels))
    for i, p in enumerate(pooling):
        for j, v in enumerate(_list(p, f"architecture.pooling[{i}]", fail, 3)):
            _int(v, f"architecture.pooling[{i}][{j}]", fail, lo=1, hi=64)
    _int(arch.get("bands"), "architecture.bands", fail, lo=1, hi=100_000)
    _int(arch.get("window"), "architecture.window", fail, lo=1, hi=1_000_000)
    if "bias" in arch and not isinstance(arch["bias"], bool):
        raise fail(f"architecture.bias must be true or false; got {arch['bias']!r}")
    for key in ("activation", "output_activation", "band_policy", "preset"):
        if key in arch and not isinstance(arch[key], str):
            raise fail(f"architecture.{key} must be a name; got {arch[key]!r}")
    if "bands" in config:
        _int(config["bands"], "bands", fail, lo=1, hi=100_000)
    if config.get("window") is not None:
        _int(config["window"], "window", fail, lo=1, hi=1_000_000)
    scaling = _dict(config.get("scaling", {}), "scaling", fail)
    if scaling:
        lo = [_num(x, f"scaling.lo[{i}]", fail)
              for i, x in enumerate(_list(scaling.get("lo"), "scaling.lo", fail))]
        hi = [_num(x, f"scaling.hi[{i}]", fail)
              for i, x in enumerate(_list(scaling.get("hi"), "scaling.hi", fail, len(lo)))]
        if not lo:
            raise fail("scaling.lo is empty")
        for i, (a, b) in enumerate(zip(lo, hi)):
            if b < a:
                raise fail(f"scaling.hi[{i}] ({b}) is below scaling.lo[{i}] ({a})")
        if "mode" in scaling and not isinstance(scaling["mode"], str):
            raise fail(f"scaling.mode must be a name; got {scaling['mode']!r}")
    if config.get("training") is not None:
        _dict(config["training"], "training", fail)
