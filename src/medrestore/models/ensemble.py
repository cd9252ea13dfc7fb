"""Ensembles of networks of one architecture and configuration: the mean of their outputs.

``f(x) = (1/K) Σ_k f_k(x)``. Members that make partly independent errors — trained from
different random initialisations, or with different losses — average to an output closer to the
target than any of them: what they agree on is kept. For CycleGAN generators this averages away
the texture each one invents on its own, so the ensemble keeps the anatomy better than any member
(``benchmarks/harmonize.py``); for the OCT ResUNets trained with L1 + (1 − SSIM) and with MSE it
keeps the SSIM of the first with the PSNR of the second (``benchmarks/oct_duke.py``). Inference
costs ``K`` forward passes. The members' weights are stored in one state dict
(``members.0.…``, ``members.1.…``), so an ensemble is one zoo model with one card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from medrestore.core.errors import ConfigError
from medrestore.models.blocks import ImageToImageModel, require
from medrestore.models.resunet import ResUNet, ResUNetConfig
from medrestore.models.unet import UNet, UNetConfig


@dataclasses.dataclass(frozen=True)
class EnsembleMembers:
    """``members``: how many networks (K >= 1), added to a member configuration listed after this mixin.

    ``label`` names the ensemble in configuration errors.
    """

    label: ClassVar[str] = "ensemble"
    members: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]  # the member configuration's own checks
        require(self.members >= 1, self.label, f"members must be at least 1, got {self.members}")


@dataclasses.dataclass(frozen=True)
class UNetEnsembleConfig(EnsembleMembers, UNetConfig):
    """:class:`~medrestore.models.unet.UNetConfig` of every member, and ``members``: how many (K >= 1)."""

    label: ClassVar[str] = "unet-ensemble"


@dataclasses.dataclass(frozen=True)
class ResUNetEnsembleConfig(EnsembleMembers, ResUNetConfig):
    """:class:`~medrestore.models.resunet.ResUNetConfig` of every member, and ``members``: how many (K >= 1)."""

    label: ClassVar[str] = "resunet-ensemble"


class MeanEnsemble(ImageToImageModel):
    """``(N, in_channels, *S) → (N, out_channels, *S)``: the mean of ``config.members`` networks.

    Subclasses name the member class, its configuration class and the ensemble's configuration
    class (whose ``label`` names the ensemble in errors); ``config=None`` takes the latter's defaults.
    """

    member_type: ClassVar[type[nn.Module]]
    member_config_type: ClassVar[type[Any]]
    config_type: ClassVar[type[EnsembleMembers]]

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        config = self.config_type() if config is None else config
        self.config = config
        fields = {field.name: getattr(config, field.name) for field in dataclasses.fields(self.member_config_type)}
        self.members = nn.ModuleList([self.member_type(self.member_config_type(**fields)) for _ in range(config.members)])

    @classmethod
    def from_members(cls, members: Sequence[nn.Module]) -> Any:
        """An ensemble holding copies of the weights of trained ``members`` (all of one configuration)."""
        label = cls.config_type.label
        require(bool(members), label, "needs at least one member")
        configs = {getattr(member, "config", None) for member in members}
        require(
            all(isinstance(member, cls.member_type) for member in members) and len(configs) == 1,
            label,
            f"members must all be {cls.member_type.__name__} networks sharing one {cls.member_config_type.__name__}",
        )
        ensemble = cls(cls.config_type(**dataclasses.asdict(getattr(members[0], "config")), members=len(members)))
        for target, member in zip(ensemble.members, members, strict=True):
            target.load_state_dict(member.state_dict())
        return ensemble

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(image) for member in self.members]).mean(dim=0)


class UNetEnsemble(MeanEnsemble):
    """The mean of ``members`` U-Nets (the shipped CycleGAN harmoniser).

    Example:
        >>> net = UNetEnsemble(UNetEnsembleConfig(base_channels=4, depth=2, members=3))
        >>> net(torch.zeros(1, 1, 20, 20)).shape
        torch.Size([1, 1, 20, 20])
    """

    member_type = UNet
    member_config_type = UNetConfig
    config_type = UNetEnsembleConfig


class ResUNetEnsemble(MeanEnsemble):
    """The mean of ``members`` ResUNets (the shipped OCT default: one trained with SSIM, one with MSE).

    Each member keeps the input's mean with ``preserve_mean``, and so does their mean.

    Example:
        >>> net = ResUNetEnsemble(ResUNetEnsembleConfig(widths=(4, 8), blocks=(1, 1), members=2))
        >>> net(torch.zeros(1, 1, 20, 20)).shape
        torch.Size([1, 1, 20, 20])
    """

    member_type = ResUNet
    member_config_type = ResUNetConfig
    config_type = ResUNetEnsembleConfig


ENSEMBLE_TYPES: tuple[type[MeanEnsemble], ...] = (UNetEnsemble, ResUNetEnsemble)
"""Every ensemble class, looked up by member class in :func:`mean_ensemble`."""


def mean_ensemble(members: Sequence[nn.Module]) -> MeanEnsemble:
    """The ensemble class for ``members``' architecture, holding copies of their weights.

    Raises:
        ConfigError: no members, an architecture without an ensemble class, or members of
            different configurations.
    """
    require(bool(members), "ensemble", "needs at least one member")
    for ensemble_type in ENSEMBLE_TYPES:
        if type(members[0]) is ensemble_type.member_type:
            return ensemble_type.from_members(members)
    names = ", ".join(ensemble_type.member_type.__name__ for ensemble_type in ENSEMBLE_TYPES)
    raise ConfigError(f"ensemble: no ensemble for {type(members[0]).__name__} networks; ensembles exist for {names}")
