"""CycleGAN for unpaired scanner harmonisation: two generators and two PatchGAN discriminators.

Zhu, Park, Isola & Efros, "Unpaired image-to-image translation using cycle-consistent
adversarial networks", ICCV 2017. Generators are residual U-Nets
(:class:`~medrestore.models.unet.UNet` with ``residual=True``, so an untrained generator is near
the identity and anatomy is kept by construction); discriminators are PatchGANs (Isola et al.,
"Image-to-image translation with conditional adversarial networks", CVPR 2017): strided
4×4 convolutions, instance norm, LeakyReLU(0.2), a 1-channel map of real/fake scores per patch.
Losses (least squares GAN, Mao et al. ICCV 2017)::

    L_G = ½ Σ_dir (D_t(G(x)) − 1)²  +  λ_cyc (‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁)
                                     +  λ_id  (‖G(b) − b‖₁ + ‖F(a) − a‖₁)
    L_D = ½ ((D(real) − 1)² + D(fake)²)

Optional structure constraint (Yang et al., DLMIA 2018; ``λ_s > 0``): the MIND descriptors
(:mod:`medrestore.metrics.mind`) of each translated slice and of its input must agree,

    + λ_s (‖MIND(g ⊛ G(a)) − MIND(g ⊛ a)‖₁ + ‖MIND(g ⊛ F(b)) − MIND(g ⊛ b)‖₁)

with ``g`` a Gaussian of ``structure_smoothing`` pixels (noise is not structure). MIND ignores
gain, contrast curves and smooth fields, so the term lets the generators change the scanner's
look while it penalises moved, removed or invented edges.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from medrestore.metrics.mind import mind_distance
from medrestore.models.blocks import require
from medrestore.models.unet import UNet, UNetConfig
from medrestore.physics.blur import gaussian_blur


@dataclasses.dataclass(frozen=True)
class PatchGANConfig:
    """``base_channels`` doubles over ``layers`` stride-2 convolutions (receptive field grows ≈ 2^layers · 4)."""

    in_channels: int = 1
    base_channels: int = 32
    layers: int = 3

    def __post_init__(self) -> None:
        require(self.in_channels >= 1 and self.base_channels >= 1, "patchgan", "channels must be >= 1")
        require(1 <= self.layers <= 6, "patchgan", f"layers must be in 1..6, got {self.layers}")


class PatchGANDiscriminator(nn.Module):
    """``(N, C, H, W)`` → ``(N, 1, H/2^layers − ..., ...)`` patch scores (no sigmoid: LSGAN)."""

    def __init__(self, config: PatchGANConfig = PatchGANConfig()) -> None:
        super().__init__()
        self.config = config
        modules: list[nn.Module] = [
            nn.Conv2d(config.in_channels, config.base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        channels = config.base_channels
        for _ in range(config.layers - 1):
            modules += [
                nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1),
                nn.InstanceNorm2d(channels * 2, affine=True),
                nn.LeakyReLU(0.2),
            ]
            channels *= 2
        modules += [
            nn.Conv2d(channels, channels, 4, stride=1, padding=1),
            nn.InstanceNorm2d(channels, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 1, 4, stride=1, padding=1),
        ]
        self.layers = nn.Sequential(*modules)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image)


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """Generator (residual U-Net) and discriminator sizes of :class:`CycleGAN`.

    ``head_init_scale`` shrinks the generators' initial last layer, so training starts near the
    identity map (not at it exactly: there the L1 cycle/identity terms' subgradients would
    cancel small adversarial gradients and pin the generators).
    """

    base_channels: int = 16
    depth: int = 3
    discriminator_channels: int = 32
    discriminator_layers: int = 3
    head_init_scale: float = 0.1

    def generator_config(self) -> UNetConfig:
        return UNetConfig(spatial_ndim=2, base_channels=self.base_channels, depth=self.depth, residual=True)

    def discriminator_config(self) -> PatchGANConfig:
        return PatchGANConfig(base_channels=self.discriminator_channels, layers=self.discriminator_layers)


class CycleGAN(nn.Module):
    """``a2b``/``b2a`` generators (U-Nets) and ``discriminator_a``/``discriminator_b`` (PatchGANs)."""

    def __init__(self, config: CycleGANConfig = CycleGANConfig()) -> None:
        super().__init__()
        self.config = config
        self.a2b = UNet(config.generator_config())
        self.b2a = UNet(config.generator_config())
        for generator in (self.a2b, self.b2a):  # start near the identity map: x + small
            with torch.no_grad():
                generator.head.weight.mul_(config.head_init_scale)
                generator.head.bias.zero_()
        self.discriminator_a = PatchGANDiscriminator(config.discriminator_config())
        self.discriminator_b = PatchGANDiscriminator(config.discriminator_config())

    def generators(self) -> list[nn.Parameter]:
        return [*self.a2b.parameters(), *self.b2a.parameters()]

    def discriminators(self) -> list[nn.Parameter]:
        return [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss ``mean((D − t)²)`` with target ``t = 1`` (real) or ``0`` (fake)."""
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()


@dataclasses.dataclass(frozen=True)
class CycleLossWeights:
    """``λ_cyc``, ``λ_id``, the adversarial weight and ``λ_s`` (structure, 0 = off) of the generator loss."""

    cycle: float = 10.0
    identity: float = 5.0
    adversarial: float = 1.0
    structure: float = 0.0
    structure_smoothing: float = 1.0


def structure_loss(translated: torch.Tensor, source: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``‖MIND(g ⊛ translated) − MIND(g ⊛ source)‖₁`` for ``(N, 1, H, W)`` batches (module equation)."""
    if smoothing > 0:
        translated = gaussian_blur(translated, sigma=smoothing, spatial_ndim=2)
        source = gaussian_blur(source, sigma=smoothing, spatial_ndim=2)
    return mind_distance(translated, source.detach())


def generator_losses(
    model: CycleGAN, real_a: torch.Tensor, real_b: torch.Tensor, weights: CycleLossWeights
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    """``(L_G, parts, fake_a, fake_b)`` for batches ``(N, 1, H, W)`` of each scanner (module equation)."""
    fake_b, fake_a = model.a2b(real_a), model.b2a(real_b)
    adversarial = 0.5 * (lsgan_loss(model.discriminator_b(fake_b), True) + lsgan_loss(model.discriminator_a(fake_a), True))
    cycle = (model.b2a(fake_b) - real_a).abs().mean() + (model.a2b(fake_a) - real_b).abs().mean()
    identity = (model.a2b(real_b) - real_b).abs().mean() + (model.b2a(real_a) - real_a).abs().mean()
    total = weights.adversarial * adversarial + weights.cycle * cycle + weights.identity * identity
    terms = [("adversarial", adversarial), ("cycle", cycle), ("identity", identity)]
    if weights.structure > 0:
        structure = structure_loss(fake_b, real_a, weights.structure_smoothing) + structure_loss(fake_a, real_b, weights.structure_smoothing)
        total = total + weights.structure * structure
        terms.append(("structure", structure))
    parts = {name: float(value.detach()) for name, value in terms}
    return total, parts, fake_a.detach(), fake_b.detach()


def discriminator_loss(
    model: CycleGAN, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
) -> torch.Tensor:
    """``L_D`` summed over both discriminators (fakes detached)."""
    loss_a = 0.5 * (lsgan_loss(model.discriminator_a(real_a), True) + lsgan_loss(model.discriminator_a(fake_a), False))
    loss_b = 0.5 * (lsgan_loss(model.discriminator_b(real_b), True) + lsgan_loss(model.discriminator_b(fake_b), False))
    return loss_a + loss_b
