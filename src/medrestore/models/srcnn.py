"""SRCNN: three-layer super-resolution CNN (patch extraction, non-linear mapping, reconstruction).

Reference: Dong, Loy, He & Tang, "Learning a Deep Convolutional Network for Image
Super-Resolution", ECCV 2014 (9-1-5 kernels, 64 and 32 feature maps).

The network maps an image already brought to the target grid to a sharper one of the *same*
size: every convolution is 'same'-padded by reflection. With ``scale = 1`` (the default) there
is no interpolation inside (the bicubic up-sampling of the paper is the caller's job); with
``scale = k > 1`` the model first interpolates its input onto a grid ``k`` times finer with
Keys' bicubic kernel (:func:`~medrestore.physics.blur.upsample`, block-centre geometry), as
the paper does, so it maps a low-resolution image to ``k`` times its size. The receptive field
is ``Σ k − (L − 1)`` for ``L`` layers of kernel ``k`` (13 for 9-1-5), on the fine grid.
"""

from __future__ import annotations

import dataclasses

import torch

from medrestore.core.errors import InputError
from medrestore.models.blocks import ImageToImageModel, SpatialNdim, check_input, conv_stack, require
from medrestore.physics.blur import upsample


@dataclasses.dataclass(frozen=True)
class SRCNNConfig:
    """Options of :class:`SRCNN`.

    Attributes:
        spatial_ndim: 2 (images) or 3 (volumes).
        channels: image channels, in and out.
        features: feature maps of the hidden layers (one per hidden layer).
        kernel_sizes: odd kernel size of every layer (``len(features) + 1`` of them).
        scale: bicubic pre-up-sampling factor (1: none, the input is already on the target grid).
    """

    spatial_ndim: SpatialNdim = 2
    channels: int = 1
    features: tuple[int, ...] = (64, 32)
    kernel_sizes: tuple[int, ...] = (9, 1, 5)
    scale: int = 1

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "srcnn", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        require(self.channels >= 1, "srcnn", f"channels must be at least 1, got {self.channels}")
        require(len(self.features) >= 1, "srcnn", "features needs at least one hidden layer")
        require(all(count >= 1 for count in self.features), "srcnn", f"features must be positive, got {self.features}")
        require(
            len(self.kernel_sizes) == len(self.features) + 1,
            "srcnn",
            f"kernel_sizes needs len(features) + 1 = {len(self.features) + 1} entries, got {len(self.kernel_sizes)}",
        )
        require(
            all(size >= 1 and size % 2 == 1 for size in self.kernel_sizes),
            "srcnn",
            f"kernel_sizes must be odd and positive, got {self.kernel_sizes}",
        )
        require(self.scale >= 1, "srcnn", f"scale must be at least 1, got {self.scale}")

    @property
    def receptive_field(self) -> int:
        """Width of the input region one output sample depends on: ``Σ k − (L − 1)``."""
        return sum(self.kernel_sizes) - (len(self.kernel_sizes) - 1)


class SRCNN(ImageToImageModel):
    """SRCNN mapping ``(N, channels, *S) → (N, channels, *S·scale)`` (bicubic up-sampling when
    ``scale > 1``, then conv → ReLU per hidden layer, linear last layer).

    Example:
        >>> net = SRCNN(SRCNNConfig(features=(8, 4)))
        >>> net(torch.zeros(1, 1, 37, 45)).shape
        torch.Size([1, 1, 37, 45])
    """

    def __init__(self, config: SRCNNConfig = SRCNNConfig()) -> None:
        super().__init__()
        self.config = config
        widths = (config.channels, *config.features, config.channels)
        self.layers = conv_stack(config.spatial_ndim, widths, tuple(config.kernel_sizes), padding_mode="reflect")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, channels, *S)`` float → ``(N, channels, *S·scale)``; every (up-sampled) spatial size must exceed ``max(k) // 2``."""
        check_input(image, self.spatial_ndim, self.config.channels, "srcnn")
        if self.config.scale > 1:
            image = upsample(image, self.config.scale, "bicubic", self.spatial_ndim)
        smallest = max(self.config.kernel_sizes) // 2 + 1
        if min(image.shape[2:]) < smallest:
            raise InputError(None, f"srcnn needs every spatial size ≥ {smallest}, got {tuple(image.shape[2:])}")
        return self.layers(image)
