"""Checks made before any heavy work: memory budget, output paths, input files, option ranges.

Every CLI command (and the widgets) calls these first, so a bad option or path is refused in well
under a second with one line naming the file and what to do, instead of after minutes of work or an
allocation that takes the machine down. Only the standard library and NumPy are imported here.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.file_kinds import find_pair, is_safe

BUDGET_ENV = "HSI_ANOMALY_MEMORY_BUDGET"
DEFAULT_FRACTION = 0.5  # of the machine's physical memory
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class MemoryBudgetError(HsiAnomalyError):
    """An allocation sized from user input would exceed the memory budget."""


def human_bytes(n: float) -> str:
    """``1.5 GB``-style text for a byte count."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def parse_size(text: str | int | float) -> int:
    """Bytes from ``"8G"``, ``"512M"``, ``"1.5GB"``, ``"2048"`` (binary units); ``ValueError`` if not."""
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        pattern = r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]?)(?:I?B)?\s*"
        m = re.fullmatch(pattern, str(text).upper())
        if not m:
            raise ValueError(f"not a size: {text!r} (use e.g. 8G, 512M or a byte count)")
        value, unit = float(m.group(1)), m.group(2)
    nbytes = value * _UNITS[unit]
    if not math.isfinite(nbytes) or nbytes <= 0:
        raise ValueError(f"not a positive size: {text!r}")
    return int(nbytes)


def machine_memory() -> int:
    """Physical memory of this machine in bytes (8 GiB if it cannot be found)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        try:
            import psutil

            return int(psutil.virtual_memory().total)
        except Exception:  # noqa: BLE001
            return 8 * 1024**3


def memory_budget() -> int:
    """Bytes one allocation sized from user input may take: ``$HSI_ANOMALY_MEMORY_BUDGET`` (e.g.
    ``8G``) if set, else half the machine's physical memory."""
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        try:
            return parse_size(env)
        except ValueError as exc:
            raise HsiAnomalyError(f"{BUDGET_ENV}={env!r} is not a size ({exc}); use e.g. 8G.") from None
    return int(machine_memory() * DEFAULT_FRACTION)


def check_allocation(nbytes: float, what: str, *, hint: str = "") -> None:
    """Refuse (``MemoryBudgetError``) an allocation of ``nbytes`` above the memory budget.

    ``what`` says what would be allocated (``"a 4096-px training window (fast preset, batch 8)"``);
    ``hint`` what to do instead.
    """
    budget = memory_budget()
    if not math.isfinite(float(nbytes)) or nbytes > budget:
        size = human_bytes(nbytes) if math.isfinite(float(nbytes)) else "an unbounded amount"
        advice = f" {hint[:1].upper()}{hint[1:].rstrip('.')}." if hint else ""
        raise MemoryBudgetError(
            f"{what} needs about {size}, more than the memory budget of {human_bytes(budget)}.{advice}"
            f" (The budget is half the machine's memory; set {BUDGET_ENV}, e.g. 16G, to change it.)"
        )


# ---------------------------------------------------------------------------------------------------
# paths


