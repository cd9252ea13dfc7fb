"""Proximal operators and the projections of their conjugates.

* ``soft_threshold(x, t) = x · max(1 − t/|x|, 0)`` — the proximal operator of ``t‖x‖₁`` for
  complex (or real) ``x``: magnitudes shrink by ``t``, phases are kept.
* ``group_soft_threshold`` — the same on the Euclidean norm of groups along one axis (the
  proximal operator of the isotropic TV norm's inner ``Σ_r ‖(G x)_r‖₂``).
* ``project_linf_ball`` / ``project_group_ball`` — projection onto ``{|u| ≤ λ}``, elementwise or
  per group: the proximal operator of the convex conjugate of ``λ‖·‖₁`` (Moreau).
"""

from __future__ import annotations

import torch


def soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """``prox_{t‖·‖₁}(x) = x · max(1 − t/|x|, 0)`` elementwise (complex or real)."""
    magnitude = x.abs()
    return x * torch.clamp(1 - threshold / magnitude.clamp_min(1e-30), min=0)


def group_norm(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Euclidean norm of the groups along ``axis`` (kept as size 1), complex or real.

    Computed from real and imaginary parts: ``torch.linalg.vector_norm`` over a complex axis is
    far slower on CPU.
    """
    squares = torch.view_as_real(x).square().sum(-1) if x.is_complex() else x.square()
    return squares.sum(dim=axis, keepdim=True).sqrt()


def group_soft_threshold(x: torch.Tensor, threshold: float | torch.Tensor, axis: int) -> torch.Tensor:
    """``x_g · max(1 − t/‖x_g‖₂, 0)`` with groups ``g`` along ``axis`` (isotropic shrinkage)."""
    norms = group_norm(x, axis)
    return x * torch.clamp(1 - threshold / norms.clamp_min(1e-30), min=0)


def project_linf_ball(x: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Elementwise projection onto ``{|u| ≤ radius}`` (complex magnitudes clipped, phases kept)."""
    return x / torch.clamp(x.abs() / radius, min=1)


def project_group_ball(x: torch.Tensor, radius: float | torch.Tensor, axis: int) -> torch.Tensor:
    """Projection of every group along ``axis`` onto the Euclidean ball of ``radius``."""
    norms = group_norm(x, axis)
    return x / torch.clamp(norms / radius, min=1)
