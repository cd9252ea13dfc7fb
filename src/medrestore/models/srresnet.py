"""SRResNet: the residual super-resolution network of SRGAN's generator, trained without the GAN.

Reference: Ledig, Theis, Huszár, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang &
Shi, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
CVPR 2017 (figure 4: ``k9n64s1`` head, 16 residual blocks ``k3n64s1``, two ×2 sub-pixel
up-sampling stages, ``k9n3s1`` output).

Layout for ``(N, C_in, H, W) → (N, C_out, s·H, s·W)`` with ``s = scale``:

* **head**: 9×9 convolution to ``width`` maps, PReLU;
* **trunk**: ``blocks`` residual blocks ``x + BN(conv3×3(PReLU(BN(conv3×3(x)))))``, then
  ``BN(conv3×3(·))`` and a long skip from the head's output (all at the input resolution, so
  the cost grows with the *input* size);
* **up-sampling**: per factor ``f`` of ``scale`` (2s first, then a 3 if needed):
  ``conv3×3(width → f²·width)``, pixel shuffle (Shi et al., "Real-Time Single Image and
  Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network",
  CVPR 2016), PReLU;
* **tail**: 9×9 convolution to ``out_channels``.

``batch_norm=False`` drops the normalisations (and gives the convolutions biases), as EDSR
(Lim et al., CVPRW 2017) recommends; ``upsampled_skip=True`` adds the bicubic interpolation of
the input to the output (:func:`~medrestore.physics.blur.upsample`), so the network learns only
the detail bicubic misses. The paper's network is ``SRResNetConfig()``: 1,527,809 parameters
for one channel.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from medrestore.models.blocks import ImageToImageModel, check_input, conv_layer, require
from medrestore.physics.blur import upsample

SUPPORTED_SCALES = (1, 2, 3, 4, 6, 8)


@dataclasses.dataclass(frozen=True)
class SRResNetConfig:
    """Options of :class:`SRResNet`.

    Attributes:
        spatial_ndim: 2 (pixel shuffle is two-dimensional).
        in_channels: input image channels.
        out_channels: output image channels.
        scale: output size / input size: 1, 2, 3, 4, 6 or 8 (products of one 3 and 2s).
        width: feature maps throughout (64 in the paper).
        blocks: residual blocks (16 in the paper).
        head_kernel: odd kernel size of the first and last convolutions (9 in the paper).
        batch_norm: batch normalisation in the residual blocks and after the trunk.
        upsampled_skip: add the bicubic interpolation of the input to the output
            (needs ``in_channels == out_channels``).
    """

    spatial_ndim: Literal[2] = 2
    in_channels: int = 1
    out_channels: int = 1
    scale: int = 4
    width: int = 64
    blocks: int = 16
    head_kernel: int = 9
    batch_norm: bool = True
    upsampled_skip: bool = False

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "srresnet", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.in_channels >= 1 and self.out_channels >= 1, "srresnet", "channels must be at least 1")
        require(self.scale in SUPPORTED_SCALES, "srresnet", f"scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        require(self.width >= 1, "srresnet", f"width must be at least 1, got {self.width}")
        require(self.blocks >= 0, "srresnet", f"blocks must be >= 0, got {self.blocks}")
        require(self.head_kernel >= 1 and self.head_kernel % 2 == 1, "srresnet", f"head_kernel must be odd, got {self.head_kernel}")
        require(
            not self.upsampled_skip or self.in_channels == self.out_channels,
            "srresnet",
            "upsampled_skip needs in_channels == out_channels",
        )

    @property
    def upsampling_factors(self) -> tuple[int, ...]:
        """The pixel-shuffle factors whose product is ``scale`` (2s, then a 3): 4 → (2, 2), 6 → (2, 3)."""
        factors, remainder = [], self.scale
        while remainder % 2 == 0:
            factors.append(2)
            remainder //= 2
        if remainder == 3:
            factors.append(3)
        return tuple(factors)


def _norm(config: SRResNetConfig) -> nn.Module:
    return nn.BatchNorm2d(config.width) if config.batch_norm else nn.Identity()


class ResidualBlock(nn.Module):
    """``x + BN(conv3×3(PReLU(BN(conv3×3(x)))))``: ``(N, width, H, W) → (N, width, H, W)``."""

    def __init__(self, config: SRResNetConfig) -> None:
        super().__init__()
        bias = not config.batch_norm
        self.layers = nn.Sequential(
            conv_layer(2, config.width, config.width, 3, bias=bias),
            _norm(config),
            nn.PReLU(config.width),
            conv_layer(2, config.width, config.width, 3, bias=bias),
            _norm(config),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.layers(features)


class SRResNet(ImageToImageModel):
    """SRResNet ``(N, in_channels, H, W) → (N, out_channels, scale·H, scale·W)`` (module docstring).

    Example:
        >>> net = SRResNet(SRResNetConfig(width=8, blocks=2))
        >>> net(torch.zeros(1, 1, 16, 20)).shape
        torch.Size([1, 1, 64, 80])
    """

    def __init__(self, config: SRResNetConfig = SRResNetConfig()) -> None:
        super().__init__()
        self.config = config
        width, bias = config.width, not config.batch_norm
        self.head = nn.Sequential(conv_layer(2, config.in_channels, width, config.head_kernel), nn.PReLU(width))
        self.trunk = nn.Sequential(*(ResidualBlock(config) for _ in range(config.blocks)))
        self.trunk_end = nn.Sequential(conv_layer(2, width, width, 3, bias=bias), _norm(config))
        stages: list[nn.Module] = []
        for factor in config.upsampling_factors:
            stages += [conv_layer(2, width, width * factor**2, 3), nn.PixelShuffle(factor), nn.PReLU(width)]
        self.upsampling = nn.Sequential(*stages)
        self.tail = conv_layer(2, width, config.out_channels, config.head_kernel)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` real float → ``(N, out_channels, scale·H, scale·W)``."""
        check_input(image, 2, self.config.in_channels, "srresnet")
        head = self.head(image)
        features = head + self.trunk_end(self.trunk(head))
        output = self.tail(self.upsampling(features))
        if self.config.upsampled_skip:
            output = output + upsample(image, self.config.scale, "bicubic", 2)
        return output
