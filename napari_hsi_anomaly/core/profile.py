"""Profiles: a fitted normal model (``Scorer``) saved as a folder, never a pickle.

Folder layout::

    PROFILE_DIR/profile.json        format, format version, package version, detector, params, bands,
                                    wavelengths, band selection, reference names, the scorer's meta and
                                    the list of arrays (name, shape, dtype) for checking
    PROFILE_DIR/arrays.safetensors  the scorer's arrays (RX statistics, PCA basis, GLOSH hierarchy, ...)
    PROFILE_DIR/model/              the CAE (``core.model.save_model``) for detectors that use one

Written to a temporary folder beside the target, then renamed (an existing profile is replaced only
once the new one is complete). ``load_profile`` checks everything it reads and raises one
``HsiAnomalyError`` naming the folder and what to do. A loaded scorer scores targets with
``approximate prediction`` against the reference hierarchy, so ``Detection.rescore(p_min)``
re-condenses the reference's hierarchy and ``t_anom`` means what it meant at fit time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly import __version__
from napari_hsi_anomaly.core import atomic
from napari_hsi_anomaly.core.cube import Cube, as_cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError, ShapeError
from napari_hsi_anomaly.core.schema import ProfileError, load_json, validate_profile

FORMAT = "napari-hsi-anomaly-profile"
FORMAT_VERSION = 1
PROFILE_JSON = "profile.json"
ARRAYS = "arrays.safetensors"
MODEL_DIR = "model"
PROFILE_FILES = {PROFILE_JSON, ARRAYS, MODEL_DIR}

__all__ = ["ProfileError", "save_profile", "load_profile", "read_profile_info", "prepare_target",
           "iter_score_profile", "iter_fit_profile", "is_profile", "find_model", "check_profile_p_min"]


def find_model(scorer: Any) -> Any:
    """The CAE a scorer (or one of its parts) uses, or None."""
    for part in [scorer, *getattr(scorer, "parts", lambda: [])()]:
        model = getattr(part, "model", None)
        if model is not None:
            return model
    return None


def is_profile(folder: str | os.PathLike) -> bool:
    return (Path(folder) / PROFILE_JSON).is_file()


def _replaceable(target: Path) -> bool:
    """Only a missing or empty folder, or a profile this tool saved and nobody added to (its ownership
    marker lists everything in it, nested folders included), may be replaced whole."""
    return atomic.replaceable(target, ("profile",))




def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    return str(obj)


def save_profile(scorer: Any, folder: str | os.PathLike, *, band_selection: Sequence[int] | None = None,
                 source_bands: int | None = None, references: Sequence[str] = ()) -> Path:
    """Write ``scorer`` (a fitted ``Scorer``) to ``folder`` atomically; returns the path.

    ``band_selection``: 0-based indices of the bands the scorer was fitted on, out of ``source_bands``
    (targets are cut the same way before scoring); defaults to the scorer's own ``band_selection``.
    ``references``: names of the reference cubes (for the record).
    """
    from safetensors.numpy import save_file

    target = Path(folder).expanduser()
    if target.exists() and not target.is_dir():
        raise ProfileError(f"{target} exists and is not a folder; choose a folder name for the profile.")
    try:
        atomic.check_replaceable(target, ("profile",), "Saving the profile:")
    except atomic.OwnershipError as exc:
        raise ProfileError(str(exc)) from None
    if band_selection is None:
        band_selection = getattr(scorer, "band_selection", None)
        source_bands = source_bands or getattr(scorer, "source_bands", None)
    arrays, meta = scorer.state()
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf":
            raise ProfileError(f"Cannot save the profile: array {k!r} holds {v.dtype} values.")
    model = find_model(scorer)
    wl = scorer.wavelengths
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "detector": scorer.detector,
        "params": dict(scorer.params),
        "bands": int(scorer.bands),
        "wavelengths": None if wl is None else [float(x) for x in np.asarray(wl)],
        "band_selection": None if band_selection is None else [int(i) for i in band_selection],
        "source_bands": None if source_bands is None else int(source_bands),
        "references": [str(r) for r in references],
        "has_model": model is not None,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "scorer": meta,
    }

    def write(d: Path) -> None:
        save_file(arrays, str(d / ARRAYS), metadata={"format": FORMAT})
        info["arrays_sha256"] = atomic.file_sha256(d / ARRAYS)
        if model is not None:
            from napari_hsi_anomaly.core.model import save_model

            save_model(model, d / MODEL_DIR)
        (d / PROFILE_JSON).write_text(json.dumps(info, indent=1, default=_json_default))

    from safetensors import SafetensorError

    try:
        with atomic.atomic_folder(target, "profile", keep_on_error=True) as tmp:
            write(tmp)
    except (OSError, SafetensorError, ModelError) as exc:
        spare = atomic.keep_elsewhere(write, "profile")
        kept = (f"it is kept in {spare}: move that folder where you want it" if spare is not None
                else "it could not be kept anywhere else either: free some disk space and fit again")
        raise ProfileError(f"Could not save the profile to {target} ({atomic.reason(exc)}); "
                           f"{kept}.") from None
    return target


def read_profile_info(folder: str | os.PathLike) -> dict:
    """``profile.json`` checked: present, JSON, our format, a version this package reads."""
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise ProfileError(f"{d} is not a profile folder (it does not exist or is a file); "
                           "write one with `hsi-anomaly fit REF ... --out DIR`.")
    path = d / PROFILE_JSON
    if not path.is_file():
        raise ProfileError(f"{d} is not a complete profile: {PROFILE_JSON} is missing; fit it again.")
    info = load_json(path, ProfileError, "fit the profile again")
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ProfileError(f"{path} is not a napari-hsi-anomaly profile; fit the profile again.")
    version = info.get("format_version")
    if not isinstance(version, int):
        raise ProfileError(f"{path} has no valid format_version; the profile is damaged: fit it again.")
    if version > FORMAT_VERSION:
        raise ProfileError(
            f"{d} was written by napari-hsi-anomaly {info.get('package_version', '?')} (profile format "
            f"{version}); this version ({__version__}) reads format {FORMAT_VERSION} and older: update "
            "napari-hsi-anomaly or fit the profile again with this version."
        )
    for key in ("detector", "params", "bands", "scorer", "arrays"):
        if key not in info:
            raise ProfileError(f"{path} has no '{key}' entry; the profile is damaged: fit it again.")
    validate_profile(info, None, str(path))
    return info


def load_profile(folder: str | os.PathLike, *, target: Cube | None = None) -> Any:
    """The ``Scorer`` saved in ``folder`` (checked against ``target`` when given).

    The scorer carries ``profile_path``, ``band_selection`` and ``source_bands``; score targets through
    ``prepare_target`` (or ``iter_score_profile``) so the profile's band selection is applied.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from napari_hsi_anomaly.core.detectors import get_detector

    d = Path(folder).expanduser()
    info = read_profile_info(d)
    try:
        cls = get_detector(str(info["detector"]))
    except HsiAnomalyError as exc:
        raise ProfileError(f"{d}: {exc} (the profile needs a detector this installation lacks).") from None
    apath = d / ARRAYS
    if not apath.is_file():
        raise ProfileError(f"{d} is not a complete profile: {ARRAYS} is missing; fit it again.")
    digest = info.get("arrays_sha256")
    if digest is not None and digest != atomic.file_sha256(apath):
        raise ProfileError(f"{apath} is damaged or truncated, or was changed after saving (its checksum "
                           f"differs from {PROFILE_JSON}'s arrays_sha256); fit the profile again.")
    _check_arrays_size(info, apath)
    try:
        arrays = load_file(str(apath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ProfileError(f"{apath} is damaged or truncated ({exc}); fit the profile again.") from None
    validate_profile(info, arrays, str(d))
    model = None
    if info.get("has_model"):
        mdir = d / MODEL_DIR
        if not mdir.is_dir():
            raise ProfileError(f"{d} is not a complete profile: its CAE folder '{MODEL_DIR}/' is missing; "
                               "fit it again.")
        from napari_hsi_anomaly.core.model import load_model

        try:
            model = load_model(mdir)
        except ModelError as exc:
            raise ProfileError(f"{d}: its CAE cannot be loaded: {exc}") from None
    try:
        scorer = cls.scorer_class.from_state(arrays, info["scorer"], model=model)  # type: ignore[attr-defined]
    except HsiAnomalyError as exc:
        raise ProfileError(f"{d}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProfileError(f"{d}: the profile is incomplete or damaged ({type(exc).__name__}: {exc}); "
                           "fit it again.") from None
    if getattr(scorer, "detector_class", None) is None:  # its own z0 (and halo), not the default's
        scorer.detector_class = cls
    scorer.profile_path = d
    sel = info.get("band_selection")
    scorer.band_selection = None if sel is None else np.asarray(sel, dtype=np.int64)
    scorer.source_bands = info.get("source_bands")
    scorer.profile_info = info
    if target is not None:
        prepare_target(scorer, target)
    return scorer


def check_profile_p_min(scorer: Any, p_min: int | None, name: str = "--p-min") -> int | None:
    """``p_min`` for scoring with a loaded profile, checked before any scoring: a whole number in
    [2, the reference's fitted rows] (``Detection.rescore`` checks it again)."""
    from napari_hsi_anomaly.core.guards import check_p_min
    from napari_hsi_anomaly.core.schema import fitted_rows

    info = getattr(scorer, "profile_info", None) or {}
    return check_p_min(p_min, fitted_rows(info.get("scorer")), name)


def _check_arrays_size(info: dict, apath: Path) -> None:
    """The arrays a profile declares must fit the memory budget before they are read."""
    from napari_hsi_anomaly.core.guards import check_allocation

    check_allocation(float(apath.stat().st_size), f"The profile arrays {apath}",
                     hint="the profile is too large for this machine")


def _wavelength_text(w: np.ndarray | None) -> str:
    if w is None:
        return "unknown"
    w = np.asarray(w)
    return f"{w.size} bands, {w.min():.0f}-{w.max():.0f} nm"


def prepare_target(scorer: Any, cube: Cube | np.ndarray) -> Cube:
    """``cube`` cut to the scorer's band selection and checked (band count and wavelengths)."""
    cube = as_cube(cube, "Scoring")
    where = getattr(scorer, "profile_path", None)
    label = f"profile {where}" if where is not None else f"the {scorer.detector} normal model"
    sel = getattr(scorer, "band_selection", None)
    if sel is not None and cube.bands != scorer.bands:
        src = getattr(scorer, "source_bands", None)
        if src is not None and cube.bands != int(src):
            raise ShapeError(f"{cube.name} has {cube.bands} bands; {label} was fitted on {scorer.bands} of "
                             f"{src} bands. Score cubes with the reference's bands.")
        cube = cube.select_bands(sel)
    if cube.bands != scorer.bands:
        raise ShapeError(f"{cube.name} has {cube.bands} bands; {label} was fitted on {scorer.bands}. "
                         "Score cubes with the reference's bands.")
    w = scorer.wavelengths
    if w is not None and cube.wavelengths is not None and not np.allclose(
            np.asarray(w, float), cube.wavelengths, atol=0.5, equal_nan=True):
        raise ShapeError(f"{cube.name}: its wavelengths ({_wavelength_text(cube.wavelengths)}) differ from "
                         f"those of {label} ({_wavelength_text(np.asarray(w, float))}). Score cubes with "
                         "the reference's bands.")
    return cube


def iter_score_profile(scorer: Any, cube: Cube | np.ndarray):
    """``scorer.iter_score`` of ``cube`` after ``prepare_target``; yields ``Progress``, returns the
    ``Detection``."""
    target = prepare_target(scorer, cube)
    try:
        det = yield from scorer.iter_score(target)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError) as exc:
        where = getattr(scorer, "profile_path", None) or f"the {scorer.detector} normal model"
        raise ProfileError(f"{where} cannot score {target.name}: its arrays do not fit together "
                           f"({type(exc).__name__}: {exc}); fit the profile again.") from None
    return det


def iter_fit_profile(cubes: Sequence[Cube | np.ndarray], method: str | None = None, *,
                     band_selection: Sequence[int] | None = None, model: Any = None,
                     train_options: Any = None, **params: Any):
    """Fit ``method`` (default: the registry's) on the reference ``cubes`` (cut to ``band_selection``);
    yields ``Progress``, returns the ``Scorer`` ready for ``save_profile``."""
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD, get_detector

    detector = get_detector(method or DEFAULT_METHOD)(**params)
    cubes = [as_cube(c, "Fitting") for c in cubes]
    if not cubes:
        raise HsiAnomalyError("Fitting a profile needs at least one reference cube.")
    source_bands = cubes[0].bands
    if band_selection is not None:
        for i, c in enumerate(cubes[1:], 1):
            if c.bands != source_bands:
                raise ShapeError(f"Reference cube {i + 1} ({c.name}) has {c.bands} bands; the first has "
                                 f"{source_bands}. Give reference cubes with the same bands.")
        cubes = [c.select_bands(band_selection) for c in cubes]
    scorer = yield from detector.iter_fit(cubes, model=model, train_options=train_options)
    scorer.band_selection = None if band_selection is None else np.asarray(band_selection, np.int64)
    scorer.source_bands = source_bands if band_selection is not None else None
    return scorer
