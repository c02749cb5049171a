"""Training: determinism, progress/cancel, learning, no-data masking."""

import dataclasses
import importlib

import numpy as np
import pytest
import torch

from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model import CAE, PRESETS, TrainOptions, iter_train, reconstruct, train
from napari_hsi_anomaly.core.model.dataset import grid_windows, load_batch, masked_mse

TINY = dataclasses.replace(PRESETS["fast"], window=16, kernels=(4, 4))


def smooth_cube(bands=5, rows=40, cols=36, seed=0, nodata=None):
    rng = np.random.default_rng(seed)
    base = rng.random((bands, 1, 1)) * 100
    yy, xx = np.mgrid[0:rows, 0:cols]
    data = base + 20 * np.sin(yy / 6.0)[None] + 10 * np.cos(xx / 5.0)[None]
    data = data + rng.normal(0, 1, (bands, rows, cols))
    return Cube(data.astype(np.float32), nodata=nodata)


def opts(**kw):
    base = dict(epochs=1, batch_size=4, optimizer="adam", learning_rate=0.01, seed=1, device="cpu", threads=1)
    base.update(kw)
    return TrainOptions(**base)


def test_deterministic_weights():
    cube = smooth_cube()
    a = train(cube, TINY, opts(epochs=2, flips=True, crop=16))
    b = train(cube, TINY, opts(epochs=2, flips=True, crop=16))
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    c = train(cube, TINY, opts(epochs=2, flips=True, crop=16, seed=2))
    assert not torch.equal(a.net.encoder[0].weight, c.net.encoder[0].weight)


def collect(gen):
    """Every ``Progress`` a generator yields, and what it returns."""
    reports = []
    while True:
        try:
            reports.append(next(gen))
        except StopIteration as stop:
            return reports, stop.value


def test_progress_every_step_and_summary():
    cube = smooth_cube()
    reports, model = collect(iter_train(cube, TINY, opts(epochs=2, val_fraction=0.25)))
    steps = [p for p in reports if p.values["phase"] == "train"]
    ends = [p for p in reports if p.values["phase"] == "epoch_end"]
    assert len(ends) == 2 and all(p.values["val_loss"] is not None for p in ends)
    assert [p.done for p in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].done == steps[-1].total
    assert {"epoch", "epochs", "step", "loss", "val_loss", "elapsed", "windows_per_s"} <= set(steps[0].values)
    assert model.summary["epochs"] == 2 and model.summary["val_windows"] >= 1
    assert model.bands == 5 and model.window == 16 and model.preset == "fast"


