"""Features f1-f4 and pixel: shapes, regions, seamless tiling, definitions; reconstruction."""

import dataclasses

import numpy as np
import pytest
import torch

from napari_hsi_anomaly.core import Cube
from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model import (
    CAE,
    PRESETS,
    MinMaxScaler,
    TrainedModel,
    extract_features,
    iter_features,
    reconstruct,
)
from napari_hsi_anomaly.core.model.features import band_groups, feature_window
from napari_hsi_anomaly.core.windows import window_grid


def make_model(cfg, cube, seed=0):
    torch.manual_seed(seed)
    cfg = cfg.with_bands(cube.bands)
    return TrainedModel(CAE(cfg).eval(), cfg, MinMaxScaler.fit([cube]), {})


def rand_cube(bands, rows, cols, seed=0):
    return Cube(np.random.default_rng(seed).random((bands, rows, cols), dtype=np.float32) * 50)


THESIS_SMALL = dataclasses.replace(PRESETS["thesis"], window=16, kernels=(3, 5))
FAST_SMALL = dataclasses.replace(PRESETS["fast"], window=16, kernels=(3, 5))


def test_thesis_full_size_shapes():
    """The thesis numbers: 96, 16 x 1152, 48, 16 x 576 on one 128x128x12 window."""
    cube = rand_cube(12, 128, 128)
    model = make_model(PRESETS["thesis"], cube)
    expect = {"f1": (1, 96), "f2": (16, 1152), "f3": (1, 48), "f4": (16, 576)}
    for kind, shape in expect.items():
        fs = extract_features(model, cube, kind, window=128)
        assert fs.values.shape == shape and fs.values.dtype == np.float32
        assert fs.regions.shape == (shape[0], 4) and fs.regions.dtype == np.int64
        assert len(fs.names) == shape[1]
    fs = extract_features(model, cube, "f2", window=128)
    assert fs.regions[1].tolist() == [0, 32, 32, 64]


@pytest.mark.parametrize("cfg", [THESIS_SMALL, FAST_SMALL], ids=["thesis", "fast"])
@pytest.mark.parametrize("shape", [(12, 40, 36), (13, 16, 16), (5, 9, 7), (1, 20, 20)])
def test_shapes_odd_sizes(cfg, shape):
    cube = rand_cube(*shape)
    model = make_model(cfg, cube)
    used = model.config.used_bands
    size = feature_window(model.config, shape[1], shape[2])
    assert size <= min(shape[1:]) or size == model.config.spatial_factor  # never larger than the scene
    n_win = len(window_grid(shape[1], shape[2], size))
    dims = {"f1": 8, "f2": used * 8, "f3": 5, "f4": used * 5, "pixel": 3 * min(4, used)}
    for kind, dim in dims.items():
        fs = extract_features(model, cube, kind)
        rows = shape[1] * shape[2] if kind == "pixel" else n_win * (16 if kind in ("f2", "f4") else 1)
        assert fs.values.shape == (rows, dim), kind
        assert np.isfinite(fs.values).all()
        assert fs.image_shape == shape[1:]
        if kind == "pixel":
            assert fs.regions is None
        else:
            assert fs.regions[:, 1].max() <= shape[1] and fs.regions[:, 3].max() <= shape[2]
            assert (fs.regions[:, 0] >= 0).all()


