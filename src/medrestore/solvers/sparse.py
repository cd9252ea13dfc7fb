"""Sparse coding, dictionary updates and low-rank + sparse decomposition (pure functions).

* :func:`sparse_code` — the lasso ``min_X ½‖Y − D X‖²_F + λ‖X‖₁`` for many signals at once
  (columns of ``Y``), solved with :func:`~medrestore.solvers.fista.fista` and
  :func:`~medrestore.solvers.proximal.soft_threshold`.
* :func:`mod_dictionary_update` — the Method of Optimal Directions, ``D = Y Xᵀ (X Xᵀ + εI)⁻¹``,
  then unit-norm atoms (Engan, Aase & Husøy, ICASSP 1999).
* :func:`robust_pca` — principal component pursuit ``min ‖L‖_* + λ‖S‖₁ s.t. M = L + S`` by the
  inexact augmented Lagrange multiplier method (Lin, Chen & Ma, arXiv:1009.5055, 2010;
  Candès, Li, Ma & Wright, "Robust principal component analysis?", J. ACM 58(3), 2011).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from medrestore.core.errors import ConfigError
from medrestore.solvers.fista import fista
from medrestore.solvers.proximal import soft_threshold


def sparse_code(
    dictionary: torch.Tensor, signals: torch.Tensor, weight: float, iterations: int = 60
) -> torch.Tensor:
    """Lasso codes ``X = argmin ½‖Y − D X‖²_F + λ‖X‖₁`` (FISTA, step ``1/‖D‖₂²``), from ``X = 0``.

    Args:
        dictionary: ``D`` of shape ``(d, K)`` (atoms as columns).
        signals: ``Y`` of shape ``(d, n)``.
        weight: ``λ >= 0``.
        iterations: FISTA iterations.

    Returns:
        ``X`` of shape ``(K, n)``, same dtype as ``Y``.
    """
    if weight < 0 or not math.isfinite(weight):
        raise ConfigError(f"sparse coding weight must be a finite number >= 0, got {weight}")
    gram = dictionary.T @ dictionary
    correlation = dictionary.T @ signals
    lipschitz = float(torch.linalg.matrix_norm(gram, ord=2)) or 1.0
    codes, _ = fista(
        gradient=lambda x: gram @ x - correlation,
        proximal=lambda v, step: soft_threshold(v, step * weight),
        initial=torch.zeros(dictionary.shape[1], signals.shape[1], dtype=signals.dtype),
        step=1.0 / lipschitz,
        iterations=iterations,
    )
    return codes


def mod_dictionary_update(signals: torch.Tensor, codes: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """MOD: ``D = Y Xᵀ (X Xᵀ + εI)⁻¹`` with unit-norm columns; unused atoms are re-seeded from ``Y``.

    ``signals`` ``(d, n)``, ``codes`` ``(K, n)`` → dictionary ``(d, K)``.
    """
    gram = codes @ codes.T
    scale = float(torch.diagonal(gram).mean()) or 1.0
    system = gram + ridge * scale * torch.eye(gram.shape[0], dtype=gram.dtype)
    dictionary = torch.linalg.solve(system, codes @ signals.T).T
    norms = dictionary.norm(dim=0)
    unused = norms < 1e-8
    if bool(unused.any()):
        residual = (signals - dictionary @ codes).norm(dim=0)
        worst = torch.argsort(residual, descending=True)[: int(unused.sum())]
        dictionary[:, unused] = signals[:, worst]
        norms = dictionary.norm(dim=0)
    return dictionary / norms.clamp_min(1e-12)


@dataclasses.dataclass(frozen=True)
class RobustPCAInfo:
    """Iterations run, the final relative residual ``‖M − L − S‖_F / ‖M‖_F`` and ``rank(L)``."""

    iterations: int
    residual: float
    rank: int


def singular_value_threshold(x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
    """``prox_{t‖·‖_*}(x) = U max(Σ − t, 0) Vᵀ`` and the rank of the result."""
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    shrunk = torch.clamp(s - threshold, min=0)
    rank = int((shrunk > 0).sum())
    return (u[:, :rank] * shrunk[:rank]) @ vh[:rank], rank


def robust_pca(
    matrix: torch.Tensor,
    weight: float | None = None,
    tolerance: float = 1e-7,
    max_iterations: int = 500,
    rho: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor, RobustPCAInfo]:
    """Split ``M (m, n)`` into low-rank ``L`` and sparse ``S`` (inexact ALM, Lin et al. 2010, alg. 5).

    ``λ`` defaults to ``1/√max(m, n)`` (Candès et al. 2011). Iterates
    ``L = SVT_{1/μ}(M − S + Y/μ)``, ``S = shrink_{λ/μ}(M − L + Y/μ)``, ``Y += μ(M − L − S)``,
    ``μ ← ρμ`` until the relative residual is below ``tolerance``.

    Returns:
        ``(L, S, RobustPCAInfo)``.
    """
    if matrix.ndim != 2:
        raise ConfigError(f"robust PCA needs a matrix, got shape {tuple(matrix.shape)}")
    m, n = matrix.shape
    weight = 1.0 / math.sqrt(max(m, n)) if weight is None else weight
    norm_fro = float(torch.linalg.matrix_norm(matrix)) or 1.0
    spectral = float(torch.linalg.matrix_norm(matrix, ord=2))
    dual = matrix / max(spectral, float(matrix.abs().max()) / weight, 1e-30)
    mu = 1.25 / max(spectral, 1e-30)
    mu_max = mu * 1e7
    sparse = torch.zeros_like(matrix)
    low_rank = torch.zeros_like(matrix)
    rank, residual, iteration = 0, 1.0, 0
    for iteration in range(1, max_iterations + 1):
        low_rank, rank = singular_value_threshold(matrix - sparse + dual / mu, 1.0 / mu)
        sparse = soft_threshold(matrix - low_rank + dual / mu, weight / mu)
        gap = matrix - low_rank - sparse
        dual = dual + mu * gap
        mu = min(mu * rho, mu_max)
        residual = float(torch.linalg.matrix_norm(gap)) / norm_fro
        if residual < tolerance:
            break
    return low_rank, sparse, RobustPCAInfo(iteration, residual, rank)


def l1_difference(
    observed: torch.Tensor, reference: torch.Tensor, weight: float
) -> torch.Tensor:
    """L1-regularised estimate of a sparse difference: ``argmin_d ½‖y − r − d‖² + λ‖d‖₁ = shrink_λ(y − r)``.

    The closed form of the lasso with identity design (elementwise soft thresholding).
    """
    return soft_threshold(observed - reference, weight)
