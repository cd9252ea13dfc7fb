"""Adversarial training: the :class:`~medrestore.training.trainer.Trainer` with a PatchGAN critic.

Every step first updates the discriminator ``D`` on real targets ``y`` and detached outputs
``G(x)``, then the generator ``G`` (the configured model) on

    L_G = train.loss(G(x), y) + λ · L_adv(D(G(x)), real)

(pix2pix, Isola et al. CVPR 2017). ``L_adv`` is least squares (LSGAN, Mao et al. ICCV 2017):
``L_D = ½[(D(y) − 1)² + D(G(x))²]``, ``L_adv = (D(G(x)) − 1)²``, or the binary cross-entropy
of the original GAN (Goodfellow et al. 2014). During ``warmup_steps`` only the content loss
trains ``G`` (the critic still learns). The value logged as ``train_loss`` is the content loss,
so runs with and without the adversarial term are comparable; the discriminator's weights and
optimiser are stored in every checkpoint under ``"discriminator"``, so runs resume exactly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medrestore.core.errors import ConfigError, MedrestoreError
from medrestore.models.patch_discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from medrestore.training.config import AdversarialConfig
from medrestore.training.trainer import Trainer


def build_discriminator(config: AdversarialConfig, spatial_ndim: int, in_channels: int) -> PatchDiscriminator:
    """The critic of ``config`` (``spatial_ndim``/``in_channels`` default to the generator's output)."""
    options: dict[str, Any] = {"spatial_ndim": spatial_ndim, "in_channels": in_channels, **dict(config.discriminator)}
    known = {"spatial_ndim", "in_channels", "base_channels", "layers", "norm"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"adversarial.discriminator: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return PatchDiscriminator(PatchDiscriminatorConfig(**options))


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """``(D − 1)²`` / ``D²`` (``lsgan``) or the BCE with logits against 1 / 0 (``bce``), averaged."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


class AdversarialTrainer(Trainer):
    """:class:`Trainer` whose step is a discriminator update followed by a generator update.

    Args:
        discriminator: the critic (moved to the trainer's device).
        adversarial: weight, loss kind, critic optimiser and warm-up.
        *args, **kwargs: as :class:`Trainer` (single process only).
    """

    def __init__(self, *args: Any, discriminator: nn.Module, adversarial: AdversarialConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.context.world_size > 1:
            raise ConfigError("adversarial: training with a discriminator runs in a single process (no torchrun)")
        self.adversarial = adversarial
        self.discriminator = discriminator.to(self.device)
        self.discriminator_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=adversarial.lr, betas=adversarial.betas
        )

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        inputs = inputs.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        kind = self.adversarial.loss
        outputs = self.network(inputs)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        critic_loss = 0.5 * (
            adversarial_loss(self.discriminator(targets), True, kind)
            + adversarial_loss(self.discriminator(outputs.detach()), False, kind)
        )
        critic_loss.backward()
        self.discriminator_optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        content = self.loss(outputs, targets)
        total = content
        if self.progress.global_step >= self.adversarial.warmup_steps and self.adversarial.weight > 0:
            total = content + self.adversarial.weight * adversarial_loss(self.discriminator(outputs), True, kind)
        if not bool(torch.isfinite(total)):
            raise MedrestoreError(
                f"the generator loss became {float(total)} at epoch {self.progress.epoch + 1}; lower optim.lr or adversarial.weight"
            )
        total.backward()
        self.optimizer.step()
        return float(content.detach())

    def checkpoint_payload(self) -> dict[str, Any]:
        """The :class:`Trainer` payload plus ``"discriminator": {"state_dict", "optimizer"}``."""
        payload = super().checkpoint_payload()
        payload["discriminator"] = {
            "state_dict": self.discriminator.state_dict(),
            "optimizer": self.discriminator_optimizer.state_dict(),
        }
        return payload

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """:meth:`Trainer.restore`, then the discriminator and its optimiser."""
        super().restore(checkpoint)
        if "discriminator" not in checkpoint:
            raise ConfigError("the checkpoint has no discriminator; it was not written by an adversarial run")
        self.discriminator.load_state_dict(checkpoint["discriminator"]["state_dict"])
        self.discriminator_optimizer.load_state_dict(checkpoint["discriminator"]["optimizer"])
