"""DnCNN: a plain deep CNN that learns the noise (residual learning) for Gaussian denoising.

Reference: Zhang, Zuo, Chen, Meng & Zhang, "Beyond a Gaussian Denoiser: Residual Learning of
Deep CNN for Image Denoising", IEEE TIP 26(7), 2017.

Layers: ``conv(3×3) → ReLU``, then ``depth − 2`` × ``conv(3×3) → BN → ReLU``, then
``conv(3×3)``; zero 'same' padding keeps the size. With residual learning the network output
``R(y)`` estimates the noise ``v = y − x`` and the model returns ``x̂ = y − R(y)``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medrestore.models.blocks import ImageToImageModel, SpatialNdim, check_input, conv_layer, norm_layer, require


@dataclasses.dataclass(frozen=True)
class DnCNNConfig:
    """Options of :class:`DnCNN`.

    Attributes:
        spatial_ndim: 2 (images) or 3 (volumes).
        in_channels: input channels.
        out_channels: output channels (must equal ``in_channels`` when ``residual``).
        depth: number of convolution layers (17 in the paper for known noise level).
        width: feature maps of the hidden layers (64 in the paper).
        batch_norm: batch normalisation in the hidden layers.
        residual: return ``y − R(y)`` (the network learns the noise) instead of ``R(y)``.
    """

    spatial_ndim: SpatialNdim = 2
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 17
    width: int = 64
    batch_norm: bool = True
    residual: bool = True

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "dncnn", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        for name in ("in_channels", "out_channels", "width"):
            require(getattr(self, name) >= 1, "dncnn", f"{name} must be at least 1, got {getattr(self, name)}")
        require(self.depth >= 2, "dncnn", f"depth must be at least 2 (first and last layer), got {self.depth}")
        require(
            not self.residual or self.in_channels == self.out_channels,
            "dncnn",
            f"residual=True needs in_channels == out_channels, got {self.in_channels} and {self.out_channels}",
        )


class DnCNN(ImageToImageModel):
    """DnCNN mapping ``(N, in_channels, *S) → (N, out_channels, *S)``; receptive field ``2·depth + 1``.

    Example:
        >>> net = DnCNN(DnCNNConfig(depth=4, width=8))
        >>> net(torch.zeros(2, 1, 37, 45)).shape
        torch.Size([2, 1, 37, 45])
    """

    def __init__(self, config: DnCNNConfig = DnCNNConfig()) -> None:
        super().__init__()
        self.config = config
        dims, width = config.spatial_ndim, config.width
        layers: list[nn.Module] = [conv_layer(dims, config.in_channels, width, 3, bias=True), nn.ReLU()]
        for _ in range(config.depth - 2):
            layers.append(conv_layer(dims, width, width, 3, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(norm_layer("batch", dims, width))
            layers.append(nn.ReLU())
        layers.append(conv_layer(dims, width, config.out_channels, 3, bias=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, *S)`` float → ``(N, out_channels, *S)``: ``y − R(y)`` when residual, else ``R(y)``."""
        check_input(image, self.spatial_ndim, self.in_channels, "dncnn")
        estimate = self.layers(image)
        return image - estimate if self.config.residual else estimate
