"""U-Net with a VGG19 encoder (the seed's network): VGG19 conv layers, transposed-conv decoder.

Encoder: the 36 ``features`` layers of VGG19 (Simonyan & Zisserman, ICLR 2015) up to the last
ReLU, written out here with torchvision's module indices (conv 3×3 + ReLU; 2×2 max-pooling at
indices 4, 9, 18, 27), so that a torchvision ``vgg19`` state dict (``features.N.weight`` /
``features.N.bias``) loads by name. The outputs of the last ReLU of each block (indices 3, 8,
17, 26, 35; 64, 128, 256, 512, 512 channels at 1, 1/2, 1/4, 1/8, 1/16 resolution) are the
skips. Decoder (the seed's "UpSampling" stages): per level ConvTranspose2d(2×) → concatenate
the skip → [conv 3×3 → BatchNorm → ReLU → Dropout] ×2, then a 1×1 head.

Input adapter: a learned 1×1 convolution ``in_channels → 3`` (initialised to copy the first
channel — the real part of a complex image, or a grey image — into R, G and B), so grey or
complex (2-channel) images enter an RGB network.

Pretrained encoder: ``encoder_weights`` names a *local* file holding torchvision's ``vgg19``
state dict (or just its ``features.*`` entries). When given, the first ``frozen_layers``
modules of ``features`` (default 23: indices 0–22, i.e. blocks 1–3 and the first two convs of
block 4 — the seed froze "layers up to the 23rd") keep their ImageNet weights
(``requires_grad = False``); later layers are fine-tuned. Nothing is ever downloaded; without a
file the whole network trains from scratch. ``width_divisor`` divides every VGG width (1 =
VGG19; pretrained weights need 1) for small CPU-trainable versions.

Output: ``(N, out_channels, H, W)``; with ``residual`` (needs ``in_channels == out_channels``)
the network predicts a correction of its input. Any ``H, W``: inputs are reflect-padded to a
multiple of 16 and cropped back.

Reference: Fujimoto K. (seed report 18K19917, 2021): VGG19 + Conv2DTranspose/Dropout/
concatenate/BatchNormalization/Activation up-sampling, first 23 layers frozen, trained on knee
MRI; Ronneberger O et al., U-Net, MICCAI 2015.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from medrestore.core.errors import InputError
from medrestore.models.blocks import ImageToImageModel, check_input, crop_spatial, pad_to_multiple, require

__all__ = ["VGG19_LAYOUT", "VGG19_SKIPS", "VGGUNet", "VGGUNetConfig", "load_vgg19_features", "vgg19_features"]

VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512,
)  # fmt: skip
"""VGG19 configuration "E" without the final pool: channel counts and ``M`` (max-pool)."""
VGG19_SKIPS = (3, 8, 17, 26, 35)
"""``features`` indices whose outputs feed the decoder (last ReLU of each block)."""


def vgg19_features(width_divisor: int = 1) -> nn.Sequential:
    """VGG19's ``features`` (indices 0–35, torchvision numbering), widths divided by ``width_divisor``."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        width = int(item) // width_divisor
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        channels = width
    return nn.Sequential(*layers)


