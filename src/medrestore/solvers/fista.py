"""FISTA: accelerated proximal gradient for ``min_x f(x) + g(x)`` with smooth ``f``.

Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
problems", SIAM J. Imaging Sci. 2(1), 2009::

    x_k   = prox_{α g}(z_k − α ∇f(z_k))
    t_k+1 = (1 + sqrt(1 + 4 t_k²)) / 2
    z_k+1 = x_k + ((t_k − 1) / t_k+1) (x_k − x_k−1)

with step ``α ≤ 1/L`` (``L`` the Lipschitz constant of ``∇f``). This is sigpy's
``GradientMethod(accelerate=True)`` step for step, so equal iterations mean equal work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch


@dataclasses.dataclass(frozen=True)
class FistaInfo:
    """Iterations run, the step ``α``, and ``f + g`` after each iteration when an objective was given."""

    iterations: int
    step: float
    objective: tuple[float, ...]


def fista(
    gradient: Callable[[torch.Tensor], torch.Tensor],
    proximal: Callable[[torch.Tensor, float], torch.Tensor],
    initial: torch.Tensor,
    step: float,
    iterations: int,
    objective: Callable[[torch.Tensor], float] | None = None,
) -> tuple[torch.Tensor, FistaInfo]:
    """Run ``iterations`` FISTA steps from ``initial``.

    Args:
        gradient: ``∇f``.
        proximal: ``(v, α) ↦ prox_{α g}(v)``.
        initial: starting point (not modified).
        step: ``α`` (use ``1/L``).
        iterations: number of iterations.
        objective: optional ``f + g``, evaluated after every iteration (costs one more ``f``).

    Returns:
        ``(x, FistaInfo)``.
    """
    x = initial.clone()
    extrapolated = x
    momentum = 1.0
    values: list[float] = []
    for _ in range(iterations):
        previous = x
        x = proximal(extrapolated - step * gradient(extrapolated), step)
        next_momentum = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
        extrapolated = x + ((momentum - 1) / next_momentum) * (x - previous)
        momentum = next_momentum
        if objective is not None:
            values.append(objective(x))
    return x, FistaInfo(iterations, float(step), tuple(values))
