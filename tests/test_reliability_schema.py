"""Issue 19, class 3: profiles and models are contracts. A damaged profile or model is refused with the
field named (``ProfileError`` / ``ModelError``), or gives exactly the intact result -- never a silent
wrong answer, never an internal error. Property-based: hypothesis mutates a good profile and model."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError
from napari_hsi_anomaly.core.profile import ProfileError, iter_fit_profile, load_profile, save_profile
from napari_hsi_anomaly.core.progress import run
from napari_hsi_anomaly.core.schema import MAX_DEPTH, load_json, validate_model_config

BAD_VALUES = [None, 0, -1, 0.0, float("nan"), float("inf"), -float("inf"), "text", [], {}, True, [[[]]],
              10**30]


def _cube(seed: int, rows: int = 24) -> Cube:
    rng = np.random.default_rng(seed)
    data = (1.0 + 0.1 * rng.standard_normal((6, rows, rows))).astype(np.float32)
    data[:, 3:5, 3:5] += 1.5
    return Cube(data, wavelengths=np.linspace(450, 900, 6))


TARGET = _cube(7)


@pytest.fixture(scope="module", params=["rx", "glosh-spectral", "spectral-rx", "spectral-spatial"])
def good(request, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A saved profile and the score map it gives the target."""
    d = tmp_path_factory.mktemp(request.param) / "p"
    scorer = run(iter_fit_profile([_cube(1)], request.param, band_selection=[0, 1, 2, 3, 4, 5]))
    save_profile(scorer, d)
    return d, _score(d)


def _score(d: Path) -> np.ndarray:
    from napari_hsi_anomaly.core.profile import iter_score_profile

    return np.asarray(run(iter_score_profile(load_profile(d), TARGET)).score_map)


def _rehash(d: Path, info: dict) -> None:
    """Keep the arrays checksum right, so the schema itself (not the checksum) must catch the damage."""
    info["arrays_sha256"] = hashlib.sha256((d / "arrays.safetensors").read_bytes()).hexdigest()
    (d / "profile.json").write_text(json.dumps(info))


def _refused_or_equal(d: Path, intact: np.ndarray) -> None:
    try:
        got = _score(d)
    except (ProfileError, ModelError) as exc:
        text = str(exc)
        assert "\n" not in text and str(d) in text, text
        return
    except HsiAnomalyError as exc:  # a clear line from the scorer is fine too, but never a crash
        assert "\n" not in str(exc)
        return
    np.testing.assert_array_equal(got, intact)


