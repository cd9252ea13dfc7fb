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
from medrestore.models.cae import CAE, CAEConfig
from medrestore.models.dncnn import DnCNN, DnCNNConfig
from medrestore.models.multiframe import MultiFrameConfig, MultiFrameDenoiser
from medrestore.models.resunet import ResUNet, ResUNetConfig
from medrestore.models.srcnn import SRCNN, SRCNNConfig
from medrestore.models.srresnet import SRResNet, SRResNetConfig
from medrestore.models.unet import UNet, UNetConfig
from medrestore.models.vdsr import VDSR, VDSRConfig

__all__ = [
    "ARCHITECTURES",
    "CAE",
    "CAEConfig",
    "CLASSICAL_METHODS",
    "METHODS",
    "MODELS",
    "MultiFrameConfig",
    "MultiFrameDenoiser",
    "ClassicalMethod",
    "DnCNN",
    "DnCNNConfig",
    "GaussianFilterConfig",
    "MedianConfig",
    "NonLocalMeansConfig",
    "ResUNet",
    "ResUNetConfig",
    "SRCNN",
    "SRCNNConfig",
    "SRResNet",
    "SRResNetConfig",
    "UNet",
    "UNetConfig",
    "VDSR",
    "VDSRConfig",
    "architecture_of",
    "create_method",
    "create_model",
    "method_options",
    "model_config",
    "model_options",
    "model_spatial_ndims",
    "run_method",
]