def load_vgg19_features(features: nn.Sequential, path: str | Path, frozen_layers: int) -> int:
    """Load torchvision-named VGG19 weights from a local file into ``features``; freeze the first ``frozen_layers``.

    Accepted keys: ``features.N.weight`` / ``features.N.bias`` (other entries such as
    ``classifier.*`` are ignored). Returns the number of frozen parameter tensors.

    Raises:
        InputError: unreadable file, missing layers or shapes that differ (e.g. ``width_divisor`` ≠ 1).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise InputError(path, f"cannot read VGG19 weights ({error})") from None
    if not isinstance(state, Mapping):
        raise InputError(path, "does not hold a state dict")
    wanted = features.state_dict()
    mapped = {key[len("features.") :]: value for key, value in state.items() if key.startswith("features.")}
    missing = sorted(set(wanted) - set(mapped))
    if missing:
        raise InputError(path, f"lacks VGG19 layers {', '.join('features.' + key for key in missing[:4])}...")
    for key, value in wanted.items():
        if tuple(mapped[key].shape) != tuple(value.shape):
            raise InputError(path, f"features.{key} has shape {tuple(mapped[key].shape)}, the network {tuple(value.shape)}")
    features.load_state_dict({key: mapped[key] for key in wanted}, strict=True)
    frozen = 0
    for index, module in enumerate(features):
        if index >= frozen_layers:
            break
        for parameter in module.parameters():
            parameter.requires_grad_(False)
            frozen += 1
    return frozen


@dataclasses.dataclass(frozen=True)
class VGGUNetConfig:
    """Options of :class:`VGGUNet`.

    Attributes:
        spatial_ndim: 2.
        in_channels: 1 (grey) or 2 (complex as real/imaginary).
        out_channels: output channels.
        width_divisor: divides the VGG widths (1, 2, 4, 8...; pretrained weights need 1).
        dropout: dropout probability in the decoder.
        residual: output = input + network (needs ``in_channels == out_channels``).
        encoder_weights: local torchvision ``vgg19`` state-dict file, or ``None`` (train from scratch).
        frozen_layers: ``features`` modules kept frozen when ``encoder_weights`` is given.
    """

    spatial_ndim: Literal[2] = 2
    in_channels: int = 2
    out_channels: int = 2
    width_divisor: int = 1
    dropout: float = 0.0
    residual: bool = True
    encoder_weights: str | None = None
    frozen_layers: int = 23

    def __post_init__(self) -> None:
        require(self.spatial_ndim == 2, "vgg-unet", f"spatial_ndim must be 2, got {self.spatial_ndim}")
        require(self.in_channels >= 1 and self.out_channels >= 1, "vgg-unet", "in_channels and out_channels must be >= 1")
        require(self.width_divisor >= 1 and 64 % self.width_divisor == 0, "vgg-unet", "width_divisor must divide 64")
        require(0.0 <= self.dropout < 1.0, "vgg-unet", f"dropout must be in [0, 1), got {self.dropout}")
        require(not self.residual or self.in_channels == self.out_channels, "vgg-unet", "residual=True needs in_channels == out_channels")
        require(0 <= self.frozen_layers <= len(VGG19_LAYOUT) * 2, "vgg-unet", f"frozen_layers out of range: {self.frozen_layers}")
        require(self.encoder_weights is None or self.width_divisor == 1, "vgg-unet", "encoder_weights need width_divisor 1")


class _UpStage(nn.Module):
    """ConvTranspose2d(2×) → concat skip → [conv 3×3 → BN → ReLU → Dropout] ×2."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        layers: list[nn.Module] = []
        channels = out_channels + skip_channels
        for _ in range(2):
            layers += [nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            channels = out_channels
        self.block = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.upsample(features), skip], dim=1))


class VGGUNet(ImageToImageModel):
    """VGG19-encoder U-Net ``(N, in_channels, H, W) → (N, out_channels, H, W)`` (module docstring).

    Example:
        >>> net = VGGUNet(VGGUNetConfig(width_divisor=16))
        >>> net(torch.zeros(1, 2, 20, 24)).shape
        torch.Size([1, 2, 20, 24])
    """

    def __init__(self, config: VGGUNetConfig = VGGUNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.adapter = nn.Conv2d(config.in_channels, 3, 1)
        with torch.no_grad():
            self.adapter.weight.zero_()
            self.adapter.weight[:, 0] = 1.0
            self.adapter.bias.zero_()
        self.features = vgg19_features(config.width_divisor)
        self.frozen_parameters = 0
        if config.encoder_weights is not None:
            self.frozen_parameters = load_vgg19_features(self.features, config.encoder_weights, config.frozen_layers)
        widths = [self.features[index - 1].out_channels for index in VGG19_SKIPS]  # type: ignore[union-attr]
        self.decoder = nn.ModuleList(
            _UpStage(widths[level + 1], widths[level], widths[level], config.dropout)
            for level in range(3, -1, -1)
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W)`` float → ``(N, out_channels, H, W)``."""
        check_input(image, 2, self.config.in_channels, "vgg-unet")
        spatial_shape = tuple(image.shape[2:])
        features, start = pad_to_multiple(image, 16, 2)
        features = self.adapter(features)
        skips = []
        for index, layer in enumerate(self.features):
            features = layer(features)
            if index in VGG19_SKIPS:
                skips.append(features)
        features = skips.pop()
        for stage in self.decoder:
            features = stage(features, skips.pop())
        output = crop_spatial(self.head(features), start, spatial_shape)
        return image + output if self.config.residual else output
