"""Network building blocks shared by the architectures, written once for 2-D and 3-D.

Every block takes ``(N, C, *spatial)`` real float tensors with ``len(spatial) == spatial_ndim``
(2 or 3); the layer classes (``Conv2d``/``Conv3d``, norms, dropout) are chosen from
``spatial_ndim`` so one implementation serves both.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as functional
from torch import nn

from medrestore.core.errors import ConfigError, InputError

SpatialNdim = Literal[2, 3]
NormKind = Literal["instance", "batch", "none"]


def require(condition: bool, owner: str, problem: str) -> None:
    """Raise :class:`ConfigError` ``"<owner>: <problem>"`` unless ``condition`` holds (config checks)."""
    if not condition:
        raise ConfigError(f"{owner}: {problem}")


def conv_layer(
    spatial_ndim: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    bias: bool = True,
    padding_mode: str = "zeros",
) -> nn.Module:
    """A stride-1 convolution with 'same' padding (odd ``kernel_size``): ``(N, Cin, *S) → (N, Cout, *S)``."""
    layer = nn.Conv2d if spatial_ndim == 2 else nn.Conv3d
    return layer(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias, padding_mode=padding_mode)


def transpose_conv_layer(spatial_ndim: int, in_channels: int, out_channels: int, bias: bool) -> nn.Module:
    """Kernel-2, stride-2 transposed convolution doubling every spatial size: ``(N, Cin, *S) → (N, Cout, *2S)``."""
    layer = nn.ConvTranspose2d if spatial_ndim == 2 else nn.ConvTranspose3d
    return layer(in_channels, out_channels, kernel_size=2, stride=2, bias=bias)


def strided_conv_layer(spatial_ndim: int, in_channels: int, out_channels: int) -> nn.Module:
    """Kernel-2, stride-2 convolution halving every spatial size: ``(N, Cin, *2S) → (N, Cout, *S)``."""
    layer = nn.Conv2d if spatial_ndim == 2 else nn.Conv3d
    return layer(in_channels, out_channels, kernel_size=2, stride=2)


def shuffle_voxels(tensor: torch.Tensor, factor: int, spatial_ndim: int, inverse: bool = False) -> torch.Tensor:
    """Pixel unshuffle (``inverse=False``) or shuffle in 2-D or 3-D (Shi et al., CVPR 2016).

    Unshuffle: ``(N, C, *u·S) → (N, C·u^d, *S)``; channel ``c·u^d + k`` holds the samples at
    offset ``k`` (row-major over the ``d`` axes) of every ``u^d`` block of channel ``c``, exactly
    :func:`torch.nn.functional.pixel_unshuffle` in 2-D. Shuffle is its inverse.
    """
    u, d = factor, spatial_ndim
    if d == 2:
        return functional.pixel_shuffle(tensor, u) if inverse else functional.pixel_unshuffle(tensor, u)
    n, channels, *sizes = tensor.shape
    if inverse:  # (N, C, u, u, u, S0, S1, S2) → (N, C, S0, u, S1, u, S2, u)
        blocks = tensor.reshape(n, channels // u**3, u, u, u, *sizes).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return blocks.reshape(n, channels // u**3, *[size * u for size in sizes])
    # (N, C, S0, u, S1, u, S2, u) → (N, C, u, u, u, S0, S1, S2)
    blocks = tensor.reshape(n, channels, *[part for size in sizes for part in (size // u, u)]).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return blocks.reshape(n, channels * u**3, *[size // u for size in sizes])


class SpaceToDepth(nn.Module):
    """Pixel unshuffle in 2-D or 3-D as a module: ``(N, C, *u·S) → (N, C·u^d, *S)`` (:func:`shuffle_voxels`)."""

    inverse = False

    def __init__(self, factor: int, spatial_ndim: int = 2) -> None:
        super().__init__()
        self.factor, self.spatial_ndim = factor, spatial_ndim

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return shuffle_voxels(tensor, self.factor, self.spatial_ndim, self.inverse)


class DepthToSpace(SpaceToDepth):
    """Pixel shuffle, the inverse of :class:`SpaceToDepth`: ``(N, C·u^d, *S) → (N, C, *u·S)``."""

    inverse = True


def norm_layer(kind: str, spatial_ndim: int, channels: int) -> nn.Module:
    """Normalisation over ``channels``: instance (no affine, as fastMRI), batch (affine), or none (identity)."""
    if kind == "instance":
        return (nn.InstanceNorm2d if spatial_ndim == 2 else nn.InstanceNorm3d)(channels)
    if kind == "batch":
        return (nn.BatchNorm2d if spatial_ndim == 2 else nn.BatchNorm3d)(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected instance, batch or none")


def dropout_layer(spatial_ndim: int, probability: float) -> nn.Module:
    """Channel dropout (whole feature maps, Tompson et al. 2015); identity when ``probability == 0``."""
    if probability == 0.0:
        return nn.Identity()
    return (nn.Dropout2d if spatial_ndim == 2 else nn.Dropout3d)(probability)


def check_input(tensor: torch.Tensor, spatial_ndim: int, channels: int, model_name: str) -> None:
    """Refuse anything but a real float ``(N, channels, *spatial)`` tensor with ``spatial_ndim`` spatial axes."""
    if tensor.ndim != spatial_ndim + 2:
        raise InputError(
            None,
            f"{model_name} expects (N, C, {', '.join('XYZ'[:spatial_ndim])}) input with {spatial_ndim} spatial axes, "
            f"got shape {tuple(tensor.shape)}",
        )
    if tensor.is_complex() or not tensor.is_floating_point():
        raise InputError(None, f"{model_name} expects a real floating-point tensor, got {tensor.dtype}")
    if tensor.shape[1] != channels:
        raise InputError(None, f"{model_name} expects {channels} input channel(s), got {tensor.shape[1]}")


def pad_to_multiple(tensor: torch.Tensor, multiple: int, spatial_ndim: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Pad every spatial axis of ``(N, C, *spatial)`` up to a multiple of ``multiple``.

    The padding is split evenly between both ends (one more sample after when odd) and uses
    reflection, which keeps image statistics at the border; an axis too short to reflect
    (padding ≥ size) is padded by replication instead.

    Returns:
        the padded tensor and the number of samples added *before* each spatial axis (in axis
        order), which :func:`crop_spatial` uses to cut the original region back out.
    """
    sizes = tensor.shape[-spatial_ndim:]
    before: list[int] = []
    after: list[int] = []
    for size in sizes:
        total = (-size) % multiple
        before.append(total // 2)
        after.append(total - total // 2)
    if not any(before) and not any(after):
        return tensor, tuple(before)
    # F.pad lists pads from the last axis backwards: (last_before, last_after, previous_before, ...).
    pads = [amount for pair in zip(reversed(before), reversed(after)) for amount in pair]
    can_reflect = all(b < size and a < size for b, a, size in zip(before, after, sizes))
    mode = "reflect" if can_reflect else "replicate"
    return functional.pad(tensor, pads, mode=mode), tuple(before)


def crop_spatial(tensor: torch.Tensor, start: tuple[int, ...], shape: tuple[int, ...]) -> torch.Tensor:
    """The region ``[start, start + shape)`` of the trailing spatial axes of ``(N, C, *spatial)``."""
    index = (slice(None), slice(None)) + tuple(slice(s, s + n) for s, n in zip(start, shape))
    return tensor[index]


class ConvBlock(nn.Module):
    """Two (3×3 conv → norm → LeakyReLU(0.2) → channel dropout) layers, as in the fastMRI U-Net.

    Shapes: ``(N, in_channels, *S) → (N, out_channels, *S)``. Convolutions carry a bias only
    when ``norm == "none"`` (a bias before a normalisation is cancelled by it).

    Reference: Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018.
    """

    def __init__(self, spatial_ndim: int, in_channels: int, out_channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = norm == "none"
        self.layers = nn.Sequential(
            conv_layer(spatial_ndim, in_channels, out_channels, 3, bias=bias),
            norm_layer(norm, spatial_ndim, out_channels),
            nn.LeakyReLU(negative_slope=0.2),
            dropout_layer(spatial_ndim, dropout),
            conv_layer(spatial_ndim, out_channels, out_channels, 3, bias=bias),
            norm_layer(norm, spatial_ndim, out_channels),
            nn.LeakyReLU(negative_slope=0.2),
            dropout_layer(spatial_ndim, dropout),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class TransposeConvBlock(nn.Module):
    """Up-sampling by 2: (2×2 stride-2 transposed conv → norm → LeakyReLU(0.2)).

    Shapes: ``(N, in_channels, *S) → (N, out_channels, *2S)``.
    """

    def __init__(self, spatial_ndim: int, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            transpose_conv_layer(spatial_ndim, in_channels, out_channels, bias=norm == "none"),
            norm_layer(norm, spatial_ndim, out_channels),
            nn.LeakyReLU(negative_slope=0.2),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def downsample(features: torch.Tensor, spatial_ndim: int) -> torch.Tensor:
    """2× average pooling (kernel 2, stride 2) over the spatial axes: ``(N, C, *S) → (N, C, *S/2)``."""
    pool = functional.avg_pool2d if spatial_ndim == 2 else functional.avg_pool3d
    return pool(features, kernel_size=2, stride=2)


def conv_stack(
    spatial_ndim: int, widths: tuple[int, ...], kernel_sizes: tuple[int, ...], padding_mode: str = "zeros"
) -> nn.Sequential:
    """Plain convolutions ``widths[i] → widths[i+1]`` with kernel ``kernel_sizes[i]`` ('same' size),
    ReLU between them and none after the last (SRCNN, VDSR)."""
    layers: list[nn.Module] = []
    for index, kernel_size in enumerate(kernel_sizes):
        layers.append(conv_layer(spatial_ndim, widths[index], widths[index + 1], kernel_size, padding_mode=padding_mode))
        if index < len(kernel_sizes) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ImageToImageModel(nn.Module):
    """Base of catalogue models: exposes ``spatial_ndim``, ``in_channels``, ``out_channels`` and
    ``scale_factor`` from the model's frozen ``config`` (fields of the same names; ``scale`` for
    the last), which the trainer and predictor read without knowing the architecture."""

    config: Any

    @property
    def spatial_ndim(self) -> int:
        return int(self.config.spatial_ndim)

    @property
    def in_channels(self) -> int:
        """``config.in_channels``, or ``config.channels`` for models with one channel count in and out."""
        return int(getattr(self.config, "in_channels", None) or self.config.channels)

    @property
    def out_channels(self) -> int:
        """``config.out_channels``, or ``config.channels`` for models with one channel count in and out."""
        return int(getattr(self.config, "out_channels", None) or self.config.channels)

    @property
    def scale_factor(self) -> int:
        """Output size / input size on every spatial axis: the config's ``scale`` (super-resolution), else 1."""
        return int(getattr(self.config, "scale", 1))

