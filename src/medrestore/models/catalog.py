"""The catalogue: every architecture and classical method, registered here in one explicit list.

A new architecture is added by writing its module (a frozen config dataclass + an
``nn.Module`` taking that config) and appending one :class:`Entry` to :data:`ARCHITECTURES`;
the parametrised model tests then cover it automatically.

Example:
    >>> net = create_model("unet", {"base_channels": 8, "depth": 2})
    >>> net.config.depth, net.spatial_ndim
    (2, 2)
    >>> create_method("median", {"size": 3})(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
"""

from __future__ import annotations

import typing
from collections.abc import Mapping

import torch
from torch import nn

from medrestore.core.errors import MedrestoreError
from medrestore.core.registry import Entry, Registry, config_fields, config_to_options
from medrestore.models.classical import (
    ClassicalMethod,
    GaussianFilterConfig,
    MedianConfig,
    NonLocalMeansConfig,
    make_gaussian_filter,
    make_median,
    make_non_local_means,
)
from medrestore.models.cae import CAE, CAEConfig
from medrestore.models.dncnn import DnCNN, DnCNNConfig
from medrestore.models.ensemble import ResUNetEnsemble, ResUNetEnsembleConfig, UNetEnsemble, UNetEnsembleConfig
from medrestore.models.fast_nlm import FastNLMConfig, make_fast_nlm
from medrestore.models.multiframe import MultiFrameConfig, MultiFrameDenoiser
from medrestore.models.resunet import ResUNet, ResUNetConfig
from medrestore.models.srcnn import SRCNN, SRCNNConfig
from medrestore.models.srresnet import SRResNet, SRResNetConfig
from medrestore.models.unet import UNet, UNetConfig
from medrestore.models.unrolled import RadialUnrolledNet, UnrolledConfig, UnrolledNet
from medrestore.models.vdsr import VDSR, VDSRConfig
from medrestore.models.vgg_unet import VGGUNet, VGGUNetConfig

ARCHITECTURES: tuple[Entry[nn.Module], ...] = (
    Entry(
        name="unet",
        constructor=UNet,
        task="any",
        modality="any",
        description="fastMRI-style U-Net (2-D/3-D), instance norm, skip connections, optional residual output",
        config_type=UNetConfig,
    ),
    Entry(
        name="dncnn",
        constructor=DnCNN,
        task="denoise",
        modality="any",
        description="DnCNN (Zhang et al. 2017): deep plain CNN with batch norm that learns the noise",
        config_type=DnCNNConfig,
    ),
    Entry(
        name="srcnn",
        constructor=SRCNN,
        task="superres",
        modality="any",
        description="SRCNN (Dong et al. 2014): 9-1-5 three-layer CNN on the target grid (optional bicubic ×scale first)",
        config_type=SRCNNConfig,
    ),
    Entry(
        name="srresnet",
        constructor=SRResNet,
        task="superres",
        modality="any",
        description="SRResNet (Ledig et al. 2017): 9×9 head, residual blocks with BN + PReLU, pixel-shuffle ×2 stages",
        config_type=SRResNetConfig,
    ),
    Entry(
        name="vdsr",
        constructor=VDSR,
        task="superres",
        modality="any",
        description="VDSR (Kim et al. 2016): bicubic up-sampling + a deep 3×3 residual network on the fine grid",
        config_type=VDSRConfig,
    ),
    Entry(
        name="cae",
        constructor=CAE,
        task="denoise",
        modality="any",
        description="convolutional auto-encoder: stride-2 conv encoder, transposed-conv decoder, no skips (OCT seed)",
        config_type=CAEConfig,
    ),
    Entry(
        name="resunet",
        constructor=ResUNet,
        task="denoise",
        modality="any",
        description="fast residual U-Net (2-D/3-D): pixel-unshuffle stem, residual blocks, additive skips, learns the noise or speckle",
        config_type=ResUNetConfig,
    ),
    Entry(
        name="multiframe",
        constructor=MultiFrameDenoiser,
        task="denoise",
        modality="oct",
        description="multi-frame denoiser: neighbouring frames stacked as channels, mean + ResUNet correction",
        config_type=MultiFrameConfig,
    ),
    Entry(
        name="vgg-unet",
        constructor=VGGUNet,
        task="recon",
        modality="mri",
        description="U-Net with a VGG19 encoder (seed network): ImageNet layers 0-22 frozen when a local weights file is given",
        config_type=VGGUNetConfig,
    ),
    Entry(
        name="unrolled",
        constructor=UnrolledNet,
        task="recon",
        modality="mri",
        description="unrolled CS + DL (ISTA-Net+): learned transform, soft threshold and SENSE data consistency per stage",
        config_type=UnrolledConfig,
    ),
    Entry(
        name="unrolled-radial",
        constructor=RadialUnrolledNet,
        task="recon",
        modality="mri",
        description="unrolled CS + DL (ISTA-Net+) for radial k-space: data consistency through the density-weighted NUFFT-SENSE operator",
        config_type=UnrolledConfig,
    ),
    Entry(
        name="unet-ensemble",
        constructor=UNetEnsemble,
        task="harmonize",
        modality="any",
        description="mean of K U-Nets trained alike from different seeds (the shipped CycleGAN harmoniser)",
        config_type=UNetEnsembleConfig,
    ),
    Entry(
        name="resunet-ensemble",
        constructor=ResUNetEnsemble,
        task="denoise",
        modality="any",
        description="mean of K ResUNets of one configuration, e.g. trained with different losses (the shipped OCT default)",
        config_type=ResUNetEnsembleConfig,
    ),
)

