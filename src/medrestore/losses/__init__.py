"""Training losses: MSE, L1, SSIM and their sums (see :mod:`medrestore.losses.image`)."""

from medrestore.losses.image import LOSSES, SSIMLoss, SumLoss, build_loss

__all__ = ["LOSSES", "SSIMLoss", "SumLoss", "build_loss"]
