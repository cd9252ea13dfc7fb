"""AC-adaptive gradient-delay estimation (Block & Uecker, ISMRM 19:2816, 2011).

Each spoke ``i`` is paired with the spoke ``j`` whose direction is most nearly opposite. Under
the delay model that shifts samples along their spoke only, ``y(t) = F((t + δ(φ)) n)``, the
partner read backwards, ``z(t) = y_j(−t)``, is a copy of spoke ``i`` shifted by
``s = δ(φ_i) + δ(φ_j)`` samples, with ``δ(φ) = nᵀSn = x cos²φ + y sin²φ + xy sin 2φ``
(Moussavi et al., MRM 71(1):308–312, 2014). In the projection domain (the FFT of the spokes)
the shift is a linear phase: the cross spectrum ``X_q = Σ_c conj(C_i,c,q) C_j,c,−q`` has
``arg X_q = −2π q s / M + θ``, and ``s`` is read from the phase of its lag-one product,
``s = −(M/2π) arg Σ_q X_{q+1} conj(X_q)`` (the estimator of BART's ``estdelay``; its weights
``|X_q||X_{q+1}|`` follow the signal and the constant ``θ``, e.g. an off-resonance phase
between the two readouts, drops out). ``(x, y, xy)`` follows by least squares over the pairs.

The model it assumes shifts samples along the spoke only. Per-axis delays shift every sample
by the whole vector ``S n`` (see :class:`~medrestore.physics.mri.trajectory.GradientDelay`):
then the partner lines are also displaced sideways by ``±n⊥ᵀSn`` and the estimate is biased in
proportion to the anisotropy ``|x − y|`` and ``|xy|`` (RING is exact there). Antiparallel
partners exist only when the spokes cover 360° (golden-angle full spokes, BART's ``traj -D``);
uniform full spokes over 180° (``φ_i = πi/S``, BART's default) have none, and the estimator
refuses them.
"""

from __future__ import annotations

import math

import torch

from medrestore.physics.mri.delay_spokes import DelayEstimate, Spokes, along_rows, least_squares, prepare_spokes

MAX_DILUTION = 3.0
"""Largest :func:`dilution` of the pair geometry AC-adaptive accepts (spokes over 360° give about 1)."""


def opposing_pairs(angles: torch.Tensor, max_deviation_deg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Unordered spoke pairs ``(i, j)``: ``j`` the spoke most nearly opposite ``i``, within ``max_deviation_deg`` of antiparallel."""
    unit = torch.polar(torch.ones_like(angles), angles)
    partner = (unit[:, None] - unit[None, :]).abs().argmax(dim=1)
    deviation = torch.rad2deg(torch.pi - torch.angle(unit * unit[partner].conj()).abs())
    index = torch.arange(len(angles))
    keep = (deviation <= max_deviation_deg) & (partner != index)
    pairs = torch.stack([torch.minimum(index, partner), torch.maximum(index, partner)], dim=1)[keep]
    pairs = torch.unique(pairs, dim=0)
    return pairs[:, 0], pairs[:, 1]


def dilution(matrix: torch.Tensor) -> float:
    """``√(tr((AᵀA/rows)⁻¹)/3)``: how much the pair geometry amplifies an error of one equation (``inf`` if singular).

    Pairs spread over 180° give values near 1; pairs bunched at a few angles, large ones.
    """
    normal = matrix.T @ matrix / matrix.shape[0]
    if int(torch.linalg.matrix_rank(normal)) < 3:
        return math.inf
    return math.sqrt(float(torch.linalg.inv(normal).diagonal().sum()) / 3.0)


def _cross_spectra(spokes: Spokes, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``conj(C_i,q) C_j,−q`` per coil: complex ``(coils, P, Q)`` (the partner read backwards)."""
    centred = spokes.centred()
    return centred[:, first].conj() * centred[:, second].flip(-1)


def phase_slope_shift(cross: torch.Tensor, samples: int) -> torch.Tensor:
    """Shift ``s`` (samples, ``(P,)``) of cross spectra ``(coils, P, Q)``: ``−(M/2π) arg Σ_{c,q} X_{q+1} conj(X_q)``."""
    lag = (cross[..., 1:] * cross[..., :-1].conj()).sum(dim=-1).sum(dim=0)
    return -torch.angle(lag) * samples / (2.0 * math.pi)


def _pair_mismatch(cross: torch.Tensor, spokes: Spokes, first: torch.Tensor, second: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``1 − 2|⟨u, v_s⟩| / (‖u‖² + ‖v‖²)``: spoke ``i`` against its partner shifted by ``s`` (best common phase), ``(P,)``."""
    phase = torch.exp(2j * math.pi * spokes.frequencies * shift[:, None] / spokes.samples)
    inner = (cross * phase).sum(dim=(0, 2)).abs()
    energy = spokes.projections.abs().square().sum(dim=(0, 2))
    return 1.0 - 2.0 * inner / (energy[first] + energy[second]).clamp_min(torch.finfo(torch.float64).tiny)


def estimate_delay_ac_adaptive(
    data: torch.Tensor, trajectory: torch.Tensor, support: float | None = None, max_deviation_deg: float = 15.0
) -> DelayEstimate:
    """AC-adaptive estimate from ``data (coils, spokes, readout)`` on a nominal full-spoke ``trajectory (spokes, readout, 2)``.

    Args:
        support: projection support as a fraction of the readout field of view; default
            ``min(1, 1.5/oversampling)``.
        max_deviation_deg: partners further than this from antiparallel are not used (their
            lines cross the spoke instead of running along it).

    Raises:
        ValueError: not full spokes, or fewer than 4 usable pairs (e.g. spokes over 180° only).
    """
    spokes = prepare_spokes(data, trajectory, support)
    first, second = opposing_pairs(spokes.angles, max_deviation_deg)
    if len(first) < 4:
        raise ValueError(f"AC-adaptive needs at least 4 pairs of antiparallel spokes (within {max_deviation_deg:g}°), found "
                         f"{len(first)}: the spokes do not cover 360° (uniform full spokes over 180°?)")
    matrix = along_rows(spokes.angles[first]) + along_rows(spokes.angles[second])
    if dilution(matrix) > MAX_DILUTION:
        raise ValueError(f"AC-adaptive found {len(first)} antiparallel pairs, at too narrow a range of angles to separate x, y "
                         "and xy (uniform full spokes over 180°?)")
    cross = _cross_spectra(spokes, first, second)
    shift = phase_slope_shift(cross, spokes.samples)
    delay, residual, uncertainty = least_squares(matrix, shift)
    mismatch = float(_pair_mismatch(cross, spokes, first, second, shift).median())
    rms = float(residual.square().mean().sqrt())
    return DelayEstimate(delay, "ac-adaptive", int(len(first)), rms, uncertainty, mismatch, "along")
