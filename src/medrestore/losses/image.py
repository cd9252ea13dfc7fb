"""Image-fidelity training losses: MSE, L1, SSIM and their sums.

Every loss takes ``(prediction, target)`` batches of shape ``(N, C, *spatial)`` with 2 or 3
spatial axes and returns a scalar tensor.

* ``mse``: ``mean (x − y)²``.  ``l1``: ``mean |x − y|``.
* ``ssim``: ``1 − SSIM(x, y)``, Gaussian window (σ = 1.5, 11 taps), ``K1 = 0.01, K2 = 0.03``,
  population covariance, data range ``L`` (1.0 by default, for images scaled to [0, 1]); SSIM is
  the mean over the interior of the SSIM map of every image and channel, computed by the same
  torch code as :func:`medrestore.metrics.ssim` (Wang et al., IEEE TIP 13(4), 2004).
* ``mse+ssim``: ``MSE + (1 − SSIM)``, the loss of gamma-camera super-resolution studies that
  train on both pixel fidelity and structure; ``l1+ssim``: ``L1 + (1 − SSIM)``
  (cf. Zhao et al., "Loss functions for image restoration with neural networks", IEEE TCI 3(1),
  2017, who pair L1 with (MS-)SSIM).
"""

from __future__ import annotations

import torch
from torch import nn

from medrestore.core.errors import InputError
from medrestore.metrics import SSIMOptions, interior_mean, structural_similarity_map

LOSSES: tuple[str, ...] = ("mse", "l1", "ssim", "mse+ssim", "l1+ssim")
"""Names accepted by :func:`build_loss`."""


def _check_batches(prediction: torch.Tensor, target: torch.Tensor) -> int:
    """Return the number of spatial axes of ``(N, C, *spatial)`` batches after checking them."""
    if prediction.shape != target.shape:
        raise InputError(
            None, f"prediction shape {tuple(prediction.shape)} does not match target shape {tuple(target.shape)}"
        )
    if prediction.ndim not in (4, 5):
        shape = tuple(prediction.shape)
        raise InputError(None, f"losses take (N, C, H, W) or (N, C, D, H, W) batches, got shape {shape}")
    return prediction.ndim - 2


class SSIMLoss(nn.Module):
    """``1 − SSIM(prediction, target)`` averaged over the batch; differentiable.

    Args:
        data_range: ``L`` of the data (1.0 for images in [0, 1]).
        options: SSIM window and constants (Gaussian σ = 1.5 by default).

    Example:
        >>> loss = SSIMLoss()
        >>> batch = torch.rand(2, 1, 16, 16)
        >>> float(loss(batch, batch))
        0.0
    """

    def __init__(self, data_range: float = 1.0, options: SSIMOptions = SSIMOptions()) -> None:
        super().__init__()
        if not data_range > 0:
            raise InputError(None, f"SSIM loss needs a positive data range, got {data_range}")
        self.data_range = float(data_range)
        self.options = options

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        spatial_ndim = _check_batches(prediction, target)
        values = structural_similarity_map(prediction, target, self.data_range, self.options, spatial_ndim)
        return 1.0 - interior_mean(values, self.options, spatial_ndim)


class SumLoss(nn.Module):
    """The sum of several losses, each called with ``(prediction, target)``."""

    def __init__(self, terms: list[nn.Module]) -> None:
        super().__init__()
        self.terms = nn.ModuleList(terms)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_batches(prediction, target)
        total = self.terms[0](prediction, target)
        for term in self.terms[1:]:
            total = total + term(prediction, target)
        return total


def build_loss(name: str, data_range: float = 1.0) -> nn.Module:
    """The loss called ``name`` (one of :data:`LOSSES`); ``data_range`` is SSIM's ``L``."""
    pixel_losses = {"mse": nn.MSELoss, "l1": nn.L1Loss}
    if name not in LOSSES:
        raise InputError(None, f"unknown loss {name!r}; available: {', '.join(LOSSES)}")
    terms: list[nn.Module] = []
    for part in name.split("+"):
        terms.append(SSIMLoss(data_range) if part == "ssim" else pixel_losses[part]())
    return terms[0] if len(terms) == 1 else SumLoss(terms)
