"""The fastMRI-style U-Net, 2-D or 3-D from one implementation.

Reference: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015; the variant of Zbontar et al., "fastMRI: An Open Dataset and
Benchmarks for Accelerated MRI", 2018 (two 3×3 conv + instance norm + LeakyReLU(0.2) per
block, average-pool down-sampling, transposed-conv up-sampling, skip concatenation, 1×1 head).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from medrestore.core.errors import InputError
from medrestore.models.blocks import (
    ImageToImageModel,
    ConvBlock,
    NormKind,
    SpatialNdim,
    TransposeConvBlock,
    check_input,
    conv_layer,
    crop_spatial,
    downsample,
    pad_to_multiple,
    require,
)


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Options of :class:`UNet`.

    Attributes:
        spatial_ndim: 2 (images) or 3 (volumes).
        in_channels: input channels (2 for complex data in real/imaginary form).
        out_channels: output channels.
        base_channels: feature maps of the first block; doubled at every down-sampling.
        depth: number of 2× down-samplings (the bottleneck sees ``size / 2**depth``).
        norm: ``"instance"`` (fastMRI), ``"batch"`` or ``"none"``.
        residual: predict a correction: ``output = input[:, :out_channels] + net(input)`` (needs
            ``in_channels >= out_channels``; extra input channels are conditioning, e.g. a σ map).
        dropout: channel-dropout probability after each convolution.
    """

    spatial_ndim: SpatialNdim = 2
    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 32
    depth: int = 4
    norm: NormKind = "instance"
    residual: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "unet", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        for name in ("in_channels", "out_channels", "base_channels", "depth"):
            require(getattr(self, name) >= 1, "unet", f"{name} must be at least 1, got {getattr(self, name)}")
        require(self.norm in ("instance", "batch", "none"), "unet", f"unknown norm {self.norm!r}")
        require(0.0 <= self.dropout < 1.0, "unet", f"dropout must be in [0, 1), got {self.dropout}")
        require(
            not self.residual or self.in_channels >= self.out_channels,
            "unet",
            f"residual=True needs in_channels >= out_channels, got {self.in_channels} and {self.out_channels}",
        )


class UNet(ImageToImageModel):
    """U-Net mapping ``(N, in_channels, *S) → (N, out_channels, *S)`` for any spatial size ``S``.

    Sizes that are not multiples of ``2**depth`` are reflect-padded (split evenly between both
    ends) before the encoder and cropped back after the head, so the output is aligned with the
    input. With ``residual=True`` the network learns a correction: ``x̂ = x + f(x)``.

    Example:
        >>> net = UNet(UNetConfig(base_channels=4, depth=2))
        >>> net(torch.zeros(1, 1, 37, 45)).shape
        torch.Size([1, 1, 37, 45])
    """

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        dims, norm, dropout = config.spatial_ndim, config.norm, config.dropout
        channels = config.base_channels
        self.encoder = nn.ModuleList([ConvBlock(dims, config.in_channels, channels, norm, dropout)])
        for _ in range(config.depth - 1):
            self.encoder.append(ConvBlock(dims, channels, channels * 2, norm, dropout))
            channels *= 2
        self.bottleneck = ConvBlock(dims, channels, channels * 2, norm, dropout)
        self.upsamplers = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for _ in range(config.depth):
            self.upsamplers.append(TransposeConvBlock(dims, channels * 2, channels, norm))
            self.decoder.append(ConvBlock(dims, channels * 2, channels, norm, dropout))
            channels //= 2
        self.head = conv_layer(dims, config.base_channels, config.out_channels, 1, bias=True)

    def _check_bottleneck(self, padded_shape: tuple[int, ...]) -> None:
        """Instance norm needs more than one sample per channel at the bottleneck."""
        bottleneck = tuple(size // 2**self.config.depth for size in padded_shape)
        if self.config.norm == "instance" and math.prod(bottleneck) < 2:
            raise InputError(
                None,
                f"unet with depth {self.config.depth} reduces {padded_shape} to {bottleneck} at the bottleneck; "
                "instance norm needs at least 2 samples there (use a larger input, a smaller depth or another norm)",
            )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, *S)`` float → ``(N, out_channels, *S)``."""
        check_input(image, self.spatial_ndim, self.in_channels, "unet")
        spatial_shape = tuple(image.shape[2:])
        features, start = pad_to_multiple(image, 2**self.config.depth, self.spatial_ndim)
        self._check_bottleneck(tuple(features.shape[2:]))
        skips = []
        for block in self.encoder:
            features = block(features)
            skips.append(features)
            features = downsample(features, self.spatial_ndim)
        features = self.bottleneck(features)
        for upsample, block in zip(self.upsamplers, self.decoder):
            features = torch.cat([upsample(features), skips.pop()], dim=1)
            features = block(features)
        output = crop_spatial(self.head(features), start, spatial_shape)
        return image[:, : self.config.out_channels] + output if self.config.residual else output