CLASSICAL_METHODS: tuple[Entry[ClassicalMethod[typing.Any]], ...] = (
    Entry(
        name="median",
        constructor=make_median,
        task="denoise",
        modality="any",
        description="median filter over a size-wide window (scipy.ndimage)",
        config_type=MedianConfig,
    ),
    Entry(
        name="gaussian-filter",
        constructor=make_gaussian_filter,
        task="denoise",
        modality="any",
        description="Gaussian smoothing with standard deviation sigma pixels (scipy.ndimage)",
        config_type=GaussianFilterConfig,
    ),
    Entry(
        name="nlm",
        constructor=make_non_local_means,
        task="denoise",
        modality="any",
        description="non-local means with estimated noise level (skimage.restoration)",
        config_type=NonLocalMeansConfig,
    ),
    Entry(
        name="fast-nlm",
        constructor=make_fast_nlm,
        task="denoise",
        modality="mri",
        description="vectorised torch non-local means (2-D/3-D, GPU if present), Rician-aware, h tied to estimated sigma",
        config_type=FastNLMConfig,
    ),
)

MODELS: Registry[nn.Module] = Registry("architecture")
METHODS: Registry[ClassicalMethod[typing.Any]] = Registry("method")
for _architecture in ARCHITECTURES:
    MODELS.register(_architecture)
for _method in CLASSICAL_METHODS:
    METHODS.register(_method)


def create_model(name: str, options: Mapping[str, object] | None = None) -> nn.Module:
    """Build architecture ``name`` from validated ``options`` (defaults for missing keys).

    Layer weights are initialised from torch's global generator: call
    ``torch.manual_seed`` (or :func:`medrestore.core.random.seed_everything`) first for a
    reproducible initialisation.

    Raises:
        MedrestoreError: unknown architecture (the message lists the registered ones).
        ConfigError: unknown option (the message lists the valid ones), wrong type or value.
    """
    return MODELS.get(name).create(options)


def model_config(name: str, options: Mapping[str, object] | None = None) -> object:
    """The validated frozen config of architecture ``name`` for ``options``."""
    return MODELS.get(name).make_config(options)


def model_options(name: str) -> dict[str, object]:
    """Default options of architecture ``name`` as a plain dict (tuples stay tuples)."""
    return config_to_options(model_config(name))


def model_spatial_ndims(name: str) -> tuple[int, ...]:
    """Spatial dimensionalities architecture ``name`` supports (the values its ``spatial_ndim`` option allows)."""
    entry = MODELS.get(name)
    if entry.config_type is None:
        return (2,)
    annotation = config_fields(entry.config_type).get("spatial_ndim")
    if annotation is None:
        return (2,)
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(int(value) for value in typing.get_args(annotation))
    return (2, 3)


def architecture_of(model: nn.Module) -> str:
    """Registry name of ``model``'s architecture (looked up by its class).

    Raises:
        MedrestoreError: the class is not a registered architecture.
    """
    for entry in MODELS:
        if type(model) is entry.constructor:
            return entry.name
    raise MedrestoreError(f"{type(model).__name__} is not a registered architecture; known: {', '.join(MODELS.names())}")


def create_method(name: str, options: Mapping[str, object] | None = None) -> ClassicalMethod[typing.Any]:
    """Classical method ``name`` bound to validated ``options``: a callable ``(N, C, *spatial) → same shape``."""
    return METHODS.get(name).create(options)


def method_options(name: str) -> dict[str, object]:
    """Default options of classical method ``name``."""
    return config_to_options(METHODS.get(name).make_config())


def run_method(name: str, image: torch.Tensor, options: Mapping[str, object] | None = None) -> torch.Tensor:
    """Apply classical method ``name`` with ``options`` to ``(N, C, *spatial)`` ``image``."""
    return create_method(name, options)(image)
