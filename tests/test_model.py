"""CAE architecture: thesis parameter counts, shapes, band policies."""

import dataclasses

import pytest
import torch

from napari_hsi_anomaly.core.errors import ModelError
from napari_hsi_anomaly.core.model import CAE, PRESETS, CAEConfig, count_parameters, get_config


def test_thesis_parameter_counts():
    cfg = PRESETS["thesis"]
    net = CAE(cfg)
    assert count_parameters(net) == 6000 + 3 * 288_000 + 6000
    assert net.encoder[0].weight.numel() == 6000
    assert net.encoder[1].weight.numel() == 288_000
    # the thesis table (Keras, with bias): 6,048 + 3 x 288,048 + 6,001
    assert count_parameters(CAE(dataclasses.replace(cfg, bias=True))) == 876_193


def test_thesis_shapes_small():
    cfg = dataclasses.replace(PRESETS["thesis"], window=16, kernels=(4, 4))
    net = CAE(cfg)
    x = torch.rand(2, 1, 12, 16, 16)
    fc1, fc2 = net.encode(x)
    assert fc1.shape == (2, 4, 12, 16, 16)  # Conv1 maps, before pooling
    assert fc2.shape == (2, 4, 6, 8, 8)  # Conv2 maps, after pool 1, before pool 2
    assert net(x).shape == x.shape
    with torch.no_grad():
        y = net(x)
    assert float(y.min()) >= 0 and float(y.max()) <= 1  # sigmoid output


@pytest.mark.parametrize("bands,policy,net_bands,used", [
    (12, "pad", 12, 12), (13, "pad", 16, 13), (13, "crop", 12, 12), (1, "pad", 4, 1), (5, "crop", 4, 4),
])
def test_band_policy(bands, policy, net_bands, used):
    cfg = dataclasses.replace(PRESETS["thesis"], bands=bands, band_policy=policy)
    assert cfg.net_bands == net_bands
    assert cfg.used_bands == used


def test_fast_any_band_count():
    for bands in (1, 3, 7, 205):
        cfg = get_config("fast", bands=bands)
        assert cfg.net_bands == bands
        net = CAE(dataclasses.replace(cfg, window=8))
        assert net(torch.rand(1, 1, bands, 8, 8)).shape == (1, 1, bands, 8, 8)


def test_bad_configs():
    with pytest.raises(ModelError, match="multiple"):
        CAEConfig(window=30)
    with pytest.raises(ModelError, match="crop"):
        CAEConfig(bands=3, band_policy="crop")
    with pytest.raises(ModelError, match="preset"):
        get_config("huge")


def test_config_roundtrip():
    cfg = get_config("thesis", bands=13)
    assert CAEConfig.from_dict(cfg.to_dict()) == cfg