def test_cancel_stops_within_one_step(monkeypatch):
    cube = smooth_cube()
    calls = []
    tr = importlib.import_module("napari_hsi_anomaly.core.model.train")  # the module, not train()

    real = tr.load_batch
    monkeypatch.setattr(tr, "load_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    before = torch.get_num_threads()
    gen = iter_train(cube, TINY, opts(epochs=5, threads=1))
    assert next(gen).values["phase"] == "start"  # says what will be trained, before any step
    next(gen)
    calls.clear()  # the first step, and the output-bias initialisation, read batches
    assert next(gen).done == 2
    assert len(calls) == 1  # one batch per step
    gen.close()
    assert len(calls) == 1  # no work after the consumer stopped
    assert torch.get_num_threads() == before  # thread count restored


def test_training_reduces_reconstruction_error():
    cube = smooth_cube(rows=32, cols=32)
    untrained = train(cube, TINY, opts(epochs=1, steps_per_epoch=1, learning_rate=1e-6))
    trained = train(cube, TINY, opts(epochs=4, steps_per_epoch=10, crop=16, flips=True))
    e0 = np.nanmean(reconstruct(untrained, cube).per_pixel)
    e1 = np.nanmean(reconstruct(trained, cube).per_pixel)
    assert e1 < 0.5 * e0


def test_nodata_does_not_change_loss():
    cube = smooth_cube(rows=16, cols=16)
    dirty = cube.data.copy()
    dirty[:, 3:7, 4:9] = -9999.0
    dirty_cube = Cube(dirty, nodata=-9999.0)
    model = train(cube, TINY, opts(steps_per_epoch=1))
    torch.manual_seed(0)
    net = CAE(model.config)
    ref = grid_windows([cube], 16)
    x1, v1 = load_batch([cube], ref, model.scaler, model.config)
    x2, v2 = load_batch([dirty_cube], ref, model.scaler, model.config)
    assert v2.sum() == v1.sum() - 20
    with torch.no_grad():
        # change only the masked-out pixels: the loss must not move
        base = masked_mse(net(x2), x2, v2, 5)
        x3 = x2.clone()
        x3[..., 3:7, 4:9] = 0.7
        l3 = masked_mse(net(x3), x3, v2, 5)
    assert torch.isfinite(base)
    # masked pixels influence neighbours through the convolution but never enter the sum directly
    err = (net(x3) - x3) ** 2
    assert float(l3) == pytest.approx(float((err[:, 0, :5] * v2[:, None]).sum() / (v2.sum() * 5)))
    # scaling stats ignore no-data
    m2 = train(dirty_cube, TINY, opts(steps_per_epoch=1))
    assert m2.scaler.lo[0] > -9999


def test_band_mismatch_between_cubes():
    with pytest.raises(ModelError, match="same band count"):
        train([smooth_cube(bands=3), smooth_cube(bands=4)], TINY, opts())


def test_several_cubes_and_small_cube():
    small = smooth_cube(rows=10, cols=7)  # smaller than the window: reflect-padded
    model = train([small, smooth_cube(seed=3)], TINY, opts(epochs=1))
    assert model.summary["windows"] > 0
    assert np.isfinite(model.summary["loss"])


def test_output_bias_starts_at_data_mean():
    cube = smooth_cube(rows=16, cols=16)
    gen = iter_train(cube, TINY, opts(learning_rate=1e-9, optimizer="adam"))
    next(gen)
    model = gen.gi_frame.f_locals["net"]
    x = model.out.bias.detach()
    sc = gen.gi_frame.f_locals["scaler"].transform(cube.as_float32())
    assert float(torch.sigmoid(x)) == pytest.approx(float(sc.mean()), abs=0.01)
    gen.close()
    off = iter_train(cube, TINY, opts(init_output_bias=False))
    next(off)
    assert abs(float(off.gi_frame.f_locals["net"].out.bias)) < 1.0  # default init: small
    off.close()


def test_nodata_values_never_reach_the_loss():
    """Same cube with its hole marked by a no-data value or by NaN: identical losses, step by step."""
    base = smooth_cube(rows=24, cols=24).data
    a, b = base.copy(), base.copy()
    a[:, 5:12, 3:9] = -9999.0
    b[:, 5:12, 3:9] = np.nan
    runs = []
    for cube in (Cube(a, nodata=-9999.0), Cube(b)):
        gen = iter_train(cube, TINY, opts(epochs=2, crop=16, flips=True, val_fraction=0.25))
        runs.append([(p.values["loss"], p.values["val_loss"]) for p in gen if p.values["phase"] != "start"])
    assert runs[0] == runs[1]
    assert all(np.isfinite(loss) for loss, _ in runs[0])


def test_auto_train_options_fit_the_scene():
    from napari_hsi_anomaly.core.model import auto_train_options

    o = auto_train_options((200, 100, 100))
    assert o.crop <= 100 and o.crop % PRESETS["fast"].spatial_factor == 0
    assert o.steps_per_epoch > 1 and o.epochs >= 2 and o.optimizer == "adam"
    assert auto_train_options(Cube(np.zeros((200, 100, 100), np.float32))) == o
    small = auto_train_options((12, 18, 30))  # smaller than the default crop: crop shrinks, steps stay many
    assert small.crop == 16 and small.steps_per_epoch > 1
    # fewer bands: more steps for the same work; more bands: fewer, never below the floor
    assert auto_train_options((12, 100, 100)).steps_per_epoch > o.steps_per_epoch
    assert auto_train_options((2000, 100, 100)).steps_per_epoch * 3 >= 12
    several = auto_train_options([Cube(np.zeros((5, 40, 40), np.float32)),
                                  Cube(np.zeros((5, 24, 60), np.float32))])
    assert several.crop == 24


def test_auto_training_on_100x100_summary_says_what_was_trained():
    from napari_hsi_anomaly.core.model import auto_train_options

    cube = smooth_cube(bands=3, rows=100, cols=100)
    o = dataclasses.replace(auto_train_options(cube, TINY), epochs=2, steps_per_epoch=3, threads=1)
    reports, model = collect(iter_train(cube, TINY, o))
    s = model.summary
    assert s["steps_per_epoch"] == 3 and s["epochs"] == 2 and s["steps"] == 6
    assert s["train_window"] == o.crop <= 100 and s["crop"] == o.crop and not s["warnings"]
    assert f"random {o.crop}x{o.crop} crops" in s["description"] and "(2 epochs x 3)" in s["description"]
    assert s["description"] in reports[0].message and f"{o.crop}x{o.crop}" in model.describe()


def test_one_step_per_epoch_and_oversized_window_warn():
    cube = smooth_cube(rows=20, cols=20)
    cfg = dataclasses.replace(TINY, window=32)  # larger than the scene: trained on 20 -> 20 px windows
    model = train(cube, cfg, opts(epochs=1, val_fraction=0))
    warnings = " ".join(model.summary["warnings"])
    assert model.summary["train_window"] == 20 and "larger than" in warnings
    assert "one optimiser step per epoch" in warnings


def test_trimmed_loss_leaves_the_worst_pixels_out():
    rec = torch.zeros(1, 1, 2, 4, 4)
    x = torch.zeros(1, 1, 2, 4, 4)
    x[0, 0, :, 0, 0] = 10.0  # one badly reconstructed pixel of 16
    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    assert float(masked_mse(rec, x, valid, 2)) > 1.0
    assert float(masked_mse(rec, x, valid, 2, trim=0.1)) == 0.0


def test_noise_and_trim_train():
    model = train(smooth_cube(), TINY, opts(epochs=2, crop=16, steps_per_epoch=3, noise=0.02, trim=0.05))
    assert np.isfinite(model.summary["loss"]) and model.summary["trim"] == 0.05
    assert "input noise" in model.summary["description"]
    with pytest.raises(ModelError, match="trim"):
        train(smooth_cube(), TINY, opts(trim=1.5))
