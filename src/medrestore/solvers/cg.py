"""Conjugate gradients for Hermitian positive-definite systems ``(AᴴA + λI) x = b``.

Hestenes & Stiefel (1952); used as CG-SENSE (Pruessmann et al., MRM 46(4), 2001) with
``b = Aᴴ y``. Pure function: the operator is a callable, nothing is mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch


@dataclasses.dataclass(frozen=True)
class CGInfo:
    """What CG did: iterations run, relative residual ``‖b − M x‖ / ‖b‖`` per iteration, convergence."""

    iterations: int
    residuals: tuple[float, ...]
    converged: bool


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sum(a.conj() * b).real


def conjugate_gradient(
    apply_matrix: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    initial: torch.Tensor | None = None,
    max_iterations: int = 30,
    tolerance: float = 1e-6,
) -> tuple[torch.Tensor, CGInfo]:
    """Solve ``M x = rhs`` for Hermitian positive-definite ``M`` (given as ``apply_matrix``).

    Args:
        apply_matrix: ``x ↦ M x`` (e.g. ``lambda x: A.normal(x) + lam * x``).
        rhs: ``b``, any shape, complex or real.
        initial: starting point (zeros when ``None``).
        max_iterations: upper bound on iterations.
        tolerance: stop when ``‖r‖ ≤ tolerance · ‖b‖``.

    Returns:
        ``(x, CGInfo)``.
    """
    x = torch.zeros_like(rhs) if initial is None else initial.clone()
    residual = rhs - apply_matrix(x) if initial is not None else rhs.clone()
    direction = residual.clone()
    rhs_norm = float(torch.linalg.vector_norm(rhs)) or 1.0
    residual_square = _dot(residual, residual)
    history: list[float] = []
    converged = False
    for _ in range(max_iterations):
        if float(residual_square) ** 0.5 <= tolerance * rhs_norm:
            converged = True
            break
        product = apply_matrix(direction)
        step = residual_square / _dot(direction, product)
        x = x + step * direction
        residual = residual - step * product
        new_square = _dot(residual, residual)
        direction = residual + (new_square / residual_square) * direction
        residual_square = new_square
        history.append(float(residual_square) ** 0.5 / rhs_norm)
    else:
        converged = float(residual_square) ** 0.5 <= tolerance * rhs_norm
    return x, CGInfo(len(history), tuple(history), converged)