def test_f1_f3_definitions_match_encoder():
    cube = rand_cube(12, 16, 16)
    model = make_model(THESIS_SMALL, cube)
    x = torch.from_numpy(model.scaler.transform(cube.as_float32()))[None, None]
    with torch.no_grad():
        fc1, fc2 = model.net.encode(x)
    f1 = extract_features(model, cube, "f1", window=16).values[0]
    f3 = extract_features(model, cube, "f3", window=16).values[0]
    expect = torch.cat([fc1.amax(dim=(2, 3, 4)), fc2.amax(dim=(2, 3, 4))], dim=1)[0].numpy()
    np.testing.assert_allclose(f1, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f3, expect[3:], rtol=1e-5, atol=1e-6)
    # f2: Kronecker up-sampled fc, max over each 4x4 section per band and map
    fc2_up = fc2.repeat_interleave(2, 2).repeat_interleave(2, 3).repeat_interleave(2, 4)
    fc = torch.cat([fc1, fc2_up], dim=1)[0]  # (8, 12, 16, 16)
    f2 = extract_features(model, cube, "f2", window=16).values
    sec = fc[:, :, 4:8, 8:12].amax(dim=(2, 3)).T.reshape(-1).numpy()  # section (1, 2), band-major
    np.testing.assert_allclose(f2[1 * 4 + 2], sec, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", [THESIS_SMALL, FAST_SMALL], ids=["thesis", "fast"])
def test_pixel_tiles_are_seamless(cfg):
    cube = rand_cube(4, 45, 37)
    model = make_model(cfg, cube)
    whole = extract_features(model, cube, "pixel", tile=64).values
    tiled = extract_features(model, cube, "pixel", tile=8).values
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-5)


def test_pixel_is_conv1_mean_over_band_groups():
    cube = rand_cube(10, 16, 16)
    model = make_model(FAST_SMALL, cube)
    x = torch.from_numpy(model.scaler.transform(cube.as_float32()))[None, None]
    with torch.no_grad():
        fc1, _ = model.net.encode(x)
    fs = extract_features(model, cube, "pixel", channels_last=False)
    groups = band_groups(10)
    assert groups == [(0, 2), (2, 5), (5, 8), (8, 10)] and band_groups(3) == [(0, 1), (1, 2), (2, 3)]
    px = fs.values.reshape(16, 16, 3, 4)  # map-major: conv1[k]@group
    assert fs.names[:2] == ["conv1[0]@b0-1", "conv1[0]@b2-4"] and len(fs.names) == 12
    for g, (a, b) in enumerate(groups):
        expect = fc1[0, :, a:b].mean(dim=1).permute(1, 2, 0)[4:12, 4:12].numpy()
        # interior pixels (away from the reflect-padded border) equal the plain forward pass
        np.testing.assert_allclose(px[4:12, 4:12, :, g], expect, rtol=1e-5, atol=1e-6)


def test_small_scene_windows_and_pixels():
    """A 24x20 scene with a 64-px model window: f1-f4 windows fit the scene (at least 4 x 4 of them),
    pixel features are finite, one row per pixel, no-data pixels marked invalid."""
    cfg = dataclasses.replace(PRESETS["fast"], window=64, kernels=(3, 5))
    data = np.random.default_rng(1).random((6, 24, 20)).astype(np.float32)
    data[:, 0, :3] = np.nan
    cube = Cube(data)
    model = make_model(cfg, cube)
    assert feature_window(cfg, 24, 20) == 4 and feature_window(cfg, 1830, 1830) == 64
    assert feature_window(cfg, 24, 20, window=64) == 20  # an explicit window is clipped to the scene
    for kind in ("f1", "f2", "f3", "f4"):
        fs = extract_features(model, cube, kind)
        assert fs.window <= 20 and fs.n >= 16 and np.isfinite(fs.values).all()
        assert fs.regions[:, 1].max() <= 24 and fs.regions[:, 3].max() <= 20
    px = extract_features(model, cube, "pixel")
    assert px.values.shape == (480, 12) and np.isfinite(px.values).all()
    assert px.valid.sum() == 480 - 3 and not px.valid.reshape(24, 20)[0, :3].any()