def _full(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded and symlinks resolved (the file that would really be touched)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def sibling_files(path: str | os.PathLike) -> set[Path]:
    """Every file reading or writing ``path`` touches, resolved: both halves of an ENVI pair."""
    p = Path(path).expanduser()
    out = {_full(p)}
    suffix = p.suffix.lower()
    if suffix == ".hdr":
        for ext in (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ""):
            out.add(_full(p.with_suffix(ext)))
        out.add(_full(p.with_name(p.name[: -len(".hdr")])))
    elif suffix in (".img", ".dat", ".raw", ".bsq", ".bil", ".bip"):
        out.add(_full(p.with_suffix(".hdr")))
        out.add(_full(p.with_name(p.name + ".hdr")))
    return out


def input_files(path: str | os.PathLike) -> set[Path]:
    """The files an input cube really consists of (ENVI header and its data file), resolved."""
    p = Path(path).expanduser()
    if p.suffix.lower() in (".hdr", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip") or not p.suffix:
        try:
            return {_full(f) for f in find_pair(p)} | {_full(p)}
        except HsiAnomalyError:
            pass
    return {_full(p)}


def check_input_path(path: str | os.PathLike, what: str = "input", *, directory: bool = False) -> Path:
    """``path`` expanded; refused unless it exists, is readable and is a regular file (a FIFO or a
    device would hang the reader) or, with ``directory``, a folder."""
    p = Path(path).expanduser()
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise HsiAnomalyError(f"{what} {p} does not exist: check the path.") from None
    except OSError as exc:
        raise HsiAnomalyError(f"{what} {p} cannot be read ({exc.strerror or exc}).") from None
    if directory:
        if not stat.S_ISDIR(st.st_mode):
            raise HsiAnomalyError(f"{what} {p} is not a folder.")
    elif stat.S_ISDIR(st.st_mode):
        if not is_safe(p):  # a Sentinel-2 .SAFE product is a folder
            raise HsiAnomalyError(f"{what} {p} is a folder, not a file: give the file inside it.")
    elif not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise HsiAnomalyError(f"{what} {p} is {kind}: give a regular file (a pipe cannot be read twice).")
    if not os.access(p, os.R_OK | (os.X_OK if directory else 0)):
        raise HsiAnomalyError(f"{what} {p} is not readable: check its permissions.")
    return p


def _check_folder(folder: Path, what: str, shown: Path) -> None:
    if not folder.exists():
        raise HsiAnomalyError(f"{what} {shown}: the folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise HsiAnomalyError(f"{what} {shown}: {folder} is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HsiAnomalyError(f"{what} {shown}: the folder {folder} is not writable; choose another.")


def check_output_path(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    others: Iterable[str | os.PathLike] = (),
    exts: Iterable[str] = (),
    what: str = "--out",
) -> Path:
    """The resolved path a file output will really be written to (through ``~`` and symlinks).

    Refused: an unknown extension (``exts``, lower case with dot; empty = any), a folder missing or not
    writable, an existing folder or special file at ``path``, and a path that is one of the
    ``inputs`` (ENVI header/data pairs included) or one of the ``others`` outputs of the same command.
    """
    shown = Path(path)
    p = Path(path).expanduser()
    exts = tuple(e.lower() for e in exts)
    real = _full(p)
    if real.exists():
        if real.is_dir():
            raise HsiAnomalyError(f"{what} {shown} is an existing folder; give a file name.")
        if not real.is_file():
            raise HsiAnomalyError(f"{what} {shown} exists and is not a regular file; choose another name.")
    if exts and p.suffix.lower() not in exts:
        raise HsiAnomalyError(
            f"{what} {shown}: unknown extension '{p.suffix}'; use one of {', '.join(exts)}."
        )
    _check_folder(real.parent, what, shown)
    mine = sibling_files(real)
    for inp in inputs:
        if mine & input_files(inp):
            raise HsiAnomalyError(
                f"{what} {shown} would overwrite the input {inp}; choose another output name."
            )
    for other in others:
        if mine & sibling_files(other):
            raise HsiAnomalyError(
                f"{what} {shown} is the same file as another output ({other}); give each output its "
                "own name."
            )
    return real


def check_output_dir(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), what: str = "--out"
) -> Path:
    """An output folder (created later if missing): not an existing file, the nearest existing
    folder above it writable, not holding an input. Returns it resolved."""
    shown = Path(path)
    real = _full(path)
    if real.exists() and not real.is_dir():
        raise HsiAnomalyError(f"{what} {shown} exists and is not a folder; give a folder name.")
    probe = real
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise HsiAnomalyError(f"{what} {shown}: the folder {probe} is not writable; choose another.")
    for inp in inputs:
        if real in {_full(inp)}:
            raise HsiAnomalyError(f"{what} {shown} is an input; choose another output folder.")
    return real


FREE_SPACE_SLACK = 16 * 1024**2  # bytes left free besides what is written (file-system metadata)


def free_space(path: str | os.PathLike) -> int:
    """Free bytes on the file system that holds ``path`` (its nearest existing folder)."""
    import shutil

    probe = _full(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(shutil.disk_usage(probe).free)
    except OSError:  # pragma: no cover - cannot tell: do not block the work
        return 2**62


def check_free_space(path: str | os.PathLike, nbytes: float, what: str) -> None:
    """Refuse (``HsiAnomalyError``) to start work whose output (``nbytes``, ``what``) will not fit on
    the disk that holds ``path`` -- before minutes of training or scoring, not after."""
    free = free_space(path)
    if not math.isfinite(float(nbytes)) or nbytes + FREE_SPACE_SLACK > free:
        raise HsiAnomalyError(
            f"{what} needs about {human_bytes(max(float(nbytes), 0.0) + FREE_SPACE_SLACK)} of disk space at "
            f"{Path(path)} but only {human_bytes(free)} is free; free some space or choose another folder."
        )


# ---------------------------------------------------------------------------------------------------
# numbers


def check_number(
    value: float | None,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    exclusive_min: bool = False,
    allow_none: bool = True,
) -> float | int | None:
    """``value`` if finite and in range, else ``HsiAnomalyError`` naming the option and the range."""
    if value is None:
        if allow_none:
            return None
        raise HsiAnomalyError(f"{name} is required.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HsiAnomalyError(f"{name} must be a number; got {value!r}.") from None
    if not math.isfinite(v):
        raise HsiAnomalyError(f"{name} must be a finite number; got {value!r}.")
    if integer and v != int(v):
        raise HsiAnomalyError(f"{name} must be a whole number; got {value!r}.")
    lo_bad = minimum is not None and (v <= minimum if exclusive_min else v < minimum)
    hi_bad = maximum is not None and v > maximum
    if lo_bad or hi_bad:
        lo = "" if minimum is None else (f"> {minimum:g}" if exclusive_min else f">= {minimum:g}")
        hi = "" if maximum is None else f"<= {maximum:g}"
        rng = " and ".join(s for s in (lo, hi) if s)
        raise HsiAnomalyError(f"{name} must be {rng}; got {value!r}.")
    return int(v) if integer else v


def check_threshold(t: float, name: str = "--t-anom") -> float:
    """An anomaly threshold: finite, in [0, 1] (scores are in [0, 1])."""
    return check_number(t, name, minimum=0.0, maximum=1.0, allow_none=False)  # type: ignore[return-value]


def check_p_min(p: int | None, n: int | None = None, name: str = "--p-min") -> int | None:
    """HDBSCAN's minimum cluster size: None (auto) or a whole number in [2, n] (``n`` points)."""
    if p is None:
        return None
    v = check_number(p, name, minimum=2, integer=True)
    if n is not None and v > n:
        raise HsiAnomalyError(
            f"{name} {p} is larger than the {n:,} points to cluster; use at most {n:,} (or leave it "
            "out for the automatic value)."
        )
    return v  # type: ignore[return-value]


def check_min_samples(m: int | None, n: int | None = None, name: str = "--min-samples") -> int | None:
    """HDBSCAN's ``min_samples``: a whole number in [1, n - 1]."""
    if m is None:
        return None
    v = check_number(m, name, minimum=1, integer=True)
    if n is not None and v >= n:
        raise HsiAnomalyError(f"{name} {m} must be smaller than the {n:,} points to cluster.")
    return v  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------
# sizes of the 3-D CAE (arithmetic only: no torch import)


def cae_parameter_count(kernels, kernel_size: int, bias: bool = True) -> int:
    """Weights (and biases) of a ``core.model.cae.CAE`` with these kernels: encoder, mirrored
    decoder, 1-kernel output conv."""
    k3 = int(kernel_size) ** 3
    ks = [int(k) for k in kernels]
    pairs = list(zip([1, *ks[:-1]], ks))  # encoder
    cin = ks[-1] if ks else 1
    for n in reversed(ks):  # decoder
        pairs.append((cin, n))
        cin = n
    pairs.append((cin, 1))  # output
    return sum(a * b * k3 + (b if bias else 0) for a, b in pairs)


def cae_activation_bytes(
    kernels, pooling, bands: int, window: int, batch: int, *, training: bool = True
) -> float:
    """Approximate bytes of the float32 activations of one batch of ``window``-px windows through the
    CAE (kept for the backward pass when ``training``): the conv outputs of every layer, encoder and
    decoder, at their pooled sizes, times 3 (output, activation, gradient) or 2."""
    vol = float(bands) * float(window) ** 2
    elements = vol  # input
    sizes = []
    for k, p in zip(kernels, pooling):
        elements += float(k) * vol
        sizes.append(vol)
        vol /= float(p[0]) * float(p[1]) * float(p[2])
    for k, v in zip(reversed(list(kernels)), reversed(sizes)):
        elements += float(k) * vol + float(k) * v  # conv at the pooled size, then up-sampled
        vol = v
    elements += vol  # output
    return 4.0 * float(batch) * elements * (3.0 if training else 2.0)


def check_cae_size(config, *, window: int, batch: int, training: bool, what: str) -> None:
    """Refuse a CAE run (weights plus one batch of activations) above the memory budget."""
    params = cae_parameter_count(config.kernels, config.kernel_size, config.bias)
    bands = getattr(config, "net_bands", config.bands)
    nbytes = 4.0 * params * (4 if training else 1) + cae_activation_bytes(
        config.kernels, config.pooling, bands, window, batch, training=training
    )
    check_allocation(
        nbytes, f"{what} ({window}-px windows x {bands} bands, batch {batch}, "
        f"{params:,} weights)",
        hint="use a smaller window, crop or batch size",
    )


def check_model_config(config: object, weights_bytes: int, where: str) -> None:
    """A model folder's ``config.json`` (parsed) before any network is built: a JSON object whose
    architecture's weights fit the memory budget and the size of ``model.safetensors``
    (``weights_bytes``). Light (no torch): the CLI calls it before importing the model code."""
    if not isinstance(config, dict) or not isinstance(config.get("architecture", {}), dict):
        raise HsiAnomalyError(f"{where} is not a model config (a JSON object); the folder is damaged.")
    from napari_hsi_anomaly.core.schema import validate_model_config

    validate_model_config(config, where)  # every field named: kernels positive whole numbers, ...
    arch = config.get("architecture", {})
    try:
        kernels = [int(k) for k in arch.get("kernels", (48, 48))]
        size = int(arch.get("kernel_size", 5))
        params = cae_parameter_count(kernels, size, bool(arch.get("bias", False)))
    except (TypeError, ValueError, OverflowError):
        return  # malformed entries: the model loader names them
    if min(kernels, default=1) < 1 or size < 1:
        return
    check_allocation(4.0 * params, f"{where}: a network of {params:,} weights",
                     hint="the config is damaged or not meant for this machine")
    if 2 * params > weights_bytes:  # at least 2 bytes a weight (float16), whatever the precision
        raise HsiAnomalyError(
            f"{where} describes {params:,} weights (float32: {4 * params:,} bytes) but the weights file "
            f"holds only {weights_bytes:,} bytes: the model folder is damaged (re-save or re-train it)."
        )


def precheck_model_dir(directory: str | os.PathLike, what: str = "--model") -> Path:
    """``directory`` is a readable model folder whose config is plausible (``check_model_config``)."""
    d = check_input_path(directory, what, directory=True)
    config_path, weights = d / "config.json", d / "model.safetensors"
    for f in (config_path, weights):
        if not f.is_file():
            raise HsiAnomalyError(f"{what} {d} is not a complete model folder: {f.name} is missing.")
    from napari_hsi_anomaly.core.errors import ModelError
    from napari_hsi_anomaly.core.schema import load_json

    config = load_json(config_path, ModelError, "re-save or re-train the model")
    check_model_config(config, weights.stat().st_size, str(config_path))
    return d
