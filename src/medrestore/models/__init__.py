"""Network architectures, classical baselines and their registries.

``create_model(name, options)`` builds a registered architecture from its frozen config;
``create_method(name, options)`` binds a classical method to its config. Both registries are
filled by the explicit lists in :mod:`medrestore.models.catalog`.
"""

from medrestore.models.catalog import (
    ARCHITECTURES,
    CLASSICAL_METHODS,
    METHODS,
    MODELS,
    architecture_of,
    create_method,
    create_model,
    method_options,
    model_config,
    model_options,
    model_spatial_ndims,
    run_method,
)
from medrestore.models.classical import ClassicalMethod, GaussianFilterConfig, MedianConfig, NonLocalMeansConfig
from medrestore.models.dncnn import DnCNN, DnCNNConfig
from medrestore.models.srcnn import SRCNN, SRCNNConfig
from medrestore.models.unet import UNet, UNetConfig

__all__ = [
    "ARCHITECTURES",
    "CLASSICAL_METHODS",
    "METHODS",
    "MODELS",
    "ClassicalMethod",
    "DnCNN",
    "DnCNNConfig",
    "GaussianFilterConfig",
    "MedianConfig",
    "NonLocalMeansConfig",
    "SRCNN",
    "SRCNNConfig",
    "UNet",
    "UNetConfig",
    "architecture_of",
    "create_method",
    "create_model",
    "method_options",
    "model_config",
    "model_options",
    "model_spatial_ndims",
    "run_method",
]
