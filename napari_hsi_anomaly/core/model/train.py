"""Training (thesis phase 1): a CAE on the windows of one or more cubes, as a progress generator.

``iter_train`` yields a ``Progress`` after every optimisation step (closing the generator stops
training within one step) and once more at each epoch end with the validation loss; it returns a
``TrainedModel``. Training writes no files. Deterministic on CPU for a given seed and thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from napari_hsi_anomaly import __version__
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model.cae import CAE, CAEConfig, get_config
from napari_hsi_anomaly.core.model.dataset import (
    WindowRef,
    grid_windows,
    load_batch,
    masked_mse,
    random_windows,
)
from napari_hsi_anomaly.core.model.device import resolve_device, torch_threads
from napari_hsi_anomaly.core.model.scaling import MinMaxScaler
from napari_hsi_anomaly.core.model.trained import TrainedModel
from napari_hsi_anomaly.core.progress import Progress, run

OPTIMIZERS = ("adadelta", "adam")


@dataclass
class TrainOptions:
    """Training settings. ``learning_rate=None``: 1.0 for Adadelta (Keras), 1e-3 for Adam.

    ``crop``: train on random square crops of this size (a multiple of the spatial pooling) instead
    of the fixed window grid, e.g. 32 for a single small scene; an epoch then has as many crops as
    the crop-size grid has windows (or ``steps_per_epoch * batch_size``). ``max_windows`` caps the
    training windows of the grid. ``threads=None`` uses every CPU core. ``channels_last`` trains in
    the ``channels_last_3d`` memory format (measured 1.6-2x faster on a 2-core CPU).
    ``init_output_bias`` starts the output bias at the data mean (presets with bias only).
    ``noise``: standard deviation of Gaussian noise added to the scaled input (denoising; the target
    stays clean). ``trim``: after the first ``warmup`` fraction of the steps, the ``trim`` fraction of
    worst-reconstructed valid pixels of each batch is left out of the loss, so rare targets are not
    learnt. ``auto_train_options`` picks all of these from a cube's size and band count.
    """

    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "adadelta"
    learning_rate: float | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    val_fraction: float = 0.1
    flips: bool = False
    crop: int | None = None
    steps_per_epoch: int | None = None
    max_windows: int | None = None
    scaling: str = "global"
    channels_last: bool = True
    init_output_bias: bool = True
    noise: float = 0.0
    trim: float = 0.0
    warmup: float = 0.3

    def lr(self) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 1.0 if self.optimizer == "adadelta" else 1e-3


AUTO_CROP = 32  # random crop side for automatic training (REFERENCE section 1: 32x32 crops worked)
AUTO_BATCH = 4
AUTO_EPOCHS = 3
AUTO_STEPS = (12, 200)  # fewest and most optimiser steps of an automatic training
# Work of an automatic training, in multiply-adds: 25 Adam steps of 4 random 32x32 crops of a
# 200-band cube through the fast preset (measured 10-17 s on this 2-core CPU with 1-2 torch threads).
AUTO_BUDGET = 25 * AUTO_BATCH * AUTO_CROP * AUTO_CROP * 200 * 4752 * 3


def _shapes(cubes_or_shape) -> list[tuple[int, int, int]]:
    if isinstance(cubes_or_shape, tuple) and len(cubes_or_shape) == 3 and all(
        isinstance(v, (int, np.integer)) for v in cubes_or_shape
    ):
        return [tuple(int(v) for v in cubes_or_shape)]
    items = [cubes_or_shape] if not isinstance(cubes_or_shape, (list, tuple)) else list(cubes_or_shape)
    if not items:
        raise ModelError("Automatic training options need at least one cube.")
    shapes = []
    for c in items:
        shape = tuple(int(v) for v in (c.shape if isinstance(c, np.ndarray) else (c.bands, c.rows, c.cols)))
        if len(shape) != 3:
            raise ModelError(f"A cube is (bands, rows, cols); got shape {shape}.")
        shapes.append(shape)
    return shapes


def macs_per_voxel(config: CAEConfig) -> int:
    """Multiply-adds of one forward pass per input voxel (pooling shrinks the later layers)."""
    k3, cin, frac, macs = config.kernel_size ** 3, 1, 1.0, 0.0
    for n, p in zip(config.kernels, config.pooling, strict=True):
        macs += frac * cin * n * k3
        frac /= p[0] * p[1] * p[2]
        cin = n
    for n, p in zip(reversed(config.kernels), reversed(config.pooling), strict=True):
        macs += frac * cin * n * k3
        frac *= p[0] * p[1] * p[2]
        cin = n
    return int(round(macs + frac * cin * k3))


def auto_train_options(cubes_or_shape, config_or_preset: CAEConfig | str = "fast", *,
                       seed: int = 0) -> TrainOptions:
    """Training defaults for a cube (or cubes, or a ``(bands, rows, cols)`` shape) and a preset.

    Random crops of ``AUTO_CROP`` px (never larger than the smallest cube, a multiple of the pooling),
    batch ``AUTO_BATCH``, Adam, and a fixed amount of work (``AUTO_BUDGET``): as many steps as fit it
    for the band count and network (within ``AUTO_STEPS``), spread over ``AUTO_EPOCHS`` epochs so every
    epoch has several steps. Few steps on purpose: the network learns what is common, not rare targets.
    """
    shapes = _shapes(cubes_or_shape)
    config = get_config(config_or_preset, bands=shapes[0][0])
    f = config.spatial_factor
    side = min(min(r, c) for _, r, c in shapes)
    crop = max(f, min(AUTO_CROP, side // f * f))
    per_step = 3 * AUTO_BATCH * crop * crop * config.net_bands * macs_per_voxel(config)
    steps = int(np.clip(round(AUTO_BUDGET / per_step), *AUTO_STEPS))
    epochs = min(AUTO_EPOCHS, steps // 4) or 1
    return TrainOptions(epochs=epochs, batch_size=AUTO_BATCH, optimizer="adam", crop=crop,
                        steps_per_epoch=int(math.ceil(steps / epochs)), val_fraction=0.0, seed=seed)


def _as_cubes(cubes: Cube | Sequence[Cube]) -> list[Cube]:
    cubes = [cubes] if isinstance(cubes, Cube) else list(cubes)
    if not cubes:
        raise ModelError("Training needs at least one cube.")
    bands = {c.bands for c in cubes}
    if len(bands) > 1:
        raise ModelError(f"All training cubes need the same band count; got {sorted(bands)}.")
    return cubes


def _make_optimizer(net: CAE, options: TrainOptions) -> torch.optim.Optimizer:
    if options.optimizer == "adadelta":
        return torch.optim.Adadelta(net.parameters(), lr=options.lr())
    if options.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=options.lr())
    raise ModelError(f"Optimizer must be one of {OPTIMIZERS}; got {options.optimizer!r}.")


def _split(
    refs: list[WindowRef], options: TrainOptions, rng: np.random.Generator
) -> tuple[list[WindowRef], list[WindowRef]]:
    order = rng.permutation(len(refs))
    refs = [refs[i] for i in order]
    n_val = int(round(len(refs) * options.val_fraction))
    if len(refs) - n_val < 1:
        n_val = 0
    train, val = refs[n_val:], refs[:n_val]
    if options.max_windows:
        train = train[: options.max_windows]
    return train, val


def iter_train(
    cubes: Cube | Sequence[Cube],
    config_or_preset: CAEConfig | str = "fast",
    options: TrainOptions | None = None,
) -> Generator[Progress, None, TrainedModel]:
    """Train a CAE on ``cubes`` (a reference population with the same bands); see module docstring.

    ``Progress.values``: ``epoch`` (1-based), ``epochs``, ``step``, ``loss`` (running mean of the
    epoch), ``val_loss`` (None until an epoch ends or without validation windows), ``elapsed`` (s),
    ``windows_per_s``, ``eta`` (s) and ``phase`` ("train" or "epoch_end").
    """
    options = options or TrainOptions()
    cubes = _as_cubes(cubes)
    config = get_config(config_or_preset, bands=cubes[0].bands)
    size = int(options.crop or config.window)
    if size % config.spatial_factor:
        raise ModelError(
            f"Training window/crop {size} must be a multiple of {config.spatial_factor} (pooling)."
        )
    if options.epochs < 1 or options.batch_size < 1:
        raise ModelError("Epochs and batch size must be at least 1.")
    if not (0.0 <= options.trim < 1.0) or options.noise < 0 or not (0.0 <= options.warmup <= 1.0):
        raise ModelError("Training needs 0 <= trim < 1, noise >= 0 and 0 <= warmup <= 1.")
    warnings: list[str] = []
    fitted = fit_to_scene(size, cubes, config.spatial_factor)
    if fitted != size:
        warnings.append(f"{'crop' if options.crop else 'window'} {size} px is larger than the smallest "
                        f"cube; trained on {fitted} px")
        size = fitted
    device = resolve_device(options.device)
    scaler = MinMaxScaler.fit(cubes, options.scaling)
    rng = np.random.default_rng(options.seed)
    torch.manual_seed(options.seed)
    train_refs, val_refs = _split(grid_windows(cubes, size), options, rng)
    per_epoch = (
        options.steps_per_epoch * options.batch_size if options.steps_per_epoch else len(train_refs)
    )
    steps = math.ceil(per_epoch / options.batch_size)
    total = steps * options.epochs
    if steps == 1:
        warnings.append(f"one optimiser step per epoch: the scene is small for {size} px windows; "
                        "use random crops (crop) with steps_per_epoch, or auto_train_options")
    what = describe_training(options, size, steps, config.preset)
    trim_from = int(math.ceil(options.warmup * total)) if options.trim > 0 else None
    fmt = torch.channels_last_3d if options.channels_last else torch.contiguous_format
    net = CAE(config)
    if options.init_output_bias:
        _init_output_bias(net, cubes, (train_refs or val_refs)[: options.batch_size], scaler, config)
    net = net.to(device=device, memory_format=fmt)
    opt = _make_optimizer(net, options)
    flip_rng = rng if options.flips else None
    t0, seen, done = time.perf_counter(), 0, 0
    loss_mean, val_loss = float("nan"), None
    note = "".join(f" (warning: {w})" for w in warnings)
    yield Progress(0, total, f"training {what}{note}",
                   _values(1, options.epochs, 0, None, None, 0.0, 0, 0, total, "start"))
    with torch_threads(options.threads if device.type == "cpu" else None):
        for epoch in range(1, options.epochs + 1):
            net.train()
            if options.crop:
                refs = random_windows(cubes, size, per_epoch, rng)
            else:
                idx = rng.permutation(per_epoch) % len(train_refs)
                refs = [train_refs[i] for i in idx]
            loss_sum = 0.0
            for step in range(steps):
                batch = refs[step * options.batch_size : (step + 1) * options.batch_size]
                x, valid = load_batch(cubes, batch, scaler, config, flip_rng)
                x = x.to(device=device, memory_format=fmt)
                valid = valid.to(device)
                x_in = x
                if options.noise > 0:
                    x_in = x + options.noise * torch.randn_like(x) * valid[:, None, None].to(x.dtype)
                trim = options.trim if trim_from is not None and done >= trim_from else 0.0
                loss = masked_mse(net(x_in), x, valid, config.used_bands, trim)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach())
                loss_mean = loss_sum / (step + 1)
                seen += len(batch)
                done += 1
                elapsed = time.perf_counter() - t0
                yield Progress(
                    done, total, f"epoch {epoch}/{options.epochs} step {step + 1}/{steps}",
                    _values(epoch, options.epochs, step + 1, loss_mean, val_loss, elapsed, seen,
                            done, total, "train"),
                )
            if val_refs:
                val_loss = _evaluate(net, cubes, val_refs, scaler, config, options.batch_size,
                                     device, fmt)
            elapsed = time.perf_counter() - t0
            yield Progress(
                done, total, f"epoch {epoch}/{options.epochs} done: loss {loss_mean:.5f}"
                + (f", val {val_loss:.5f}" if val_loss is not None else ""),
                _values(epoch, options.epochs, steps, loss_mean, val_loss, elapsed, seen, done,
                        total, "epoch_end"),
            )
    net.eval()
    summary = {
        "description": what,
        "epochs": options.epochs,
        "steps": total,
        "steps_per_epoch": steps,
        "loss": loss_mean,
        "val_loss": val_loss,
        "windows": seen,
        "train_windows": len(train_refs) if not options.crop else per_epoch,
        "val_windows": len(val_refs),
        "train_window": size,
        "seconds": round(time.perf_counter() - t0, 3),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "optimizer": options.optimizer,
        "learning_rate": options.lr(),
        "batch_size": options.batch_size,
        "seed": options.seed,
        "crop": options.crop,
        "flips": options.flips,
        "noise": options.noise,
        "trim": options.trim,
        "warmup": options.warmup if options.trim > 0 else None,
        "warnings": warnings,
        "cubes": [str(c.source) if c.source is not None else c.name for c in cubes],
        "package_version": __version__,
    }
    return TrainedModel(net=net.to(memory_format=torch.contiguous_format), config=config,
                        scaler=scaler, summary=summary)


def fit_to_scene(size: int, cubes: Sequence[Cube], factor: int) -> int:
    """``size`` shrunk to the largest multiple of ``factor`` that fits the smallest cube (at least
    ``factor``): a training window or crop is never larger than the scene."""
    side = min(min(c.rows, c.cols) for c in cubes)
    return int(min(size, max(factor, side // factor * factor)))


def describe_training(options: TrainOptions, size: int, steps_per_epoch: int, preset: str = "") -> str:
    """One line saying what is trained: steps, epochs, window or crop, batch and the anti-target measures."""
    total = steps_per_epoch * options.epochs
    where = f"random {size}x{size} crops" if options.crop else f"{size}x{size} windows"
    text = (f"{(preset + ' CAE: ') if preset else ''}{total} {options.optimizer.capitalize()} steps "
            f"({options.epochs} epochs x {steps_per_epoch}) on {where}, batch {options.batch_size}")
    extra = []
    if options.noise > 0:
        extra.append(f"input noise {options.noise:g}")
    if options.trim > 0:
        extra.append(f"worst {options.trim:.0%} pixels left out after {options.warmup:.0%} of the steps")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _init_output_bias(net: CAE, cubes, refs, scaler, config) -> None:
    """Start the output at the data mean (sigmoid: its logit) instead of 0.5, which avoids a long
    plateau where the net outputs a constant; only when the output layer has a bias."""
    if net.out.bias is None or not refs:
        return
    x, valid = load_batch(cubes, refs, scaler, config)
    w = valid[:, None].float()
    mean = float((x[:, 0, : config.used_bands] * w).sum() / (w.sum() * config.used_bands).clamp_min(1))
    if config.output_activation == "sigmoid":
        m = min(max(mean, 0.01), 0.99)
        mean = math.log(m / (1 - m))
    with torch.no_grad():
        net.out.bias.fill_(mean)


def _values(epoch, epochs, step, loss, val_loss, elapsed, seen, done, total, phase) -> dict:
    rate = seen / elapsed if elapsed > 0 else 0.0
    eta = elapsed / done * (total - done) if done else None
    return {
        "epoch": epoch, "epochs": epochs, "step": step, "loss": loss, "val_loss": val_loss,
        "elapsed": elapsed, "windows_per_s": rate, "eta": eta, "phase": phase,
    }


@torch.inference_mode()
def _evaluate(net, cubes, refs, scaler, config, batch_size, device, fmt) -> float:
    net.eval()
    total, weight = 0.0, 0.0
    for i in range(0, len(refs), batch_size):
        x, valid = load_batch(cubes, refs[i : i + batch_size], scaler, config)
        x = x.to(device=device, memory_format=fmt)
        valid = valid.to(device)
        n = float(valid.sum())
        total += float(masked_mse(net(x), x, valid, config.used_bands)) * n
        weight += n
    net.train()
    return total / weight if weight else float("nan")


def train(
    cubes: Cube | Sequence[Cube],
    config_or_preset: CAEConfig | str = "fast",
    options: TrainOptions | None = None,
    callback: Callable[[Progress], None] | None = None,
) -> TrainedModel:
    """Run ``iter_train`` to the end; ``callback`` gets every ``Progress``."""
    return run(iter_train(cubes, config_or_preset, options), callback)
