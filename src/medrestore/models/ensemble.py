"""An ensemble of U-Nets trained alike from different seeds: the mean of their outputs.

``f(x) = (1/K) Σ_k f_k(x)``. Members trained from different random initialisations make
partly independent errors; averaging keeps what they agree on. For CycleGAN generators this
averages away the texture each one invents on its own, so the ensemble keeps the anatomy
better than any member while removing what all of them learned to remove
(``benchmarks/harmonize.py``). Inference costs ``K`` forward passes.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medrestore.models.blocks import ImageToImageModel, require
from medrestore.models.unet import UNet, UNetConfig


@dataclasses.dataclass(frozen=True)
class UNetEnsembleConfig(UNetConfig):
    """:class:`~medrestore.models.unet.UNetConfig` of every member, and ``members``: how many (K >= 1)."""

    members: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.members >= 1, "unet-ensemble", f"members must be at least 1, got {self.members}")

    def member_config(self) -> UNetConfig:
        return UNetConfig(**{field.name: getattr(self, field.name) for field in dataclasses.fields(UNetConfig)})


class UNetEnsemble(ImageToImageModel):
    """``(N, in_channels, *S) → (N, out_channels, *S)``: the mean of ``members`` U-Nets.

    Example:
        >>> net = UNetEnsemble(UNetEnsembleConfig(base_channels=4, depth=2, members=3))
        >>> net(torch.zeros(1, 1, 20, 20)).shape
        torch.Size([1, 1, 20, 20])
    """

    def __init__(self, config: UNetEnsembleConfig = UNetEnsembleConfig()) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList([UNet(config.member_config()) for _ in range(config.members)])

    @classmethod
    def from_members(cls, members: list[UNet]) -> UNetEnsemble:
        """An ensemble holding copies of the weights of trained ``members`` (all of one configuration)."""
        configs = {member.config for member in members}
        require(len(configs) == 1, "unet-ensemble", "members must share one UNetConfig")
        ensemble = cls(UNetEnsembleConfig(**dataclasses.asdict(members[0].config), members=len(members)))
        for target, member in zip(ensemble.members, members, strict=True):
            target.load_state_dict(member.state_dict())
        return ensemble

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(image) for member in self.members]).mean(dim=0)
