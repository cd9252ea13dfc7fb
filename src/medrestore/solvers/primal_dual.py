"""Primal-dual hybrid gradient (Chambolle–Pock) for ``min_x Σ_i f_i(K_i x) + g(x)``.

Chambolle & Pock, "A first-order primal-dual algorithm for convex problems with applications
to imaging", J. Math. Imaging Vis. 40, 2011 (θ = 1)::

    u_i ← prox_{σ f_i*}(u_i + σ K_i x̄)
    x⁺  ← prox_{τ g}(x − τ Σ_i K_iᴴ u_i)
    x̄   ← x⁺ + θ (x⁺ − x)

Converges for ``σ τ ‖K‖² < 1`` with ``K = [K_1; K_2; ...]`` (``‖K‖² ≤ Σ_i ‖K_i‖²``). The
update order is sigpy's ``PrimalDualHybridGradient``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from medrestore.physics.mri.operators import LinearOperator


@dataclasses.dataclass(frozen=True)
class DualTerm:
    """One ``f_i(K_i x)``: the operator ``K_i`` and ``(v, σ) ↦ prox_{σ f_i*}(v)``."""

    operator: LinearOperator
    conjugate_proximal: Callable[[torch.Tensor, float], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class PrimalDualInfo:
    """Iterations run, the steps ``τ`` and ``σ``, and the objective after each iteration if requested."""

    iterations: int
    primal_step: float
    dual_step: float
    objective: tuple[float, ...]


def primal_dual_hybrid_gradient(
    terms: Sequence[DualTerm],
    initial: torch.Tensor,
    primal_step: float,
    dual_step: float,
    iterations: int,
    primal_proximal: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    objective: Callable[[torch.Tensor], float] | None = None,
) -> tuple[torch.Tensor, PrimalDualInfo]:
    """Run ``iterations`` Chambolle–Pock steps from ``initial`` with zero dual variables.

    Args:
        terms: the ``f_i ∘ K_i``.
        initial: primal start (not modified).
        primal_step, dual_step: ``τ`` and ``σ`` with ``σ τ ‖K‖² < 1``.
        iterations: number of iterations.
        primal_proximal: ``prox_{τ g}``; ``None`` for ``g = 0``.
        objective: optional, evaluated after every iteration.
    """
    x = initial.clone()
    extrapolated = x
    duals = [torch.zeros((*x.shape[: x.ndim - len(term.operator.input_shape)], *term.operator.output_shape),
                         dtype=x.dtype, device=x.device) for term in terms]
    values: list[float] = []
    for _ in range(iterations):
        duals = [
            term.conjugate_proximal(dual + dual_step * term.operator.forward(extrapolated), dual_step)
            for term, dual in zip(terms, duals)
        ]
        update = sum((term.operator.adjoint(dual) for term, dual in zip(terms, duals)), torch.zeros_like(x))
        previous = x
        x = x - primal_step * update
        if primal_proximal is not None:
            x = primal_proximal(x, primal_step)
        extrapolated = 2 * x - previous
        if objective is not None:
            values.append(objective(x))
    return x, PrimalDualInfo(iterations, float(primal_step), float(dual_step), tuple(values))
