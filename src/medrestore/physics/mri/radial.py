"""Radial acquisition and reconstruction pieces: gridding, coil maps from the centre, the radial SENSE operator.

Simulated coils come from :func:`medrestore.physics.mri.simulation.birdcage_coil_maps`.

* :func:`radial_sense` — ``A = √w ⊙ NUFFT(S ⊙ x)``: the SENSE operator with a NUFFT in place
  of Cartesian sampling, optionally density-weighted (weighted least squares, the
  preconditioning of Pruessmann et al., MRM 46(4), 2001, which makes CG and FISTA converge in
  tens of iterations instead of hundreds).
* :func:`gridding` — ``Aᴴ (w ⊙ y)`` per coil: the density-compensated adjoint NUFFT.
* :func:`radial_coil_maps` — ESPIRiT (:func:`~medrestore.physics.mri.espirit.espirit_maps`) on
  the Cartesian k-space of the gridded coil images: the densely sampled radial centre is the
  calibration region (all spokes cross it, so it is fully sampled up to ``|k| ≈ S/π``).
"""

from __future__ import annotations

import math

import torch

from medrestore.core.fft import fftc
from medrestore.physics.mri.espirit import RECON_ESPIRIT, EspiritOptions, espirit_maps
from medrestore.physics.mri.nufft import DEFAULT_TOLERANCE, NUFFTOperator
from medrestore.physics.mri.operators import LinearOperator, Multiply
from medrestore.physics.mri.sense import SenseOperator


def radial_sense(
    coil_maps: torch.Tensor,
    trajectory: torch.Tensor,
    weights: torch.Tensor | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> LinearOperator:
    """``A x = √w ⊙ F_nu (S ⊙ x)``: image ``(*grid)`` → samples ``(coils, *samples)``.

    Args:
        coil_maps: complex ``(coils, *grid)``.
        trajectory: ``(*samples, ndim)`` grid units.
        weights: density compensation ``(*samples)`` (``None``: unweighted). With weights, fit
            the data as ``√w ⊙ y`` (see :func:`weighted_samples`).
        tolerance: NUFFT accuracy.
    """
    grid = tuple(coil_maps.shape[1:])
    sense = SenseOperator(coil_maps, NUFFTOperator(trajectory, grid, tolerance))
    if weights is None:
        return sense
    return Multiply(sense.output_shape, torch.sqrt(weights.to(torch.float32).clamp_min(0.0))) @ sense


def weighted_samples(kspace: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``√w ⊙ y``, the data side of :func:`radial_sense` with weights (``y`` itself without)."""
    return kspace if weights is None else kspace * torch.sqrt(weights.to(torch.float32).clamp_min(0.0)).to(kspace.device)


def gridding(
    kspace: torch.Tensor, trajectory: torch.Tensor, grid_shape: tuple[int, ...], weights: torch.Tensor,
    tolerance: float = 1e-4,
) -> torch.Tensor:
    """Density-compensated adjoint NUFFT ``Aᴴ(w ⊙ y)`` of ``kspace (*batch, *samples)``: complex64 ``(*batch, *grid)``."""
    operator = NUFFTOperator(trajectory, grid_shape, tolerance)
    return operator.adjoint(kspace * weights.to(kspace.device))


def radial_coil_maps(
    kspace: torch.Tensor,
    trajectory: torch.Tensor,
    grid_shape: tuple[int, int],
    weights: torch.Tensor,
    options: EspiritOptions = RECON_ESPIRIT,
) -> torch.Tensor:
    """Coil maps from radial data ``(coils, *samples)``: ESPIRiT on the gridded k-space centre.

    The calibration width is limited to the fully sampled radius ``≈ 2S/π`` across (Nyquist
    along the circumference) for ``S`` full spokes, and to at least 8.
    """
    coil_images = gridding(kspace, trajectory, grid_shape, weights)
    cartesian = fftc(coil_images, 2)
    spokes = trajectory.shape[0] if trajectory.ndim == 3 else int(math.prod(trajectory.shape[:-2]))
    width = max(8, min(options.calibration_width, int(2 * spokes / math.pi) // 2 * 2))
    calibration = EspiritOptions(width, options.kernel_width, options.threshold, options.crop)
    maps, _ = espirit_maps(cartesian, None, calibration)
    return maps
