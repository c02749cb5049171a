"""The 3-D convolutional autoencoder (thesis network and a light CPU preset).

Input is ``(batch, 1, bands, rows, cols)``. The encoder is ``conv -> activation -> max-pool`` per layer;
the decoder mirrors it with ``conv -> activation -> nearest up-sampling`` and ends with a 1-kernel conv
and the output activation. The thesis's Keras "Deconv" layers have stride 1 and same padding, which is
the same operation (and parameter count) as a same-padded ``Conv3d``; that is what is used here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from napari_hsi_anomaly.core.errors import ModelError

Pool = tuple[int, int, int]  # (band, row, col) factors

BAND_POLICIES = ("pad", "crop")
ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}
OUTPUT_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "linear": nn.Identity, "relu": nn.ReLU}


@dataclass(frozen=True)
class CAEConfig:
    """Architecture of a 3-D CAE.

    ``bands`` is the cube's band count. The network needs a band count divisible by the product of the
    band pooling factors; ``band_policy`` says how other counts are handled: ``"pad"`` (default)
    replicates the last band up to the next multiple (the padded bands are left out of the loss and of
    the features), ``"crop"`` drops the last bands. ``window`` is the square window (pixels) used for
    training and for features f1-f4; it must be divisible by the spatial pooling product. Cubes or
    windows smaller than ``window`` are reflect-padded at the bottom/right.
    """

    preset: str = "custom"
    bands: int = 12
    window: int = 128
    kernels: tuple[int, ...] = (48, 48)
    kernel_size: int = 5
    pooling: tuple[Pool, ...] = ((2, 2, 2), (2, 2, 2))
    bias: bool = False
    activation: str = "relu"
    output_activation: str = "sigmoid"
    band_policy: str = "pad"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernels", tuple(int(k) for k in self.kernels))
        object.__setattr__(self, "pooling", tuple(tuple(int(v) for v in p) for p in self.pooling))
        if not self.kernels or len(self.kernels) != len(self.pooling):
            raise ModelError("A CAE needs one pooling factor (band, row, col) per encoder layer.")
        if min(self.kernels) < 1:
            raise ModelError(f"kernels must be whole numbers >= 1; got {list(self.kernels)}.")
        if any(len(p) != 3 or min(p) < 1 for p in self.pooling):
            raise ModelError(f"Pooling factors must be 3 positive integers; got {self.pooling}.")
        if self.row_pool != self.col_pool:
            raise ModelError("Row and column pooling must be equal (square windows).")
        if self.bands < 1:
            raise ModelError("A model needs at least one band.")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ModelError(f"Kernel size must be odd for same padding; got {self.kernel_size}.")
        if self.band_policy not in BAND_POLICIES:
            raise ModelError(f"Band policy must be one of {BAND_POLICIES}; got {self.band_policy!r}.")
        if self.activation not in ACTIVATIONS:
            raise ModelError(f"Unknown activation {self.activation!r}; use one of {list(ACTIVATIONS)}.")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ModelError(
                f"Unknown output activation {self.output_activation!r}; "
                f"use one of {list(OUTPUT_ACTIVATIONS)}."
            )
        if self.window < 1 or self.window % self.spatial_factor:
            raise ModelError(
                f"Window {self.window} must be a positive multiple of the spatial pooling "
                f"product {self.spatial_factor}."
            )
        if self.net_bands < 1:
            raise ModelError(
                f"{self.bands} bands cannot be cropped to a multiple of {self.band_factor} "
                f"(band pooling); use band_policy='pad'."
            )

    @property
    def band_factor(self) -> int:
        """Product of the band pooling factors."""
        f = 1
        for p in self.pooling:
            f *= p[0]
        return f

    @property
    def row_pool(self) -> tuple[int, ...]:
        return tuple(p[1] for p in self.pooling)

    @property
    def col_pool(self) -> tuple[int, ...]:
        return tuple(p[2] for p in self.pooling)

    @property
    def spatial_factor(self) -> int:
        """Product of the row pooling factors: windows and tiles must be multiples of it."""
        f = 1
        for p in self.row_pool:
            f *= p
        return f

    @property
    def net_bands(self) -> int:
        """Band count the network sees after the band policy (pad up or crop down)."""
        f = self.band_factor
        if self.band_policy == "pad":
            return -(-self.bands // f) * f
        return (self.bands // f) * f

    @property
    def used_bands(self) -> int:
        """Real cube bands that enter the network (all for "pad", fewer for "crop")."""
        return min(self.bands, self.net_bands)

    @property
    def n_features(self) -> int:
        return sum(self.kernels)

    def with_bands(self, bands: int) -> CAEConfig:
        return replace(self, bands=int(bands))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernels"] = list(self.kernels)
        d["pooling"] = [list(p) for p in self.pooling]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CAEConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["kernels"] = tuple(known.get("kernels", (48, 48)))
        known["pooling"] = tuple(tuple(p) for p in known.get("pooling", ((2, 2, 2), (2, 2, 2))))
        return cls(**known)


PRESETS: dict[str, CAEConfig] = {
    # REFERENCE section 1: Conv 48 5x5x5 / MaxPool 2x2x2 / Conv 48 / MaxPool / Deconv 48 / Up /
    # Deconv 48 / Up / Deconv 1; ReLU (Keras default choice), sigmoid output for [0, 1] scaled data.
    "thesis": CAEConfig(
        preset="thesis", bands=12, window=128, kernels=(48, 48), kernel_size=5,
        pooling=((2, 2, 2), (2, 2, 2)), bias=False,
    ),
    # Light network for a 2-core CPU: spatial pooling only, so any band count works. Chosen by
    # measurement (pixel features + GLOSH, 25 Adam steps on 32x32 crops): 16 kernels gave AUC about
    # 0.9 / 0.97 on abu-airport-1 / san-diego against 0.87 / 0.94 for 8 kernels. With bias: without
    # it the decoder can die (all ReLUs off, constant 0.5 output, flat loss), seen on the sample scene.
    "fast": CAEConfig(
        preset="fast", bands=12, window=64, kernels=(16, 16), kernel_size=3,
        pooling=((1, 2, 2), (1, 2, 2)), bias=True,
    ),
}


def get_config(config_or_preset: CAEConfig | str, bands: int | None = None) -> CAEConfig:
    """A ``CAEConfig`` from a preset name or a config, with ``bands`` set when given."""
    if isinstance(config_or_preset, str):
        if config_or_preset not in PRESETS:
            raise ModelError(f"Unknown preset {config_or_preset!r}; choose one of {sorted(PRESETS)}.")
        config = PRESETS[config_or_preset]
    else:
        config = config_or_preset
    return config.with_bands(bands) if bands is not None else config


class CAE(nn.Module):
    """3-D convolutional autoencoder built from a ``CAEConfig``."""

    def __init__(self, config: CAEConfig) -> None:
        super().__init__()
        self.config = config
        k, pad, act = config.kernel_size, config.kernel_size // 2, ACTIVATIONS[config.activation]
        self.encoder = nn.ModuleList()
        self.pools = nn.ModuleList()
        cin = 1
        for n, p in zip(config.kernels, config.pooling, strict=True):
            self.encoder.append(nn.Conv3d(cin, n, k, padding=pad, bias=config.bias))
            self.pools.append(nn.MaxPool3d(p) if p != (1, 1, 1) else nn.Identity())
            cin = n
        self.decoder = nn.ModuleList()
        self.ups = nn.ModuleList()
        for n, p in zip(reversed(config.kernels), reversed(config.pooling), strict=True):
            self.decoder.append(nn.Conv3d(cin, n, k, padding=pad, bias=config.bias))
            scale = tuple(float(v) for v in p)
            self.ups.append(nn.Upsample(scale_factor=scale, mode="nearest"))
            cin = n
        self.out = nn.Conv3d(cin, 1, k, padding=pad, bias=config.bias)
        self.act = act()
        self.out_act = OUTPUT_ACTIVATIONS[config.output_activation]()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder feature maps: for each layer the output of conv + activation, *before* pooling.

        ``[fc1, fc2, ...]``: fc1 = Conv1 maps at input size, fc2 = Conv2 maps at the size after the
        first pooling (the thesis's fc1 and fc2), each ``(batch, kernels, bands, rows, cols)``.
        """
        maps = []
        for conv, pool in zip(self.encoder, self.pools, strict=True):
            x = self.act(conv(x))
            maps.append(x)
            x = pool(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``, same shape ``(batch, 1, net_bands, rows, cols)``."""
        for conv, pool in zip(self.encoder, self.pools, strict=True):
            x = pool(self.act(conv(x)))
        for conv, up in zip(self.decoder, self.ups, strict=True):
            x = up(self.act(conv(x)))
        return self.out_act(self.out(x))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def encoder_halo(config: CAEConfig) -> int:
    """Pixels of context each encoder map value depends on (receptive-field radius), rounded up to a
    multiple of the spatial pooling product so tiles stay aligned with the pooling grid."""
    r, stride = 0, 1
    for p in config.row_pool:
        r += (config.kernel_size // 2) * stride
        r += (p - 1) * stride
        stride *= p
    return _round_up(r, config.spatial_factor)


def network_halo(config: CAEConfig) -> int:
    """Receptive-field radius of the whole autoencoder (encoder + decoder), rounded like ``encoder_halo``."""
    r, stride = 0, 1
    for p in config.row_pool:
        r += (config.kernel_size // 2) * stride + (p - 1) * stride
        stride *= p
    for p in reversed(config.row_pool):
        r += (config.kernel_size // 2) * stride
        stride //= p
    r += config.kernel_size // 2
    return _round_up(r, config.spatial_factor)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m
