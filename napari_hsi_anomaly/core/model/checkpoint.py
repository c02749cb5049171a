"""Model directories: ``model.safetensors`` (weights) + ``config.json`` (everything else). No pickle.

``save_model`` writes into a temporary sibling directory and renames it into place, so an existing
model directory is replaced only once the new one is complete (a crash or Ctrl-C leaves the old one).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from napari_hsi_anomaly import __version__
from napari_hsi_anomaly.core import atomic
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ModelError
from napari_hsi_anomaly.core.model.cae import CAE, CAEConfig
from napari_hsi_anomaly.core.model.scaling import MinMaxScaler
from napari_hsi_anomaly.core.model.trained import TrainedModel

FORMAT = "napari-hsi-anomaly/cae"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _layer_sizes(net: CAE) -> dict[str, list[int]]:
    return {name: list(t.shape) for name, t in net.state_dict().items()}


def replaceable(target: Path) -> bool:
    """Saving replaces ``target`` whole: only a missing or empty folder, or a model folder this tool
    wrote and nobody added to (its ownership marker lists everything in it); never a user's files."""
    return atomic.replaceable(target, ("model",))




def model_bytes(model: TrainedModel) -> int:
    """About how many bytes ``save_model`` writes (weights plus the JSON config)."""
    return sum(t.numel() * t.element_size() for t in model.net.state_dict().values()) + 1024**2


def _write(model: TrainedModel, folder: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "architecture": model.config.to_dict(),
        "bands": model.bands,
        "window": model.window,
        "layer_sizes": _layer_sizes(model.net),
        "scaling": model.scaler.to_dict(),
        "training": model.summary,
        "weights_sha256": atomic.file_sha256(folder / WEIGHTS),
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=2, default=_json_default))


def save_model(model: TrainedModel, directory: str | os.PathLike) -> Path:
    """Write ``model`` to ``directory`` atomically (see module docstring); returns the path.

    A save that fails (a full disk) keeps the model in a temporary folder -- beside the target when
    only the final rename failed, else in the system's temporary folder -- and the ``ModelError``
    names it: a trained model is never lost."""
    target = Path(directory)
    try:
        atomic.check_replaceable(target, ("model",), "Saving the model:")
    except atomic.OwnershipError as exc:
        raise ModelError(str(exc)) from None
    try:
        with atomic.atomic_folder(target, "model", keep_on_error=True) as tmp:
            _write(model, tmp)
    except (OSError, SafetensorError) as exc:
        spare = atomic.keep_elsewhere(lambda d: _write(model, d), "model")
        kept = (f"the model is kept in {spare}: move that folder where you want it" if spare is not None
                else "it could not be kept anywhere else either: free some disk space and save again")
        raise ModelError(f"Could not save the model to {target} ({atomic.reason(exc)}); {kept}.") from None
    except HsiAnomalyError as exc:
        raise ModelError(str(exc)) from None
    return target


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def load_model(directory: str | os.PathLike, device: str = "cpu") -> TrainedModel:
    """Read a model directory written by ``save_model``; ``ModelError`` says what is wrong."""
    d = Path(directory)
    if not d.is_dir():
        raise ModelError(f"{d} is not a model directory.")
    for name in (WEIGHTS, CONFIG):
        if not (d / name).is_file():
            raise ModelError(f"{d} is not a complete model directory: {name} is missing.")
    from napari_hsi_anomaly.core.guards import check_model_config
    from napari_hsi_anomaly.core.schema import load_json, validate_model_config

    config = load_json(d / CONFIG, ModelError, "re-save or re-train the model")
    if not isinstance(config, dict):
        raise ModelError(f"{d / CONFIG} is not a model config (a JSON object); the folder is damaged.")
    _check_versions(config, d)
    validate_model_config(config, str(d / CONFIG))
    check_model_config(config, (d / WEIGHTS).stat().st_size, str(d / CONFIG))  # before building anything
    try:
        arch = CAEConfig.from_dict(config["architecture"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ModelError(f"{d / CONFIG}: bad architecture entry ({exc}).") from exc
    _check_plausible(arch, d)
    try:
        scaler = MinMaxScaler.from_dict(config.get("scaling", {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{d / CONFIG}: bad scaling entry ({exc}).") from exc
    if scaler.bands != arch.bands:
        raise ModelError(
            f"{d / CONFIG}: scaling has {scaler.bands} bands but the architecture {arch.bands}."
        )
    digest = config.get("weights_sha256")
    if digest is not None and digest != atomic.file_sha256(d / WEIGHTS):
        raise ModelError(f"{d / WEIGHTS} is damaged or was changed after saving (its checksum differs from "
                         f"{CONFIG}'s weights_sha256); re-save or re-train the model.")
    try:
        tensors = load_file(str(d / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{d / WEIGHTS} cannot be read: {exc}.") from exc
    net = CAE(arch)
    _check_tensors(net, tensors, d)
    net.load_state_dict(tensors)
    net.to(torch.device(device)).eval()
    return TrainedModel(net=net, config=arch, scaler=scaler, summary=dict(config.get("training") or {}))


def _check_plausible(arch: CAEConfig, d: Path) -> None:
    """Before building the network: its weights must fit the memory budget and match the size of
    ``model.safetensors`` (a 2 KB config must not allocate gigabytes)."""
    from napari_hsi_anomaly.core.guards import cae_parameter_count, check_allocation

    params = cae_parameter_count(arch.kernels, arch.kernel_size, arch.bias)
    check_allocation(4.0 * params, f"{d / CONFIG}: a network of {params:,} weights",
                     hint="the config is damaged or not meant for this machine")
    size = (d / WEIGHTS).stat().st_size
    if 2 * params > size:  # at least 2 bytes a weight (float16), whatever the saved precision
        raise ModelError(
            f"{d / CONFIG} describes {params:,} weights (float32: {4 * params:,} bytes) but "
            f"{WEIGHTS} holds only {size:,} bytes: the model folder is damaged (re-save or re-train it)."
        )


def _check_versions(config: dict, d: Path) -> None:
    if config.get("format") != FORMAT:
        raise ModelError(f"{d / CONFIG} is not a napari-hsi-anomaly model (format {config.get('format')!r}).")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelError(
            f"{d} uses model format version {version!r}; this napari-hsi-anomaly "
            f"({__version__}) reads version {FORMAT_VERSION}. Update the package."
        )
    saved = str(config.get("package_version", ""))
    if saved.split(".")[:2] != __version__.split(".")[:2]:
        warnings.warn(
            f"Model {d} was saved by napari-hsi-anomaly {saved or 'unknown'}; this is {__version__}.",
            stacklevel=3,
        )


def _check_tensors(net: CAE, tensors: dict[str, torch.Tensor], d: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise ModelError(
            f"{d / WEIGHTS} does not match its config: missing {missing or 'none'}, "
            f"unexpected {extra or 'none'}."
        )
    bad = [f"{k} {got[k]} (expected {expected[k]})" for k in expected if got[k] != expected[k]]
    if bad:
        raise ModelError(f"{d / WEIGHTS} does not match its config: " + "; ".join(bad) + ".")
