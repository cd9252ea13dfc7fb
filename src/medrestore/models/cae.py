"""Convolutional auto-encoder (CAE): a stride-2 convolutional encoder and a transposed-convolution decoder.

The auto-encoder of the Aizu OCT study (seed 004; after Masci, Meier, Cireşan & Schmidhuber,
"Stacked convolutional auto-encoders for hierarchical feature extraction", ICANN 2011): every
encoder layer halves the image with a stride-2 ``k × k`` convolution and a ReLU
(``28×28×1 → 14×14×32 → …`` in the study's figure), and the decoder mirrors it with stride-2
transposed convolutions whose ``output_padding = 1`` restores the exact doubled size.

There are no skip connections: everything passes through the bottleneck at
``1/2^L`` of the resolution, which is why the study found the CAE blurrier than SRCNN. The
study's fully connected latent layer is left out so that any image size can be processed (a
dense layer fixes the input size); the bottleneck is the last encoder feature map.

Sizes that are not multiples of ``2^L`` are reflect-padded before the encoder and cropped back.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from medrestore.models.blocks import ImageToImageModel, check_input, crop_spatial, pad_to_multiple, require


@dataclasses.dataclass(frozen=True)
class CAEConfig:
    """Options of :class:`CAE`.

    Attributes:
        spatial_ndim: 2 (images only).
        channels: image channels, in and out.
        features: feature maps of the encoder layers (each halves the size); the decoder mirrors them.
        kernel_size: odd kernel size of every (transposed) convolution.
        output_activation: ``none`` (z-scored data) or ``sigmoid`` (data in [0, 1], as in the study).
    """

    spatial_ndim: Literal[2] = 2
    channels: int = 1
    features: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 3
    output_activation: Literal["none", "sigmoid"] = "none"

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "cae", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.channels >= 1, "cae", f"channels must be at least 1, got {self.channels}")
        require(len(self.features) >= 1, "cae", "features needs at least one encoder layer")
        require(all(count >= 1 for count in self.features), "cae", f"features must be positive, got {self.features}")
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "cae", f"kernel_size must be odd, got {self.kernel_size}")
        require(self.output_activation in ("none", "sigmoid"), "cae", f"unknown output_activation {self.output_activation!r}")


class CAE(ImageToImageModel):
    """Convolutional auto-encoder ``(N, channels, H, W) → (N, channels, H, W)``.

    Encoder: ``L`` × (``k × k`` conv, stride 2, padding ``k // 2`` → ReLU). Decoder: ``L`` ×
    (``k × k`` transposed conv, stride 2, padding ``k // 2``, output padding 1), ReLU after all
    but the last, then the output activation.

    Example:
        >>> net = CAE(CAEConfig(features=(4, 8)))
        >>> net(torch.zeros(2, 1, 37, 45)).shape
        torch.Size([2, 1, 37, 45])
    """

    def __init__(self, config: CAEConfig = CAEConfig()) -> None:
        super().__init__()
        self.config = config
        size, pad = config.kernel_size, config.kernel_size // 2
        widths = (config.channels, *config.features)
        encoder: list[nn.Module] = []
        for index in range(len(config.features)):
            encoder += [nn.Conv2d(widths[index], widths[index + 1], size, stride=2, padding=pad), nn.ReLU()]
        decoder: list[nn.Module] = []
        for index in reversed(range(len(config.features))):
            decoder.append(nn.ConvTranspose2d(widths[index + 1], widths[index], size, stride=2, padding=pad, output_padding=1))
            if index > 0:
                decoder.append(nn.ReLU())
        if config.output_activation == "sigmoid":
            decoder.append(nn.Sigmoid())
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, channels, H, W)`` float → ``(N, channels, H, W)``."""
        check_input(image, 2, self.config.channels, "cae")
        spatial_shape = tuple(image.shape[2:])
        padded, start = pad_to_multiple(image, 2 ** len(self.config.features), 2)
        return crop_spatial(self.decoder(self.encoder(padded)), start, spatial_shape)
