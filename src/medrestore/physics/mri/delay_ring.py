"""RING gradient-delay estimation (Rosenzweig, Holme & Uecker, MRM 81(3):1898–1906, 2019).

Two non-parallel spokes ``i, j``, displaced by ``v_i`` and ``v_j``, cross at one k-space point,
where every coil sees the same value. For each pair with a crossing angle in
``[min_angle, 180° − min_angle]`` (each spoke with its ``partners`` most orthogonal spokes) the
readout positions ``(t, u)`` of the crossing minimise ``Σ_c |y_i,c(t) − y_j,c(u)|²``: a grid
search of the *normalised* mismatch ``‖y_i(t) − y_j(u)‖² / (‖y_i(t)‖² + ‖y_j(u)‖²)`` (the
plain mismatch is smallest wherever both spokes are weak, e.g. at the edge of the window when
the readout is not oversampled) followed by Gauss–Newton on the exact interpolants (continuous
positions instead of BART's ×100 zero-padded grid). The crossing satisfies

    t n_i − u n_j = v_j − v_i,

linear in ``θ = (x, y, xy)`` for both delay models:

* ``full`` — every sample moves by ``v = S n`` (per-axis gradient delays; RING's model and
  BART's ``traj -O``): ``v_j − v_i = S (n_j − n_i)``;
* ``along`` — only the part along the spoke, ``v = (nᵀSn) n`` (BART's ``traj -q`` without
  ``-O``): every spoke still runs through the centre and ``v_j − v_i = δ_j n_j − δ_i n_i``.

Both are fitted by least squares and the one with the smaller residual is kept, so the
estimate is exact on either model. A second round restarts every pair from the crossing the
consensus delay predicts and drops pairs far off it (robust to wrong local minima of the
search and to delays beyond the window).
"""

from __future__ import annotations

import math

import torch

from medrestore.physics.mri.delay_spokes import (
    DelayEstimate, Spokes, along_rows, interpolate, least_squares, normalised_mismatch, prepare_spokes,
)
from medrestore.physics.mri.trajectory import GradientDelay

RING_MODELS = ("full", "along")


