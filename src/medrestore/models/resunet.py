"""ResUNet: a fast residual U-Net for large 2-D scans (OCT B-scans) and 3-D volumes (MRI).

Design (what makes it fast on a CPU and strong on speckle):

* **space-to-depth stem** — a ``unshuffle × unshuffle`` pixel-unshuffle (Shi et al., CVPR 2016)
  turns ``(N, C, H, W)`` into ``(N, C·u², H/u, W/u)`` losslessly (``(N, C·u³, D/u, H/u, W/u)``
  for volumes), so every convolution runs at ``1/u^d`` of the voxels; a 3×3(×3) convolution maps
  it to ``widths[0]`` feature maps (the design of FFDNet, Zhang et al., IEEE TIP 2018);
* **encoder/decoder of residual blocks** — level ``l`` works at ``H / (u·2^l)`` with
  ``widths[l]`` maps; each residual block is ``x + conv3×3(ReLU(conv3×3(x)))`` without
  normalisation (Lim et al., "EDSR", CVPRW 2017); levels are linked by 2×2 stride-2 convolutions
  (down) and 2×2 stride-2 transposed convolutions (up) and the skip connections are *added*
  (cheaper than concatenation, as in LinkNet, Chaurasia & Culurciello 2017);
* **residual output** — a 3×3 convolution back to ``C·u^d`` maps and a pixel shuffle give the
  correction ``r``; with ``residual=True`` the model returns ``x[:, :out_channels] + r`` (the
  network learns the speckle or noise, as DnCNN learns the noise; Zhang et al., IEEE TIP 2017).
  Input channels beyond ``out_channels`` are conditioning, e.g. a constant σ map.

Displayed OCT intensities are log-compressed, so speckle — multiplicative in the linear
OCT signal — is additive in the stored values: learning the residual ``x̂ − y`` on the stored
scale is learning it in the log domain.

Any ``H × W`` (``D × H × W``) is accepted: the input is reflect-padded to a multiple of ``u · 2^(levels − 1)``
and the output cropped back (:func:`~medrestore.models.blocks.pad_to_multiple`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from medrestore.models.blocks import (
    DepthToSpace,
    ImageToImageModel,
    SpaceToDepth,
    check_input,
    conv_layer,
    crop_spatial,
    pad_to_multiple,
    require,
    strided_conv_layer,
    transpose_conv_layer,
)


@dataclasses.dataclass(frozen=True)
class ResUNetConfig:
    """Options of :class:`ResUNet`.

    Attributes:
        spatial_ndim: 2 (images) or 3 (volumes).
        in_channels: input channels.
        out_channels: output channels (at most ``in_channels`` when ``residual``: the extra input
            channels are conditioning).
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

    spatial_ndim: Literal[2, 3] = 2
    in_channels: int = 1
    out_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128)
    blocks: tuple[int, ...] = (1, 1, 2)
    unshuffle: int = 2
    residual: bool = True
    preserve_mean: bool = False

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "resunet", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
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
            not self.residual or self.in_channels >= self.out_channels,
            "resunet",
            f"residual=True needs in_channels >= out_channels, got {self.in_channels} and {self.out_channels}",
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
    """``x + conv3×3(ReLU(conv3×3(x)))`` at constant width: ``(N, C, *S) → (N, C, *S)``."""

    def __init__(self, channels: int, spatial_ndim: int = 2) -> None:
        super().__init__()
        self.first = conv_layer(spatial_ndim, channels, channels, 3)
        self.activation = nn.ReLU(inplace=True)
        self.second = conv_layer(spatial_ndim, channels, channels, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.second(self.activation(self.first(features)))


def _stage(channels: int, count: int, spatial_ndim: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels, spatial_ndim) for _ in range(count)))


class ResUNet(ImageToImageModel):
    """Residual U-Net with a pixel-unshuffle stem: ``(N, in_channels, *S) → (N, out_channels, *S)``.

    Example:
        >>> net = ResUNet(ResUNetConfig(widths=(4, 8), blocks=(1, 1)))
        >>> net(torch.zeros(2, 1, 37, 45)).shape
        torch.Size([2, 1, 37, 45])
    """

    def __init__(self, config: ResUNetConfig = ResUNetConfig()) -> None:
        super().__init__()
        self.config = config
        factor, widths, dims = config.unshuffle, config.widths, config.spatial_ndim
        self.stem = nn.Sequential(SpaceToDepth(factor, dims), conv_layer(dims, config.in_channels * factor**dims, widths[0], 3))
        self.encoder = nn.ModuleList(_stage(width, count, dims) for width, count in zip(widths[:-1], config.blocks[:-1]))
        self.downsamplers = nn.ModuleList(strided_conv_layer(dims, widths[i], widths[i + 1]) for i in range(len(widths) - 1))
        self.bottleneck = _stage(widths[-1], config.blocks[-1], dims)
        self.upsamplers = nn.ModuleList(transpose_conv_layer(dims, widths[i + 1], widths[i], bias=True) for i in range(len(widths) - 1))
        self.decoder = nn.ModuleList(_stage(width, count, dims) for width, count in zip(widths[:-1], config.blocks[:-1]))
        self.head = nn.Sequential(
            nn.ReLU(), conv_layer(dims, widths[0], config.out_channels * factor**dims, 3), DepthToSpace(factor, dims)
        )

    def correction(self, image: torch.Tensor) -> torch.Tensor:
        """The network branch alone, ``(N, in_channels, *S) → (N, out_channels, *S)`` (no residual add)."""
        spatial_shape = tuple(image.shape[2:])
        features, start = pad_to_multiple(image, self.config.size_multiple, self.config.spatial_ndim)
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
        """``(N, in_channels, *S)`` float → ``(N, out_channels, *S)``: ``x[:, :out_channels] + r(x)`` when
        residual, else ``r(x)`` (then mean-matched to the input in evaluation mode with ``preserve_mean``)."""
        check_input(image, self.config.spatial_ndim, self.config.in_channels, "resunet")
        output = self.correction(image)
        output = image[:, : self.config.out_channels] + output if self.config.residual else output
        if self.config.preserve_mean and not self.training:
            axes = tuple(range(2, output.ndim))
            output = output + (image.mean(dim=axes, keepdim=True) - output.mean(dim=axes, keepdim=True))
        return output
