"""3-D convolutional autoencoder: training (phase 1), features and reconstruction (phase 2).

Needs torch (the ``[cae]`` extra); without it importing this package raises ``MissingExtraError``
with the one line that says how to install it.
"""

try:
    import torch  # noqa: F401
except ImportError as _exc:
    from napari_hsi_anomaly.core.errors import CAE_EXTRA_HINT, MissingExtraError

    raise MissingExtraError(
        f"This {CAE_EXTRA_HINT} (torch is not installed; the CAE detectors and training use it)."
    ) from _exc

from napari_hsi_anomaly.core.model.cae import (
    CAE,
    PRESETS,
    CAEConfig,
    count_parameters,
    encoder_halo,
    get_config,
    network_halo,
)
from napari_hsi_anomaly.core.model.checkpoint import load_model, save_model
from napari_hsi_anomaly.core.model.device import resolve_device
from napari_hsi_anomaly.core.model.features import (
    FEATURE_KINDS,
    FeatureSet,
    extract_features,
    iter_features,
)
from napari_hsi_anomaly.core.model.reconstruction import (
    Reconstruction,
    iter_reconstruction,
    reconstruct,
)
from napari_hsi_anomaly.core.model.scaling import MinMaxScaler
from napari_hsi_anomaly.core.model.train import TrainOptions, auto_train_options, iter_train, train
from napari_hsi_anomaly.core.model.trained import TrainedModel

__all__ = [
    "CAE",
    "FEATURE_KINDS",
    "PRESETS",
    "CAEConfig",
    "FeatureSet",
    "MinMaxScaler",
    "Reconstruction",
    "TrainOptions",
    "TrainedModel",
    "auto_train_options",
    "count_parameters",
    "encoder_halo",
    "extract_features",
    "get_config",
    "iter_features",
    "iter_reconstruction",
    "iter_train",
    "load_model",
    "network_halo",
    "reconstruct",
    "resolve_device",
    "save_model",
    "train",
]