def test_nodata_rows_marked_invalid():
    data = np.random.default_rng(0).random((3, 20, 20)).astype(np.float32)
    data[:, :5, :5] = np.nan
    cube = Cube(data)
    model = make_model(FAST_SMALL, cube)
    fs = extract_features(model, cube, "pixel")
    assert not fs.valid.reshape(20, 20)[:5, :5].any() and fs.valid.sum() == 400 - 25
    assert np.isfinite(fs.values).all()
    rec = reconstruct(model, cube)
    assert np.isnan(rec.per_pixel[:5, :5]).all() and np.isfinite(rec.per_pixel[5:]).all()
    assert rec.per_band.shape == (3, 20, 20)


def test_band_mismatch_raises():
    model = make_model(FAST_SMALL, rand_cube(12, 16, 16))
    with pytest.raises(ModelError, match="trained on 12 bands; this cube has 205"):
        extract_features(model, rand_cube(205, 8, 8), "f1")


def test_progress_and_unknown_kind():
    cube = rand_cube(3, 40, 40)
    model = make_model(FAST_SMALL, cube)
    reports = list(iter_features(model, cube, "f1", batch_size=2, window=16))
    assert reports[-1].done == reports[-1].total == 9
    with pytest.raises(ModelError, match="Unknown feature"):
        extract_features(model, cube, "f9")


def test_reconstruction_seamless():
    cube = rand_cube(4, 30, 26)
    model = make_model(THESIS_SMALL, cube)
    a = reconstruct(model, cube, tile=8).per_band
    b = reconstruct(model, cube, tile=64).per_band
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_default_tile_respects_memory_budget():
    from napari_hsi_anomaly.core.model import encoder_halo, get_config
    from napari_hsi_anomaly.core.model.tiles import TILE_BUDGET, default_tile

    for preset, bands in (("fast", 12), ("fast", 205), ("thesis", 12)):
        cfg = get_config(preset, bands)
        halo = encoder_halo(cfg)
        side = default_tile(cfg, halo) + 2 * halo
        assert 3 * 4 * max(cfg.kernels) * cfg.net_bands * side**2 <= TILE_BUDGET
        assert default_tile(cfg, halo) % cfg.spatial_factor == 0
    assert default_tile(get_config("fast", 12), 8) == 256


def test_real_hyperspectral_scene(shared_data):
    """A real AVIRIS crop (205 bands, raw counts): one training step, then every feature kind."""
    from napari_hsi_anomaly.core.model import TrainOptions, train

    with np.load(shared_data / "hsi-ad" / "abu-airport-1.npz", allow_pickle=False) as z:
        cube = Cube(np.ascontiguousarray(np.moveaxis(z["cube"][:24, :20], -1, 0)))
    cfg = dataclasses.replace(PRESETS["fast"], window=16, kernels=(4, 4))
    model = train(cube, cfg, TrainOptions(epochs=1, steps_per_epoch=1, batch_size=2, optimizer="adam",
                                          device="cpu", threads=1, val_fraction=0))
    assert model.bands == 205 and 0 <= model.scaler.lo[0] < model.scaler.hi[0]
    px = extract_features(model, cube, "pixel")
    assert px.values.shape == (480, 16) and np.isfinite(px.values).all()
    f2 = extract_features(model, cube, "f2", window=16)
    assert f2.values.shape == (4 * 16, 205 * 8)


def test_window_kinds_from_one_encoder_pass_equal_one_by_one():
    """``iter_window_features`` (f1-f4 from one encoder pass per batch: the thesis protocol) gives each
    kind exactly what ``extract_features`` gives for it alone."""
    from napari_hsi_anomaly.core.model.features import iter_window_features
    from napari_hsi_anomaly.core.progress import run as run_progress

    cube = rand_cube(5, 40, 36)
    model = make_model(FAST_SMALL, cube)
    sets = run_progress(iter_window_features(model, cube, window=16))
    for kind in ("f1", "f2", "f3", "f4"):
        alone = extract_features(model, cube, kind, window=16)
        np.testing.assert_array_equal(sets[kind].values, alone.values)
        np.testing.assert_array_equal(sets[kind].regions, alone.regions)
        np.testing.assert_array_equal(sets[kind].valid, alone.valid)