def _set(obj: dict, path: list, value) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _json_paths(info: dict) -> list[list]:
    paths = [["detector"], ["params"], ["bands"], ["wavelengths"], ["band_selection"], ["source_bands"],
             ["has_model"], ["references"], ["scorer"], ["scorer", "bands"], ["scorer", "wavelengths"],
             ["params", "p_min"], ["wavelengths", 0], ["band_selection", 0]]
    cal = info["scorer"].get("calibration")
    if cal:
        paths += [["scorer", "calibration", k] for k in ("z0", "quantile", "weights", "kinds", "ranges")]
        paths += [["scorer", "calibration", "ranges", 0], ["scorer", "calibration", "weights", 0]]
        paths += [["scorer", "calibration", k] for k in ("floor", "fusion", "shapes") if k in cal]
        if cal.get("fusion"):  # spectral-spatial: its peaks and spectral floor, on the reference's shapes
            paths += [["scorer", "calibration", "fusion", "peak_weight"],
                      ["scorer", "calibration", "fusion", "spectral_max"],
                      ["scorer", "calibration", "shapes", 0], ["scorer", "calibration", "shapes", 0, 1]]
    for name in info["arrays"]:
        paths += [["arrays", name, "dtype"], ["arrays", name, "shape"], ["arrays", name]]
    return paths


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_profile_json_is_refused_or_harmless(good, tmp_path_factory, data):
    src, intact = good
    d = tmp_path_factory.mktemp("m") / "p"
    shutil.copytree(src, d)
    info = json.loads((d / "profile.json").read_text())
    path = data.draw(st.sampled_from(_json_paths(info)), label="field")
    value = data.draw(st.sampled_from(BAD_VALUES), label="value")
    _set(info, path, value)
    _rehash(d, info)
    _refused_or_equal(d, intact)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_profile_arrays_are_refused_or_harmless(good, tmp_path_factory, data):
    src, intact = good
    d = tmp_path_factory.mktemp("m") / "p"
    shutil.copytree(src, d)
    info = json.loads((d / "profile.json").read_text())
    arrays = {k: v.copy() for k, v in load_file(str(d / "arrays.safetensors")).items()}
    name = data.draw(st.sampled_from(sorted(arrays)), label="array")
    damages = ["nan", "inf", "int8", "float32", "shorter", "shorter+json", "empty+json"]
    how = data.draw(st.sampled_from(damages), label="damage")
    a = arrays[name]
    if how == "shorter+json" and name.rpartition(".")[2] not in ("mean", "whiten", "basis", "steps"):
        return  # a consistent, plausible change to other arrays: only the checksum can tell (tested below)
    if how in ("nan", "inf"):
        if a.dtype.kind != "f" or a.size == 0:
            return
        a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = np.nan if how == "nan" else np.inf
    elif how in ("int8", "float32"):
        arrays[name] = a.astype(how)
    else:
        arrays[name] = a[:0] if how.startswith("empty") else a[:-1]
        if how.endswith("+json"):
            info["arrays"][name]["shape"] = list(arrays[name].shape)
    save_file(arrays, str(d / "arrays.safetensors"))
    _rehash(d, info)
    _refused_or_equal(d, intact)


def test_each_reported_damage_names_its_field(good, tmp_path):
    src, _ = good
    info0 = json.loads((src / "profile.json").read_text())
    cases = {
        "z0": lambda i, a: _set(i, ["scorer", "calibration", "z0"], 0),
        "weights": lambda i, a: _set(i, ["scorer", "calibration", "weights"], [1.0, 1.0, 1.0]),
        "weights of a part": lambda i, a: (_set(i, ["scorer", "calibration", "weights", 0], 0.5)
                                    if len(i["scorer"]["calibration"]["weights"]) > 1 else
                                    _set(i, ["scorer", "calibration", "weights"], [0.5])),
        "band_selection": lambda i, a: _set(i, ["band_selection"], [0] * 6),
        "calib.sample0": lambda i, a: (a.__setitem__("calib.sample0", a["calib.sample0"][:0]),
                                       _set(i, ["arrays", "calib.sample0", "shape"], [0])),
        "p_min": lambda i, a: _set(i, ["params", "p_min"], 10**8),
    }
    if info0["scorer"].get("calibration", {}).get("fusion"):
        cases["shapes"] = lambda i, a: _set(i, ["scorer", "calibration", "shapes", 0], [5, 5])
        cases["peak_weight"] = lambda i, a: _set(i, ["scorer", "calibration", "fusion", "peak_weight"], -1)
        cases["spectral_max"] = lambda i, a: _set(i, ["scorer", "calibration", "fusion", "spectral_max"], 0)
        cases["fusion"] = lambda i, a: _set(i, ["scorer", "calibration", "fusion"], None)
    if "whiten" in info0["arrays"]:
        cases["arrays.whiten"] = lambda i, a: a.__setitem__("whiten", a["whiten"].astype(np.int8))
        cases["arrays.mean"] = lambda i, a: a.__setitem__("mean", np.full_like(a["mean"], np.nan))
        cases["whiten declared"] = lambda i, a: (a.__setitem__("whiten", a["whiten"].astype(np.int8)),
                                                 _set(i, ["arrays", "whiten", "dtype"], "int8"))
    for field, damage in cases.items():
        if field == "p_min" and "p_min" not in info0["params"]:
            continue
        d = tmp_path / field
        shutil.copytree(src, d)
        info = json.loads((d / "profile.json").read_text())
        arrays = dict(load_file(str(d / "arrays.safetensors")))
        damage(info, arrays)
        save_file(arrays, str(d / "arrays.safetensors"))
        _rehash(d, info)
        with pytest.raises(ProfileError, match=field.split(".")[-1].split()[0]):
            load_profile(d)


