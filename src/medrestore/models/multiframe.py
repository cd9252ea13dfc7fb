"""Multi-frame denoiser: several noisy frames of one location stacked as channels → one clean frame.

When a scanner acquires a few repeated or neighbouring B-scans, their speckle is largely
independent while the anatomy is shared. The model stacks the ``frames`` B-scans as input
channels (the frame to restore first, its neighbours after) and predicts a correction of their
mean with a :class:`~medrestore.models.resunet.ResUNet` body::

    x̂ = mean_f(y_f) + R([y_1, …, y_F])

The mean alone already divides the speckle variance by up to ``F``; the network removes what is
left and undoes the blur of small misalignments between frames. Stacking a burst of frames as
input channels follows burst denoising (Mildenhall et al., "Burst denoising with kernel
prediction networks", CVPR 2018).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from medrestore.models.blocks import ImageToImageModel, check_input, require
from medrestore.models.resunet import ResUNet, ResUNetConfig


@dataclasses.dataclass(frozen=True)
class MultiFrameConfig:
    """Options of :class:`MultiFrameDenoiser`.

    Attributes:
        spatial_ndim: 2 (images only).
        frames: number of stacked input frames ``F``.
        widths, blocks, unshuffle: the :class:`~medrestore.models.resunet.ResUNet` body.
    """

    spatial_ndim: Literal[2] = 2
    frames: int = 5
    widths: tuple[int, ...] = (32, 64, 128)
    blocks: tuple[int, ...] = (1, 1, 2)
    unshuffle: int = 2

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "multiframe", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.frames >= 1, "multiframe", f"frames must be at least 1, got {self.frames}")

    def body(self) -> ResUNetConfig:
        """The ResUNet options of the correction branch (``frames`` in, 1 out, no residual)."""
        return ResUNetConfig(
            in_channels=self.frames, out_channels=1, widths=self.widths, blocks=self.blocks, unshuffle=self.unshuffle, residual=False
        )


class MultiFrameDenoiser(ImageToImageModel):
    """``(N, frames, H, W)`` stacked frames → ``(N, 1, H, W)``: frame mean plus a learnt correction.

    Example:
        >>> net = MultiFrameDenoiser(MultiFrameConfig(frames=3, widths=(4, 8), blocks=(1, 1)))
        >>> net(torch.zeros(2, 3, 37, 45)).shape
        torch.Size([2, 1, 37, 45])
    """

    def __init__(self, config: MultiFrameConfig = MultiFrameConfig()) -> None:
        super().__init__()
        self.config = config
        self.body = ResUNet(config.body())

    @property
    def in_channels(self) -> int:
        return self.config.frames

    @property
    def out_channels(self) -> int:
        return 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, frames, H, W)`` float → ``(N, 1, H, W)``."""
        check_input(frames, 2, self.config.frames, "multiframe")
        return frames.mean(dim=1, keepdim=True) + self.body.correction(frames)