def crossing_pairs(angles: torch.Tensor, min_angle_deg: float, partners: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spoke pairs ``i < j`` crossing at an angle ≥ ``min_angle_deg``: each spoke with its ``partners`` most orthogonal spokes."""
    count = len(angles)
    crossing = torch.sin(angles[:, None] - angles[None, :]).abs()
    crossing.fill_diagonal_(0.0)
    chosen = torch.zeros(count, count, dtype=torch.bool)
    nearest = crossing.topk(max(0, min(partners, count - 1)), dim=1).indices
    chosen[torch.arange(count)[:, None], nearest] = True
    chosen = (chosen | chosen.T) & (crossing >= math.sin(math.radians(min_angle_deg)))
    first, second = torch.triu_indices(count, count, offset=1)
    keep = chosen[first, second]
    return first[keep], second[keep]


def _grid_search(spokes: Spokes, first: torch.Tensor, second: torch.Tensor, radius: float, step: float) -> torch.Tensor:
    """Coarse minimiser ``(P, 2)`` of the normalised mismatch ``‖y_i(t) − y_j(u)‖² / (‖y_i(t)‖² + ‖y_j(u)‖²)`` on a grid."""
    grid = torch.arange(-radius, radius + step / 2, step, dtype=torch.float64)
    every = torch.arange(len(spokes.angles))
    values = interpolate(spokes, every, grid.expand(len(every), -1)).permute(1, 2, 0).contiguous()  # (S, K, C)
    energy = values.abs().square().sum(dim=-1)  # (S, K)
    tiny = torch.finfo(torch.float64).tiny
    best = torch.empty(len(first), 2, dtype=torch.float64)
    chunk = 1024
    for start in range(0, len(first), chunk):
        i, j = first[start : start + chunk], second[start : start + chunk]
        # ‖a − b‖² = ‖a‖² + ‖b‖² − 2 Re <b, a> over coils, the cross term as one batched matrix product
        cross = torch.bmm(values[i], values[j].conj().transpose(1, 2)).real  # (P, K, K)
        total = energy[i][:, :, None] + energy[j][:, None, :]
        cost = 1.0 - 2.0 * cross / total.clamp_min(tiny)
        flat = cost.reshape(len(i), -1).argmin(dim=1)
        best[start : start + chunk, 0] = grid[flat // len(grid)]
        best[start : start + chunk, 1] = grid[flat % len(grid)]
    return best


def _refine(spokes: Spokes, first: torch.Tensor, second: torch.Tensor, start: torch.Tensor, iterations: int, radius: float) -> torch.Tensor:
    """Gauss–Newton on ``r(t, u) = y_i(t) − y_j(u)`` (all coils) from ``start (P, 2)``."""
    position = start.clone()
    factor = 2.0 * math.pi * spokes.frequencies / spokes.samples
    gathered = [(spokes.projections[:, index], spokes.first[index]) for index in (first, second)]

    def evaluate(side: int, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coefficients, origin = gathered[side]
        kernel = torch.exp(1j * (at - origin)[:, None] * factor) / spokes.samples  # (P, Q)
        both = torch.einsum("cpq,pqk->kcp", coefficients, torch.stack([kernel, kernel * (1j * factor)], dim=-1))
        return both[0], both[1]  # value and slope, (C, P) each

    for _ in range(iterations):
        value_i, slope_i = evaluate(0, position[:, 0])
        value_j, slope_j = evaluate(1, position[:, 1])
        jacobian = torch.stack([slope_i, -slope_j], dim=-1)  # (C, P, 2)
        normal = torch.einsum("cpk,cpl->pkl", jacobian.conj(), jacobian).real
        gradient = torch.einsum("cpk,cp->pk", jacobian.conj(), value_i - value_j).real
        damping = 1e-9 * normal.diagonal(dim1=1, dim2=2).mean(dim=1) + torch.finfo(torch.float64).tiny
        normal = normal + damping[:, None, None] * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(normal, -gradient)
        position = (position + step.clamp(-0.5, 0.5)).clamp(-radius, radius)
    return position


def _crossing_mismatch(spokes: Spokes, first: torch.Tensor, second: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Normalised mismatch of the two spokes' values at ``position (P, 2)``: ``(P,)``."""
    value_i = interpolate(spokes, first, position[:, :1])
    value_j = interpolate(spokes, second, position[:, 1:])
    return normalised_mismatch(value_i, value_j, dim=(0, 2))


def model_matrix(model: str, directions: torch.Tensor, angles: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per pair the ``2 × 3`` matrix ``M`` with ``v_j − v_i = M θ`` in ``(y, x)`` rows: ``(P, 2, 3)`` (see the module notes)."""
    n_i, n_j = directions[first], directions[second]  # (P, 2) as (n_y, n_x)
    if model == "along":
        return n_j[:, :, None] * along_rows(angles[second])[:, None, :] - n_i[:, :, None] * along_rows(angles[first])[:, None, :]
    d = n_j - n_i
    zeros = torch.zeros_like(d[:, 0])
    # y-component: xy·d_x + y·d_y ; x-component: x·d_x + xy·d_y   (unknowns ordered x, y, xy)
    rows_y = torch.stack([zeros, d[:, 0], d[:, 1]], dim=-1)
    rows_x = torch.stack([d[:, 1], zeros, d[:, 0]], dim=-1)
    return torch.stack([rows_y, rows_x], dim=1)


def _spoke_matrix(directions: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``[n_i, −n_j]`` per pair, ``(P, 2, 2)``: ``(t, u) ↦ t n_i − u n_j``."""
    return torch.stack([directions[first], -directions[second]], dim=-1)


def _fit(spokes: Spokes, first: torch.Tensor, second: torch.Tensor, position: torch.Tensor) -> tuple[str, GradientDelay, torch.Tensor, float]:
    """Both models fitted to the crossings; the one with the smaller residual: ``(model, delay, per-pair residual norms, uncertainty)``."""
    target = torch.einsum("pkl,pl->pk", _spoke_matrix(spokes.directions, first, second), position)
    fits = []
    for model in RING_MODELS:
        matrix = model_matrix(model, spokes.directions, spokes.angles, first, second)
        delay, residual, uncertainty = least_squares(matrix.reshape(-1, 3), target.reshape(-1))
        fits.append((float(residual.square().sum()), model, delay, torch.linalg.vector_norm(residual.reshape(-1, 2), dim=-1), uncertainty))
    best = min(fits, key=lambda fit: fit[0])  # ties keep the full model (listed first)
    return best[1], best[2], best[3], best[4]


def _predict(spokes: Spokes, first: torch.Tensor, second: torch.Tensor, model: str, delay: GradientDelay) -> torch.Tensor:
    """Positions ``(t, u)`` where spokes ``i`` and ``j`` displaced by ``delay`` under ``model`` cross: ``(P, 2)``."""
    shift = torch.einsum("pkl,l->pk", model_matrix(model, spokes.directions, spokes.angles, first, second),
                         torch.tensor(delay.as_tuple(), dtype=torch.float64))
    return torch.linalg.solve(_spoke_matrix(spokes.directions, first, second), shift)


def _consensus(position: torch.Tensor, predicted: torch.Tensor, radius: float) -> torch.Tensor:
    """Pairs inside the window whose crossing lies within ``max(0.25, 3 × median)`` samples of the predicted one."""
    inside = (position.abs() < radius - 1e-6).all(dim=1)
    if not bool(inside.any()):
        return inside
    distance = torch.linalg.vector_norm(position - predicted, dim=-1)
    return inside & (distance <= max(0.25, 3.0 * float(distance[inside].median())))


def estimate_delay_ring(
    data: torch.Tensor,
    trajectory: torch.Tensor,
    min_angle_deg: float = 30.0,
    search_radius: float = 4.0,
    iterations: int = 8,
    support: float | None = None,
    partners: int = 16,
    rounds: int = 2,
) -> DelayEstimate:
    """RING estimate from ``data (coils, spokes, readout)`` on a nominal full-spoke ``trajectory (spokes, readout, 2)``.

    Args:
        min_angle_deg: pairs whose spokes cross at a smaller angle are skipped (ill-conditioned).
        search_radius: crossings are searched within ``±search_radius`` samples of the centre.
        iterations: Gauss–Newton iterations after the grid search.
        partners: each spoke is paired with its ``partners`` most nearly orthogonal spokes
            (all pairs for ≤ ``partners + 1`` spokes); the cost grows linearly with spokes.
        rounds: consensus rounds (see the module notes).
        support: projection support as a fraction of the readout field of view; default
            ``min(1, 1.5/oversampling)``.

    Raises:
        ValueError: not a full-spoke 2-D radial trajectory, or fewer than 2 usable pairs.
    """
    spokes = prepare_spokes(data, trajectory, support)
    first, second = crossing_pairs(spokes.angles, min_angle_deg, partners)
    if len(first) < 2:
        raise ValueError(f"RING needs at least 2 spoke pairs crossing at ≥ {min_angle_deg:g}°, found {len(first)}")
    position = _refine(spokes, first, second, _grid_search(spokes, first, second, search_radius, 0.25), iterations, search_radius)
    # the first consensus: crossings inside the window whose values agree (the search's wrong minima do not)
    matched = _crossing_mismatch(spokes, first, second, position)
    keep = (position.abs() < search_radius - 1e-6).all(dim=1)
    if bool(keep.any()):
        keep = keep & (matched <= max(0.05, 3.0 * float(matched[keep].median())))
    for round_index in range(rounds + 1):
        if int(keep.sum()) < 2:
            raise ValueError(f"fewer than 2 spoke crossings within ±{search_radius:g} samples agree; increase search_radius")
        model, delay, residual, uncertainty = _fit(spokes, first[keep], second[keep], position[keep])
        if round_index == rounds:
            break
        # every pair restarts from where the consensus delay puts its crossing
        predicted = _predict(spokes, first, second, model, delay)
        position = _refine(spokes, first, second, predicted.clamp(-search_radius, search_radius), iterations, search_radius)
        keep = _consensus(position, predicted, search_radius)
    mismatch = float(_crossing_mismatch(spokes, first[keep], second[keep], position[keep]).median())
    rms = float(residual.square().mean().sqrt())
    return DelayEstimate(delay, "ring", int(keep.sum()), rms, uncertainty, mismatch, model)
