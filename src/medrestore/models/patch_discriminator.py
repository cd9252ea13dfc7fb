"""PatchGAN discriminator (2-D or 3-D): real/fake scores for overlapping patches.

Reference: Isola P, Zhu JY, Zhou T, Efros AA. Image-to-image translation with conditional
adversarial networks (pix2pix). CVPR 2017 — ``C64-C128-C256…`` blocks of 4×4 stride-2
convolutions with LeakyReLU(0.2), no normalisation on the first block, and a 1-channel
convolution head; each output value scores one receptive field (a "patch") of the input.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medrestore.models.blocks import NormKind, SpatialNdim, check_input, norm_layer, require


@dataclasses.dataclass(frozen=True)
class PatchDiscriminatorConfig:
    """Options of :class:`PatchDiscriminator`.

    Attributes:
        spatial_ndim: 2 or 3.
        in_channels: channels of the judged image.
        base_channels: feature maps of the first block, doubled per block (capped at 8×).
        layers: stride-2 blocks (receptive field 4·2^layers − 2 voxels for 3 layers: 70).
        norm: normalisation after every block but the first.
    """

    spatial_ndim: SpatialNdim = 2
    in_channels: int = 1
    base_channels: int = 32
    layers: int = 3
    norm: NormKind = "instance"

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "patch-discriminator", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        require(self.in_channels >= 1 and self.base_channels >= 1, "patch-discriminator", "channels must be >= 1")
        require(1 <= self.layers <= 6, "patch-discriminator", f"layers must be in 1..6, got {self.layers}")


class PatchDiscriminator(nn.Module):
    """``(N, in_channels, *S) → (N, 1, *S')``, one unbounded logit per patch (``S' ≈ S / 2^layers``).

    Example:
        >>> critic = PatchDiscriminator(PatchDiscriminatorConfig(base_channels=8, layers=2))
        >>> critic(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(self, config: PatchDiscriminatorConfig = PatchDiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        self.spatial_ndim = config.spatial_ndim
        conv = nn.Conv2d if config.spatial_ndim == 2 else nn.Conv3d
        layers: list[nn.Module] = []
        channels, width = config.in_channels, config.base_channels
        for index in range(config.layers):
            layers.append(conv(channels, width, 4, stride=2, padding=1, bias=index == 0 or config.norm == "none"))
            if index > 0:
                layers.append(norm_layer(config.norm, config.spatial_ndim, width))
            layers.append(nn.LeakyReLU(0.2))
            channels, width = width, min(width * 2, config.base_channels * 8)
        layers.append(conv(channels, 1, 3, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, C, *S)`` real float → ``(N, 1, *S')`` logits."""
        check_input(image, self.spatial_ndim, self.config.in_channels, "patch-discriminator")
        return self.layers(image)
