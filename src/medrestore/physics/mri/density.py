"""Density compensation for non-Cartesian sampling: analytic ramp and iterative Pipe–Menon.

Weights ``w_j`` approximate the k-space area each sample represents, in grid cells, so that
``Aᴴ (w ⊙ y)`` (the gridding reconstruction) approximates the inverse centred DFT
(:class:`~medrestore.physics.mri.nufft.NUFFTOperator` is orthonormal on the grid: fully
sampled Cartesian points have ``w = 1``).

* Ramp (radial only): a sample at radius ``|k|`` on one of ``L`` half-lines spaced ``2π/L``
  apart covers ``Δ · 2π|k|/L`` (``Δ`` the readout spacing; ``L = 2S`` for ``S`` full spokes,
  ``L = S`` for centre-out spokes). The centre sample, shared by all spokes, gets the disc of
  radius ``Δ/2`` divided among them: ``π Δ² / (4 S)``.
* Pipe–Menon (Pipe & Menon, MRM 41(1), 1999): iterate ``w ← w / (C w)`` with ``C`` a
  positive convolution kernel evaluated between samples. Here ``C = A diag(h) Aᴴ`` with ``A``
  the NUFFT and ``h`` the separable triangular (Bartlett) window on the image grid
  (``h = 1`` at the centre pixel), i.e. convolution with the Fejér kernel
  ``Π_d sinc²(k_d/2)`` (positive, main lobe ±2 grid units), computed exactly by two NUFFTs.
  Fully sampled Cartesian points are a fixed point (``w = 1``); the plain Dirichlet kernel
  ``A Aᴴ`` has negative lobes and does not converge on oversampled spokes. Any trajectory.
"""

from __future__ import annotations

import math

import torch

from medrestore.physics.mri.nufft import DEFAULT_TOLERANCE, NUFFTOperator
from medrestore.physics.mri.trajectory import spoke_geometry


def ramp_density(trajectory: torch.Tensor, half_spokes: bool = False) -> torch.Tensor:
    """Analytic radial density compensation for a 2-D radial trajectory ``(spokes, readout, 2)``.

    Returns float32 ``(spokes, readout)`` weights in grid cells (see the module notes).
    Uniform angular spacing is assumed; golden-angle ordering is close to it for many spokes
    (use :func:`pipe_menon_density` otherwise).
    """
    geometry = spoke_geometry(trajectory)
    spokes = trajectory.shape[0]
    spacing = geometry.sample_spacing
    half_lines = spokes if half_spokes else 2 * spokes
    radius = torch.linalg.vector_norm(trajectory.to(torch.float64), dim=-1)
    weights = spacing * 2.0 * math.pi * radius / half_lines
    centre = math.pi * spacing**2 / (4.0 * spokes)
    weights = torch.where(radius < spacing / 2.0, torch.full_like(weights, centre), weights)
    return weights.to(torch.float32)


def pipe_menon_density(
    trajectory: torch.Tensor,
    grid_shape: tuple[int, ...],
    iterations: int = 20,
    tolerance: float = DEFAULT_TOLERANCE,
    oversampling: float = 2.0,
) -> torch.Tensor:
    """Iterative density compensation ``w ← w / |A Aᴴ w|`` from ``w = 1`` (Pipe & Menon 1999).

    Args:
        trajectory: ``(*samples, ndim)`` grid units.
        grid_shape: image matrix (sets the kernel ``A Aᴴ``).
        iterations: fixed-point iterations (20 reach ~1 % on radial trajectories).
        tolerance: NUFFT accuracy.
        oversampling: the window spans ``oversampling`` times the field of view, which narrows
            the kernel to ``Π_d sinc²(oversampling · k_d / 2)`` (main lobe ±2/oversampling grid units).

    Returns:
        float32 ``(*samples)`` weights in grid cells.
    """
    scaled_grid = tuple(int(round(oversampling * n)) for n in grid_shape)
    scaled = trajectory.to(torch.float64) * torch.tensor([m / n for m, n in zip(scaled_grid, grid_shape)], dtype=torch.float64)
    operator = NUFFTOperator(scaled.to(torch.float32), scaled_grid, tolerance)
    window = bartlett_window(scaled_grid)
    weights = torch.ones(operator.output_shape, dtype=torch.complex64)
    for _ in range(iterations):
        density = operator.forward(operator.adjoint(weights) * window).abs()
        weights = weights / density.clamp_min(1e-12)
    # Weights came out in cells of the scaled grid: ``Π_d (scaled_N_d / N_d)`` of them per grid cell.
    cells = math.prod(m / n for m, n in zip(scaled_grid, grid_shape))
    return (weights.real / cells).to(torch.float32)


def bartlett_window(grid_shape: tuple[int, ...]) -> torch.Tensor:
    """Separable triangular window ``Π_d (1 − |r_d − ⌊N_d/2⌋| / (N_d/2))``, float32 ``grid_shape``, 1 at the centre."""
    window = torch.ones((), dtype=torch.float32)
    for size in grid_shape:
        offsets = (torch.arange(size, dtype=torch.float32) - size // 2).abs()
        window = window[..., None] * (1.0 - offsets / (size / 2.0)).clamp_min(0.0)
    return window