def test_arrays_changed_after_saving_are_refused_by_checksum(good, tmp_path):
    src, _ = good
    d = tmp_path / "p"
    shutil.copytree(src, d)
    arrays = dict(load_file(str(d / "arrays.safetensors")))
    name = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)
    arrays[name] = arrays[name] * 1.001  # plausible values: only the checksum can tell
    save_file(arrays, str(d / "arrays.safetensors"))
    with pytest.raises(ProfileError, match="checksum"):
        load_profile(d)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    p = tmp_path / "profile.json"
    p.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ProfileError, match="nested"):
        load_json(p, ProfileError, "fit it again")
    nested: object = 1
    for _ in range(MAX_DEPTH + 2):
        nested = [nested]
    p.write_text(json.dumps({"a": nested}))
    with pytest.raises(ProfileError, match="nested"):
        load_json(p, ProfileError, "fit it again")


# --- models ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> tuple[Path, np.ndarray]:
    from napari_hsi_anomaly.core.model import CAE, CAEConfig, MinMaxScaler, TrainedModel, save_model

    cfg = CAEConfig(bands=6, window=8, kernels=(2, 2), pooling=((1, 2, 2), (1, 2, 2)), kernel_size=3)
    model = TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([TARGET], "band"), {"epochs": 1})
    d = save_model(model, tmp_path_factory.mktemp("model") / "m")
    return d, _features(d)


def _features(d: Path) -> np.ndarray:
    from napari_hsi_anomaly.core.model import extract_features, load_model

    return extract_features(load_model(d), TARGET, "pixel").values


def _model_paths(cfg: dict) -> list[list]:
    arch = [["architecture", k] for k in cfg["architecture"]]
    return [*arch, ["architecture", "kernels", 0], ["architecture", "pooling", 0], ["architecture"],
            ["bands"], ["window"], ["scaling"], ["scaling", "lo"], ["scaling", "lo", 0], ["training"],
            ["format_version"]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_model_config_is_refused_or_harmless(model_dir, tmp_path_factory, data):
    src, intact = model_dir
    d = tmp_path_factory.mktemp("mm") / "m"
    shutil.copytree(src, d)
    cfg = json.loads((d / "config.json").read_text())
    path = data.draw(st.sampled_from(_model_paths(cfg)), label="field")
    value = data.draw(st.sampled_from([*BAD_VALUES, [-16, 16], [0], [1.5], 2]), label="value")
    if len(path) > 1 and path[0] == "scaling" and isinstance(value, (int, float)) \
            and not isinstance(value, bool) and math.isfinite(value):
        return  # a plausible scaling constant is indistinguishable from a real one
    _set(cfg, path, value)
    (d / "config.json").write_text(json.dumps(cfg))
    try:
        got = _features(d)
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    except HsiAnomalyError as exc:
        assert "\n" not in str(exc)
        return
    np.testing.assert_array_equal(got, intact)


def test_negative_kernels_name_the_field():
    cfg = {"format": "napari-hsi-anomaly/cae", "format_version": 1,
           "architecture": {"kernels": [-16, 16], "kernel_size": 5, "pooling": [[1, 2, 2], [1, 2, 2]],
                            "bands": 12, "window": 32}}
    with pytest.raises(ModelError, match=r"architecture.kernels\[0\] must be >= 1"):
        validate_model_config(cfg, "config.json")
