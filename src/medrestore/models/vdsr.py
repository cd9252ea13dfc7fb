"""VDSR: a very deep residual network refining a bicubic up-sampling.

Reference: Kim, Lee & Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016 (20 layers of 3×3 convolutions with 64 maps and ReLU, zero padding, the
interpolated input added to the output: the network learns only the residual).

``(N, C, *S) → (N, C, *S·scale)``: the input is first interpolated onto the grid ``scale``
times finer with Keys' bicubic kernel (:func:`~medrestore.physics.blur.upsample`, block-centre
geometry, as the gamma-camera binning assumes), then
``y = up(x) + conv(ReLU(conv(… ReLU(conv(up(x))))))`` with ``depth`` convolutions. Every
convolution runs on the *fine* grid, so the cost grows with the output size (``scale²`` times
an input-resolution network of the same depth). ``scale = 1`` makes it a residual
refinement of an image already on its target grid.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as functional

from medrestore.models.blocks import ImageToImageModel, SpatialNdim, check_input, conv_stack, require
from medrestore.physics.blur import upsample


@dataclasses.dataclass(frozen=True)
class VDSRConfig:
    """Options of :class:`VDSR`.

    Attributes:
        spatial_ndim: 2 (images) or 3 (volumes).
        channels: image channels, in and out.
        scale: bicubic up-sampling factor before the residual network (1: none).
        depth: number of convolutions (20 in the paper, at least 2).
        width: feature maps of the hidden layers (64 in the paper).
        fold: space-to-depth factor ``f`` (2-D): the residual network runs on the image's ``f × f`` blocks folded
            into ``channels · f²`` maps (pixel unshuffle, Shi et al. CVPR 2016) and unfolds its output back, so it
            costs ``f²`` times less per output pixel; the image is reflect-padded to a multiple of ``f`` and
            cropped back. 1: none (the paper's network).
    """

    spatial_ndim: SpatialNdim = 2
    channels: int = 1
    scale: int = 2
    depth: int = 20
    width: int = 64
    fold: int = 1

    def __post_init__(self) -> None:
        require(self.spatial_ndim in (2, 3), "vdsr", f"spatial_ndim must be 2 or 3, got {self.spatial_ndim}")
        require(self.channels >= 1, "vdsr", f"channels must be at least 1, got {self.channels}")
        require(self.scale >= 1, "vdsr", f"scale must be at least 1, got {self.scale}")
        require(self.depth >= 2, "vdsr", f"depth must be at least 2, got {self.depth}")
        require(self.width >= 1, "vdsr", f"width must be at least 1, got {self.width}")
        require(self.fold >= 1, "vdsr", f"fold must be at least 1, got {self.fold}")
        require(self.fold == 1 or self.spatial_ndim == 2, "vdsr", "fold applies to 2-D images")

    @property
    def receptive_field(self) -> int:
        """Width of the fine-grid region one output sample depends on: ``2·depth + 1`` (×``fold`` folded)."""
        return (2 * self.depth + 1) * self.fold


class VDSR(ImageToImageModel):
    """VDSR ``(N, channels, *S) → (N, channels, *S·scale)`` (module docstring).

    Example:
        >>> net = VDSR(VDSRConfig(scale=2, depth=3, width=4))
        >>> net(torch.zeros(1, 1, 16, 20)).shape
        torch.Size([1, 1, 32, 40])
    """

    def __init__(self, config: VDSRConfig = VDSRConfig()) -> None:
        super().__init__()
        self.config = config
        folded = config.channels * config.fold**2
        widths = (folded, *([config.width] * (config.depth - 1)), folded)
        self.layers = conv_stack(config.spatial_ndim, widths, (3,) * config.depth)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, channels, *S)`` real float → ``(N, channels, *S·scale)``."""
        check_input(image, self.spatial_ndim, self.config.channels, "vdsr")
        if self.config.scale > 1:
            image = upsample(image, self.config.scale, "bicubic", self.spatial_ndim)
        fold = self.config.fold
        if fold == 1:
            return image + self.layers(image)
        height, width = image.shape[-2:]
        padded = functional.pad(image, (0, -width % fold, 0, -height % fold), mode="reflect" if min(height, width) > fold else "replicate")
        residual = functional.pixel_shuffle(self.layers(functional.pixel_unshuffle(padded, fold)), fold)
        return image + residual[..., :height, :width]
