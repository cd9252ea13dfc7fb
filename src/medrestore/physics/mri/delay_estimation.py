"""Gradient-delay estimation from radial data alone: RING and AC-adaptive.

Both estimate the symmetric delay matrix ``S = [[x, xy], [xy, y]]`` (readout samples) of
:class:`~medrestore.physics.mri.trajectory.GradientDelay` from multi-coil data
``(coils, spokes, readout)`` on a nominal 2-D radial trajectory with full spokes.

Spokes are interpolated exactly between samples: a spoke ``y(t)`` (``t`` in samples from the
k-space centre) is the Fourier transform of the object's (coil-weighted) projection, whose
support is ``≤ √2·N`` of the ``oversampling·N``-wide readout field of view, so the
trigonometric interpolant of its ``M`` samples is exact up to truncation at the spoke ends.
Projection values outside the support (``|x| > support·M/2``) hold only noise and are zeroed
first (the image-space crop of BART's ``estdelay``).

RING (Rosenzweig, Holme & Uecker, MRM 81(3):1898–1906, 2019)
    Two non-parallel spokes ``i, j`` shifted by ``S n_i``, ``S n_j`` intersect at one k-space
    point, where all coils see the same value. For every pair with an angle in
    ``[min_angle, 180° − min_angle]`` (each spoke with its ``partners`` most orthogonal
    spokes) we find the readout positions ``(a, b)`` minimising
    ``Σ_c |y_i,c(a) − y_j,c(b)|²`` — a coarse grid search followed by Gauss–Newton on the
    exact interpolants (continuous positions instead of BART's ×100 zero-padded grid) —
    and solve ``a n_i − b n_j = S (n_j − n_i)`` (two equations per pair) for ``(x, y, xy)``
    by least squares; a second round restarts each pair from the intersection the first
    estimate predicts and drops pairs that disagree with it (robust to large delays).

AC-adaptive (Block & Uecker, ISMRM 19:2816, 2011; quadratic form: Moussavi et al., MRM 71(1), 2014)
    Each spoke is paired with the most nearly antiparallel spoke; the reversed partner is a
    copy of the spoke shifted by ``2 n·S n`` along the readout. The shift is found by
    maximising the coil-summed cross-correlation (grid search + Newton on its exact
    trigonometric form) and ``δ(φ) = x cos²φ + y sin²φ + xy sin 2φ`` is fitted by least
    squares. It ignores the shift perpendicular to the spokes, so anisotropic delays bias it.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from medrestore.physics.mri.trajectory import GradientDelay, spoke_geometry

ESTIMATORS = ("ring", "ac-adaptive")


@dataclasses.dataclass(frozen=True)
class DelayEstimate:
    """An estimated delay and how it was obtained.

    Attributes:
        delay: the estimate (samples).
        method: ``"ring"`` or ``"ac-adaptive"``.
        equations: number of spoke pairs used.
        residual: RMS residual of the least-squares fit (samples).
    """

    delay: GradientDelay
    method: str
    equations: int
    residual: float


@dataclasses.dataclass(frozen=True)
class _Spokes:
    """Spoke spectra ready for exact interpolation, and the spoke geometry."""

    projections: torch.Tensor  # complex128 (coils, spokes, Q): FFT of each spoke, frequencies within the support only
    frequencies: torch.Tensor  # float64 (Q,) the kept integer frequencies q (of M)
    first: torch.Tensor  # float64 (spokes,) position of sample 0, samples from the centre
    angles: torch.Tensor
    directions: torch.Tensor
    samples: int


def _prepare(data: torch.Tensor, trajectory: torch.Tensor, support: float | None) -> _Spokes:
    if data.ndim != 3:
        raise ValueError(f"delay estimation needs data (coils, spokes, readout), got shape {tuple(data.shape)}")
    geometry = spoke_geometry(trajectory)
    samples = data.shape[-1]
    if samples < 4:
        raise ValueError("spokes need at least 4 readout samples")
    first = geometry.positions[:, 0] / geometry.sample_spacing
    if float(first.max()) > -1.0:
        raise ValueError("delay estimation needs full spokes through the k-space centre (centre-out spokes given)")
    oversampling = 1.0 / geometry.sample_spacing
    fraction = min(1.0, 1.5 / oversampling) if support is None else min(1.0, support)
    projections = torch.fft.fft(data.to(torch.complex128), dim=-1)
    frequencies = torch.fft.fftfreq(samples, d=1.0 / samples, dtype=torch.float64)
    # Frequencies within the support, symmetric and sorted (so flipping maps q to −q); the rest is noise.
    order = torch.argsort(frequencies)
    frequencies, projections = frequencies[order], projections[..., order]
    kept = frequencies.abs() <= min(fraction * samples / 2, samples / 2 - 1)
    return _Spokes(projections[..., kept], frequencies[kept], first, geometry.angles, geometry.directions, samples)


def _interpolate(spokes: _Spokes, index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Values of spokes ``index (P,)`` at ``positions (P, K)`` (samples from the centre): complex ``(coils, P, K)``.

    ``y(t) = (1/M) Σ_q Y_q exp(2πi q (t − t_0) / M)``.
    """
    offsets = positions - spokes.first[index][:, None]  # (P, K)
    kernel = torch.exp(2j * math.pi * offsets[..., None] * spokes.frequencies / spokes.samples) / spokes.samples  # (P, K, Q)
    return torch.einsum("cpq,pkq->cpk", spokes.projections[:, index], kernel)


