"""Shared pieces of the gradient-delay estimators: spoke spectra, exact interpolation, the estimate record.

Spokes are interpolated exactly between samples: a spoke ``y(t)`` (``t`` in samples from the
k-space centre) is the Fourier transform of the object's (coil-weighted) projection, whose
support is ``≤ √2·N`` of the ``oversampling·N``-wide readout field of view, so the
trigonometric interpolant of its ``M`` samples is exact up to truncation at the spoke ends.
Projection values outside the support (``|x| > support·M/2``) hold only noise and are zeroed
first (the image-space crop of BART's ``estdelay``).

Every estimate carries its fit quality (:class:`DelayEstimate`): the RMS residual of its
least-squares equations, the standard error of ``(x, y, xy)`` those residuals imply, and the
normalised mismatch of the data it matched (0: the matched samples agree exactly; 1: no
relation, as between independent noise).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from medrestore.physics.mri.trajectory import GradientDelay, spoke_geometry


@dataclasses.dataclass(frozen=True)
class DelayEstimate:
    """An estimated delay, how it was obtained and how well the data support it.

    Attributes:
        delay: the estimate (samples, medrestore's axes).
        method: ``"ring"``, ``"ac-adaptive"`` or ``"given"``.
        equations: number of spoke pairs used.
        residual: RMS residual of the least-squares fit (samples).
        uncertainty: RMS over ``(x, y, xy)`` of the standard errors implied by the residual,
            ``√(σ̂² tr((AᵀA)⁻¹)/3)`` with ``σ̂² = ‖r‖²/(rows − 3)`` (samples; ``inf`` without
            redundant equations).
        mismatch: median over pairs of the normalised mismatch of the matched samples,
            ``‖u − v‖² / (‖u‖² + ‖v‖²)`` (0 = exact agreement, 1 = unrelated data).
        model: the delay model fitted: ``"full"`` (every sample moves by ``S n``) or
            ``"along"`` (only the part along the spoke, ``(nᵀSn) n``).
    """

    delay: GradientDelay
    method: str
    equations: int
    residual: float
    uncertainty: float = 0.0
    mismatch: float = 0.0
    model: str = "full"

    def to_dict(self) -> dict[str, object]:
        """Plain numbers (medrestore's axes) for reports."""
        return {"method": self.method, "delay": [round(v, 5) for v in self.delay.as_tuple()], "pairs": self.equations,
                "residual": round(self.residual, 5), "uncertainty": _rounded(self.uncertainty),
                "mismatch": round(self.mismatch, 5), "model": self.model}


def _rounded(value: float) -> float | None:
    return round(value, 5) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class Spokes:
    """Spoke spectra ready for exact interpolation, and the spoke geometry.

    Attributes:
        projections: complex128 ``(coils, spokes, Q)`` — FFT of each spoke, frequencies within the support only.
        frequencies: float64 ``(Q,)`` — the kept integer frequencies ``q`` (of ``M``), sorted and symmetric.
        first: float64 ``(spokes,)`` — position of sample 0, samples from the centre.
        angles: float64 ``(spokes,)``.
        directions: float64 ``(spokes, 2)`` — ``(n_y, n_x)``.
        samples: ``M``, samples per spoke.
        oversampling: readout samples per grid unit.
    """

    projections: torch.Tensor
    frequencies: torch.Tensor
    first: torch.Tensor
    angles: torch.Tensor
    directions: torch.Tensor
    samples: int
    oversampling: float

    def centred(self) -> torch.Tensor:
        """Spectra referred to the k-space centre, ``C_q = Y_q e^{−2πi q t_0/M}``: ``(coils, spokes, Q)``."""
        return self.projections * torch.exp(-2j * math.pi * self.frequencies * self.first[:, None] / self.samples)


def prepare_spokes(data: torch.Tensor, trajectory: torch.Tensor, support: float | None) -> Spokes:
    """:class:`Spokes` of ``data (coils, spokes, readout)`` on a nominal full-spoke ``trajectory (spokes, readout, 2)``.

    ``support``: projection support as a fraction of the readout field of view (default
    ``min(1, 1.5/oversampling)``). Raises ``ValueError`` for other shapes or centre-out spokes.
    """
    if data.ndim != 3:
        raise ValueError(f"delay estimation needs data (coils, spokes, readout), got shape {tuple(data.shape)}")
    geometry = spoke_geometry(trajectory)
    samples = data.shape[-1]
    if samples < 4:
        raise ValueError("spokes need at least 4 readout samples")
    first = geometry.positions[:, 0] / geometry.sample_spacing
    if float(first.max()) > -1.0:
        raise ValueError("delay estimation needs full spokes through the k-space centre (centre-out spokes given)")
    if not bool(torch.isfinite(torch.view_as_real(data)).all()):
        raise ValueError("the k-space holds NaN or infinite values")
    if not bool((data != 0).any()):
        raise ValueError("the k-space holds no signal (all zero)")
    oversampling = 1.0 / geometry.sample_spacing
    fraction = min(1.0, 1.5 / oversampling) if support is None else min(1.0, support)
    projections = torch.fft.fft(data.to(torch.complex128), dim=-1)
    frequencies = torch.fft.fftfreq(samples, d=1.0 / samples, dtype=torch.float64)
    # Frequencies within the support, symmetric and sorted (so flipping maps q to −q); the rest is noise.
    order = torch.argsort(frequencies)
    frequencies, projections = frequencies[order], projections[..., order]
    kept = frequencies.abs() <= min(fraction * samples / 2, samples / 2 - 1)
    return Spokes(projections[..., kept], frequencies[kept], first, geometry.angles, geometry.directions, samples, oversampling)


def interpolate(spokes: Spokes, index: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Values of spokes ``index (P,)`` at ``positions (P, K)`` (samples from the centre): complex ``(coils, P, K)``.

    ``y(t) = (1/M) Σ_q Y_q exp(2πi q (t − t_0) / M)``.
    """
    offsets = positions - spokes.first[index][:, None]  # (P, K)
    kernel = torch.exp(2j * math.pi * offsets[..., None] * spokes.frequencies / spokes.samples) / spokes.samples  # (P, K, Q)
    return torch.einsum("cpq,pkq->cpk", spokes.projections[:, index], kernel)


def along_rows(angles: torch.Tensor) -> torch.Tensor:
    """Rows ``(cos²φ, sin²φ, sin 2φ)`` with ``nᵀSn = row · (x, y, xy)``: ``(*angles.shape, 3)``."""
    return torch.stack([torch.cos(angles) ** 2, torch.sin(angles) ** 2, torch.sin(2.0 * angles)], dim=-1)


def least_squares(matrix: torch.Tensor, target: torch.Tensor) -> tuple[GradientDelay, torch.Tensor, float]:
    """``(x, y, xy)`` minimising ``‖A θ − b‖`` for ``A (rows, 3)``, ``b (rows,)``: the delay, the residual vector and the uncertainty.

    The uncertainty is ``√(σ̂² tr((AᵀA)⁻¹)/3)``, ``σ̂² = ‖r‖²/(rows − 3)``: the RMS standard error
    of the three entries if the residuals were independent (``inf`` for ``rows ≤ 3`` or a
    singular system).
    """
    solution = torch.linalg.lstsq(matrix, target[:, None]).solution[:, 0]
    residual = matrix @ solution - target
    rows = matrix.shape[0]
    normal = matrix.T @ matrix
    if rows <= 3 or float(torch.linalg.matrix_rank(normal)) < 3:
        return GradientDelay(*map(float, solution)), residual, math.inf
    variance = float(residual.square().sum()) / (rows - 3)
    uncertainty = math.sqrt(variance * float(torch.linalg.inv(normal).diagonal().sum()) / 3.0)
    return GradientDelay(*map(float, solution)), residual, uncertainty


def normalised_mismatch(first: torch.Tensor, second: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """``‖u − v‖² / (‖u‖² + ‖v‖²)`` reduced over ``dim`` (0 for equal, 1 for orthogonal vectors)."""
    difference = (first - second).abs().square().sum(dim=dim)
    energy = first.abs().square().sum(dim=dim) + second.abs().square().sum(dim=dim)
    return difference / energy.clamp_min(torch.finfo(torch.float64).tiny)
