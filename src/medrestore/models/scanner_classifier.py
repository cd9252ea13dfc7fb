"""A small CNN that tells which scanner a slice comes from (the harmonisation judge).

Four stride-2 3×3 convolution stages (channels ``c, 2c, 4c, 8c``, batch norm, ReLU), global
average pooling and a linear layer giving one logit per scanner: ``(N, 1, H, W) → (N, 2)``.
Global pooling makes it see texture, contrast and local intensity anywhere in the slice;
slices are divided by their own 99th percentile first, so a global gain alone does not betray the scanner.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medrestore.models.blocks import require


@dataclasses.dataclass(frozen=True)
class ScannerClassifierConfig:
    """``channels``: width of the first stage; ``scanners``: number of classes."""

    channels: int = 8
    scanners: int = 2

    def __post_init__(self) -> None:
        require(self.channels >= 1 and self.scanners >= 2, "scanner-classifier", "channels >= 1 and scanners >= 2")


def normalise_slices(slices: torch.Tensor) -> torch.Tensor:
    """Divide each ``(N, 1, H, W)`` slice by its 99th percentile (1 where that is not positive)."""
    flat = slices.reshape(len(slices), -1)
    scale = torch.quantile(flat.float(), 0.99, dim=1).clamp_min(1e-6)
    return slices / scale[:, None, None, None]


class ScannerClassifier(nn.Module):
    """``(N, 1, H, W)`` float → ``(N, scanners)`` logits."""

    def __init__(self, config: ScannerClassifierConfig = ScannerClassifierConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels_in, channels = 1, config.channels
        for _ in range(4):
            layers += [nn.Conv2d(channels_in, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
            channels_in, channels = channels, channels * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels_in, config.scanners)

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        features = self.features(normalise_slices(slices))
        return self.head(features.mean(dim=(-2, -1)))