def _pairs(angles: torch.Tensor, min_angle_deg: float, partners: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spoke pairs ``i < j`` crossing at an angle ≥ ``min_angle_deg``: each spoke with its ``partners`` most orthogonal spokes."""
    count = len(angles)
    crossing = torch.sin(angles[:, None] - angles[None, :]).abs()
    crossing.fill_diagonal_(0.0)
    chosen = torch.zeros(count, count, dtype=torch.bool)
    nearest = crossing.topk(min(partners, count - 1), dim=1).indices
    chosen[torch.arange(count)[:, None], nearest] = True
    chosen = (chosen | chosen.T) & (crossing >= math.sin(math.radians(min_angle_deg)))
    first, second = torch.triu_indices(count, count, offset=1)
    keep = chosen[first, second]
    return first[keep], second[keep]


def _grid_search(spokes: _Spokes, first: torch.Tensor, second: torch.Tensor, radius: float, step: float) -> torch.Tensor:
    """Coarse minimiser ``(P, 2)`` of ``Σ_c |y_i(a) − y_j(b)|²`` over a square grid of ``(a, b)``."""
    grid = torch.arange(-radius, radius + step / 2, step, dtype=torch.float64)
    every = torch.arange(len(spokes.angles))
    values = _interpolate(spokes, every, grid.expand(len(every), -1))  # (C, S, K)
    values = values.permute(1, 2, 0).contiguous()  # (S, K, C)
    energy = values.abs().square().sum(dim=-1)  # (S, K)
    best = torch.empty(len(first), 2, dtype=torch.float64)
    chunk = 1024
    for start in range(0, len(first), chunk):
        i, j = first[start : start + chunk], second[start : start + chunk]
        # ‖a − b‖² = ‖a‖² + ‖b‖² − 2 Re <b, a> over coils, the cross term as one batched matrix product
        cross = torch.bmm(values[i], values[j].conj().transpose(1, 2)).real  # (P, K, K)
        cost = energy[i][:, :, None] + energy[j][:, None, :] - 2.0 * cross
        flat = cost.reshape(len(i), -1).argmin(dim=1)
        best[start : start + chunk, 0] = grid[flat // len(grid)]
        best[start : start + chunk, 1] = grid[flat % len(grid)]
    return best


def _refine_intersections(
    spokes: _Spokes, first: torch.Tensor, second: torch.Tensor, start: torch.Tensor, iterations: int, radius: float
) -> torch.Tensor:
    """Gauss–Newton on ``r(a, b) = y_i(a) − y_j(b)`` (all coils) from ``start (P, 2)``."""
    position = start.clone()
    factor = 2.0 * math.pi * spokes.frequencies / spokes.samples
    gathered = [(spokes.projections[:, index], spokes.first[index]) for index in (first, second)]

    def evaluate(side: int, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coefficients, origin = gathered[side]
        kernel = torch.exp(1j * (at - origin)[:, None] * factor) / spokes.samples  # (P, Q)
        weighted = coefficients * kernel
        return weighted.sum(dim=-1), (weighted * (1j * factor)).sum(dim=-1)  # (C, P) each

    for _ in range(iterations):
        value_i, slope_i = evaluate(0, position[:, 0])
        value_j, slope_j = evaluate(1, position[:, 1])
        residual = value_i - value_j  # (C, P)
        jacobian = torch.stack([slope_i, -slope_j], dim=-1)  # (C, P, 2)
        normal = torch.einsum("cpk,cpl->pkl", jacobian.conj(), jacobian).real
        gradient = torch.einsum("cpk,cp->pk", jacobian.conj(), residual).real
        normal = normal + 1e-9 * torch.eye(2, dtype=torch.float64) * normal.diagonal(dim1=1, dim2=2).mean(dim=1)[:, None, None]
        step = torch.linalg.solve(normal, -gradient)
        position = (position + step.clamp(-0.5, 0.5)).clamp(-radius, radius)
    return position


def _ring_system(directions: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair, the 2×3 matrix ``M`` with ``S (n_j − n_i) = M (x, y, xy)`` and the 2×2 ``[n_i, −n_j]`` (``(y, x)`` rows)."""
    n_i, n_j = directions[first], directions[second]  # (P, 2) as (n_y, n_x)
    d = n_j - n_i
    zeros = torch.zeros_like(d[:, 0])
    # y-component: xy·d_x + y·d_y ; x-component: x·d_x + xy·d_y   (unknowns ordered x, y, xy)
    rows_y = torch.stack([zeros, d[:, 0], d[:, 1]], dim=-1)
    rows_x = torch.stack([d[:, 1], zeros, d[:, 0]], dim=-1)
    return torch.stack([rows_y, rows_x], dim=1), torch.stack([n_i, -n_j], dim=-1)


def _solve_ring(
    directions: torch.Tensor, first: torch.Tensor, second: torch.Tensor, position: torch.Tensor
) -> tuple[GradientDelay, torch.Tensor]:
    """Least squares for ``(x, y, xy)`` from ``a n_i − b n_j = S (n_j − n_i)``; returns the per-pair residual norms too."""
    matrix, positions = _ring_system(directions, first, second)
    target = torch.einsum("pkl,pl->pk", positions, position)  # a n_i − b n_j, (P, 2)
    solution = torch.linalg.lstsq(matrix.reshape(-1, 3), target.reshape(-1, 1)).solution[:, 0]
    residual = torch.linalg.vector_norm(torch.einsum("pkl,l->pk", matrix, solution) - target, dim=-1)
    return GradientDelay(float(solution[0]), float(solution[1]), float(solution[2])), residual


def _predicted_intersections(directions: torch.Tensor, first: torch.Tensor, second: torch.Tensor, delay: GradientDelay) -> torch.Tensor:
    """Positions ``(a, b)`` where spokes ``i`` and ``j`` shifted by ``delay`` cross: ``(P, 2)``."""
    matrix, positions = _ring_system(directions, first, second)
    shift = torch.einsum("pkl,l->pk", matrix, torch.tensor(delay.as_tuple(), dtype=torch.float64))
    return torch.linalg.solve(positions, shift)


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
    """RING gradient-delay estimate from ``data (coils, spokes, readout)`` on ``trajectory (spokes, readout, 2)``.

    Args:
        min_angle_deg: pairs whose spokes cross at a smaller angle are skipped (ill-conditioned).
        search_radius: intersections are searched within ``±search_radius`` samples of the centre
            (delays of a few samples are typical).
        iterations: Gauss–Newton iterations after the grid search.
        partners: each spoke is paired with its ``partners`` most nearly orthogonal spokes
            (all pairs for ≤ ``partners + 1`` spokes); the cost grows linearly with spokes.
        rounds: refinement rounds; after each, every pair restarts from the intersection the
            consensus delay predicts, and pairs far off it (a wrong local minimum of the grid
            search, or outside the window) are dropped.
        support: projection support as a fraction of the readout field of view; default
            ``min(1, 1.5/oversampling)``.

    Raises:
        ValueError: not a full-spoke 2-D radial trajectory, or fewer than 2 usable pairs.
    """
    spokes = _prepare(data, trajectory, support)
    first, second = _pairs(spokes.angles, min_angle_deg, partners)
    if len(first) < 2:
        raise ValueError(f"RING needs at least 2 spoke pairs crossing at ≥ {min_angle_deg}°, found {len(first)}")
    start = _grid_search(spokes, first, second, search_radius, 0.25)
    keep = torch.ones(len(first), dtype=torch.bool)
    for _ in range(rounds):
        position = _refine_intersections(spokes, first, second, start, iterations, search_radius)
        # intersections clamped at the window's edge, or far off the consensus, are dropped
        keep = (position.abs() < search_radius - 1e-6).all(dim=1) & keep
        if int(keep.sum()) < 2:
            raise ValueError(f"fewer than 2 spoke intersections within ±{search_radius} samples; increase search_radius")
        delay, _ = _solve_ring(spokes.directions, first[keep], second[keep], position[keep])
        predicted = _predicted_intersections(spokes.directions, first, second, delay)
        mismatch = torch.linalg.vector_norm(position - predicted, dim=-1)
        keep = keep & (mismatch <= max(0.25, 3.0 * float(mismatch[keep].median())))
        # the next round restarts every pair from where the consensus delay puts its intersection
        start = predicted.clamp(-search_radius, search_radius)
    delay, residual = _solve_ring(spokes.directions, first[keep], second[keep], position[keep])
    return DelayEstimate(delay, "ring", int(keep.sum()), float(torch.sqrt(torch.mean(residual**2))))


def _opposing(angles: torch.Tensor) -> torch.Tensor:
    """For each spoke, the index of the spoke whose direction is most nearly opposite."""
    unit = torch.polar(torch.ones_like(angles), angles)
    distance = (unit[:, None] - unit[None, :]).abs()
    return distance.argmax(dim=1)


def _correlation_shift(spokes: _Spokes, index: torch.Tensor, partner: torch.Tensor, radius: float) -> torch.Tensor:
    """Shift ``s`` (samples) maximising ``Re Σ_{c,q} conj(C_i,q) C_j,−q e^{2πi q s/M}``.

    ``C_q = Y_q e^{−2πi q t_0/M}`` are the spectra referred to the k-space centre; the reversed
    partner ``z(u) = y_j(−u)`` has centred coefficients ``C_j,−q`` (a flip of the sorted,
    symmetric frequency axis), and ``y_i(t) = z(t + s)`` means ``C_i,q = C_j,−q e^{2πi q s/M}``.
    """
    samples = spokes.samples
    q = spokes.frequencies
    centred = spokes.projections * torch.exp(-2j * math.pi * q * spokes.first[:, None] / samples)
    cross = (centred[:, index].conj() * centred[:, partner].flip(-1)).sum(dim=0)  # (P, Q)
    grid = torch.arange(-radius, radius + 0.025, 0.05, dtype=torch.float64)
    score = (cross[:, None, :] * torch.exp(2j * math.pi * q * grid[:, None] / samples)).real.sum(dim=-1)
    shift = grid[score.argmax(dim=1)]
    for _ in range(8):
        phase = torch.exp(2j * math.pi * q * shift[:, None] / samples)
        factor = 2j * math.pi * q / samples
        first_derivative = (cross * phase * factor).real.sum(dim=-1)
        second_derivative = (cross * phase * factor**2).real.sum(dim=-1)
        step = -first_derivative / torch.where(second_derivative < 0, second_derivative, -second_derivative.abs() - 1e-30)
        shift = (shift + step.clamp(-0.1, 0.1)).clamp(-radius, radius)
    return shift


def estimate_delay_ac_adaptive(
    data: torch.Tensor, trajectory: torch.Tensor, search_radius: float = 6.0, support: float | None = None
) -> DelayEstimate:
    """AC-adaptive gradient-delay estimate (see the module notes); arguments as :func:`estimate_delay_ring`."""
    spokes = _prepare(data, trajectory, support)
    if len(spokes.angles) < 3:
        raise ValueError("AC-adaptive needs at least 3 spokes")
    index = torch.arange(len(spokes.angles))
    partner = _opposing(spokes.angles)
    shift = _correlation_shift(spokes, index, partner, search_radius)
    # y_i(t) = r_j(t + s) with s = 2 δ(φ_i): the reversed partner runs ahead by twice the along-spoke delay.
    along = shift / 2.0
    angles = spokes.angles
    matrix = torch.stack([torch.cos(angles) ** 2, torch.sin(angles) ** 2, torch.sin(2.0 * angles)], dim=-1)
    solution = torch.linalg.lstsq(matrix, along[:, None]).solution[:, 0]
    residual = float(torch.sqrt(torch.mean((matrix @ solution - along) ** 2)))
    delay = GradientDelay(float(solution[0]), float(solution[1]), float(solution[2]))
    return DelayEstimate(delay, "ac-adaptive", int(len(index)), residual)


def estimate_delay(data: torch.Tensor, trajectory: torch.Tensor, method: str = "ring") -> DelayEstimate:
    """Dispatch to :func:`estimate_delay_ring` or :func:`estimate_delay_ac_adaptive` (``method`` in :data:`ESTIMATORS`)."""
    if method == "ring":
        return estimate_delay_ring(data, trajectory)
    if method == "ac-adaptive":
        return estimate_delay_ac_adaptive(data, trajectory)
    raise ValueError(f"unknown delay estimator {method!r}; expected one of {', '.join(ESTIMATORS)}")
