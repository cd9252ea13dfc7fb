"""ResUNet: a fast residual U-Net for speckle reduction on large 2-D scans (OCT B-scans).

Design (what makes it fast on a CPU and strong on speckle):

* **space-to-depth stem** — a ``unshuffle × unshuffle`` pixel-unshuffle (Shi et al., CVPR 2016)
  turns ``(N, C, H, W)`` into ``(N, C·u², H/u, W/u)`` losslessly, so every convolution runs at
  ``1/u²`` of the pixels; a 3×3 convolution maps it to ``widths[0]`` feature maps;
* **encoder/decoder of residual blocks** — level ``l`` works at ``H / (u·2^l)`` with
  ``widths[l]`` maps; each residual block is ``x + conv3×3(ReLU(conv3×3(x)))`` without
  normalisation (Lim et al., "EDSR", CVPRW 2017); levels are linked by 2×2 stride-2 convolutions
  (down) and 2×2 stride-2 transposed convolutions (up) and the skip connections are *added*
  (cheaper than concatenation, as in LinkNet, Chaurasia & Culurciello 2017);
* **residual output** — a 3×3 convolution back to ``C·u²`` maps and a pixel shuffle give the
  correction ``r``; with ``residual=True`` the model returns ``x + r`` (the network learns the
  speckle, as DnCNN learns the noise; Zhang et al., IEEE TIP 2017).

Displayed OCT intensities are log-compressed, so speckle — multiplicative in the linear
OCT signal — is additive in the stored values: learning the residual ``x̂ − y`` on the stored
scale is learning it in the log domain.

Any ``H × W`` is accepted: the input is reflect-padded to a multiple of ``u · 2^(levels − 1)``
and the output cropped back (:func:`~medrestore.models.blocks.pad_to_multiple`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from medrestore.models.blocks import ImageToImageModel, check_input, crop_spatial, pad_to_multiple, require


@dataclasses.dataclass(frozen=True)
class ResUNetConfig:
    """Options of :class:`ResUNet`.

    Attributes:
        spatial_ndim: 2 (images only).
        in_channels: input channels.
        out_channels: output channels (must equal ``in_channels`` when ``residual``).
        widths: feature maps of each level, finest first (level 0 is at ``1/unshuffle`` resolution).
        blocks: residual blocks per level (encoder side; the decoder repeats them, the
            coarsest level's blocks form the bottleneck).
        unshuffle: space-to-depth factor of the stem (1 disables it).
        residual: return ``input + network(input)``.
        preserve_mean: in evaluation mode, shift each output image so that its mean equals the
            input's mean (per image and channel; needs ``in_channels == out_channels``).
            Denoising should not change the overall brightness of a scan; the shift removes a
            global offset the network may have learnt from a few training subjects. Training
            (``model.train()``) is unaffected, so the network still learns local intensity maps.
    """

    spatial_ndim: Literal[2] = 2
    in_channels: int = 1
    out_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128)
    blocks: tuple[int, ...] = (1, 1, 2)
    unshuffle: int = 2
    residual: bool = True
    preserve_mean: bool = False

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "resunet", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.in_channels >= 1 and self.out_channels >= 1, "resunet", "in_channels and out_channels must be >= 1")
        require(len(self.widths) >= 1, "resunet", "widths needs at least one level")
        require(all(width >= 1 for width in self.widths), "resunet", f"widths must be positive, got {self.widths}")
        require(
            len(self.blocks) == len(self.widths),
            "resunet",
            f"blocks needs one count per level ({len(self.widths)}), got {len(self.blocks)}",
        )
        require(all(count >= 0 for count in self.blocks), "resunet", f"blocks must be >= 0, got {self.blocks}")
        require(self.unshuffle >= 1, "resunet", f"unshuffle must be >= 1, got {self.unshuffle}")
        require(
            not self.residual or self.in_channels == self.out_channels,
            "resunet",
            f"residual=True needs in_channels == out_channels, got {self.in_channels} and {self.out_channels}",
        )
        require(
            not self.preserve_mean or self.in_channels == self.out_channels,
            "resunet",
            f"preserve_mean=True needs in_channels == out_channels, got {self.in_channels} and {self.out_channels}",
        )

    @property
    def size_multiple(self) -> int:
        """Spatial sizes are padded to a multiple of this: ``unshuffle · 2^(levels − 1)``."""
        return self.unshuffle * 2 ** (len(self.widths) - 1)


class ResidualBlock(nn.Module):
    """``x + conv3×3(ReLU(conv3×3(x)))`` at constant width: ``(N, C, H, W) → (N, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(channels, channels, 3, padding=1)
        self.activation = nn.ReLU(inplace=True)
        self.second = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.second(self.activation(self.first(features)))


def _stage(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels) for _ in range(count)))


class ResUNet(ImageToImageModel):
    """Residual U-Net with a pixel-unshuffle stem: ``(N, in_channels, H, W) → (N, out_channels, H, W)``.

    Example:
        >>> net = ResUNet(ResUNetConfig(widths=(4, 8), blocks=(1, 1)))
        >>> net(torch.zeros(2, 1, 37, 45)).shape
        torch.Size([2, 1, 37, 45])
    """

    def __init__(self, config: ResUNetConfig = ResUNetConfig()) -> None:
        super().__init__()
        self.config = config
        factor, widths = config.unshuffle, config.widths
        self.stem = nn.Sequential(nn.PixelUnshuffle(factor), nn.Conv2d(config.in_channels * factor**2, widths[0], 3, padding=1))
        self.encoder = nn.ModuleList(_stage(width, count) for width, count in zip(widths[:-1], config.blocks[:-1]))
        self.downsamplers = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(len(widths) - 1))
        self.bottleneck = _stage(widths[-1], config.blocks[-1])
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(len(widths) - 1))
        self.decoder = nn.ModuleList(_stage(width, count) for width, count in zip(widths[:-1], config.blocks[:-1]))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(widths[0], config.out_channels * factor**2, 3, padding=1), nn.PixelShuffle(factor)
        )

    def correction(self, image: torch.Tensor) -> torch.Tensor:
        """The network branch alone, ``(N, in_channels, H, W) → (N, out_channels, H, W)`` (no residual add)."""
        spatial_shape = tuple(image.shape[2:])
        features, start = pad_to_multiple(image, self.config.size_multiple, 2)
        features = self.stem(features)
        skips = []
        for stage, downsample in zip(self.encoder, self.downsamplers):
            features = stage(features)
            skips.append(features)
            features = downsample(features)
        features = self.bottleneck(features)
        for upsample, stage in zip(reversed(self.upsamplers), reversed(self.decoder)):
            features = stage(upsample(features) + skips.pop())
        return crop_spatial(self.head(features), start, spatial_shape)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` float → ``(N, out_channels, H, W)``: ``x + r(x)`` when residual, else ``r(x)``
        (then mean-matched to the input in evaluation mode with ``preserve_mean``)."""
        check_input(image, 2, self.config.in_channels, "resunet")
        output = self.correction(image)
        output = image + output if self.config.residual else output
        if self.config.preserve_mean and not self.training:
            output = output + (image.mean(dim=(2, 3), keepdim=True) - output.mean(dim=(2, 3), keepdim=True))
        return output
