"""Radial acquisition and reconstruction pieces: gridding, coil maps from the centre, the radial SENSE operator.

Simulated coils come from :func:`medrestore.physics.mri.simulation.birdcage_coil_maps`.

* :func:`radial_sense` — ``A = √w ⊙ NUFFT(S ⊙ x)``: the SENSE operator with a NUFFT in place
  of Cartesian sampling, optionally density-weighted (weighted least squares, the
  preconditioning of Pruessmann et al., MRM 46(4), 2001, which makes CG and FISTA converge in
  tens of iterations instead of hundreds). Its Gram operator ``AᴴA`` — what every iteration of
  CG, FISTA and the unrolled network applies — runs as a Toeplitz embedding
  (:class:`ToeplitzSense`) instead of a NUFFT pair.
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


def toeplitz_kernel(
    trajectory: torch.Tensor, grid_shape: tuple[int, ...], weights: torch.Tensor | None = None, tolerance: float = 1e-6
) -> torch.Tensor:
    """The transfer function of the Gram operator ``F_nuᴴ W F_nu`` on the doubled grid: complex64 ``(2N_1, …, 2N_d)``.

    With the NUFFT of :mod:`~medrestore.physics.mri.nufft` (``N = Π N_d`` pixels),

        ``(F_nuᴴ W F_nu z)(r) = Σ_r' K(r − r') z(r')``,  ``K(d) = N⁻¹ Σ_j w_j exp(2πi Σ_a k_{j,a} d_a / N_a)``,

    a convolution whose kernel is defined for ``d_a ∈ [−(N_a − 1), N_a − 1]``: it is exact as a
    circular convolution on a grid of ``2N_a`` per axis with the image zero-padded (Wajer & Pruessmann,
    ISMRM 2001; Fessler et al., IEEE TSP 53(9), 2005). ``K`` on that grid is one type-1 NUFFT of the
    weights (the point-spread function at twice the field of view); its FFT is returned.

    Args:
        trajectory: ``(*samples, ndim)`` grid units.
        grid_shape: the image matrix ``(N_1, …, N_d)``.
        weights: ``w`` ``(*samples)`` (``None``: ones).
        tolerance: accuracy of the kernel's NUFFT (applied once, so it may be tight).
    """
    grid_shape = tuple(int(n) for n in grid_shape)
    doubled = tuple(2 * n for n in grid_shape)
    axes = tuple(range(-len(grid_shape), 0))
    values = torch.ones(trajectory.shape[:-1]) if weights is None else weights.detach().to(torch.float32).cpu()
    # The doubled grid's NUFFT evaluates exp(2πi k' m / 2N): k' = 2k gives exp(2πi k m / N), m ∈ [−N, N − 1].
    spread = NUFFTOperator(2.0 * trajectory.detach().cpu(), doubled, tolerance).adjoint(values.to(torch.complex64))
    kernel = spread * (math.sqrt(math.prod(doubled)) / math.prod(grid_shape))
    return torch.fft.fftn(torch.fft.ifftshift(kernel, dim=axes), dim=axes).to(trajectory.device)


class ToeplitzSense(LinearOperator):
    """``A x = √w ⊙ F_nu (S ⊙ x)`` whose Gram operator is a Toeplitz embedding.

    ``forward`` and ``adjoint`` are the NUFFT's; ``normal`` computes
    ``AᴴA x = Σ_c conj(S_c) ⊙ crop(IFFT(K̂ ⊙ FFT(pad(S_c ⊙ x))))`` with :func:`toeplitz_kernel`: two
    FFTs per coil on the doubled grid instead of a type-2 and a type-1 NUFFT (no interpolation
    onto the samples). It agrees with ``adjoint(forward(x))`` to the NUFFT's accuracy.

    Args:
        coil_maps: complex ``(coils, *grid)``.
        trajectory: ``(*samples, ndim)`` grid units.
        weights: density compensation ``(*samples)`` (``None``: unweighted).
        tolerance: NUFFT accuracy of ``forward`` and ``adjoint``.
    """

    def __init__(
        self, coil_maps: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        grid = tuple(int(n) for n in coil_maps.shape[1:])
        sense = SenseOperator(coil_maps, NUFFTOperator(trajectory, grid, tolerance))
        clamped = None if weights is None else weights.to(torch.float32).clamp_min(0.0)
        self.operator: LinearOperator = sense if clamped is None else Multiply(sense.output_shape, torch.sqrt(clamped)) @ sense
        super().__init__(self.operator.input_shape, self.operator.output_shape)
        self.coils = sense.coils
        self.grid = grid
        self.kernel = toeplitz_kernel(trajectory, grid, clamped)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operator.forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        axes = tuple(range(-len(self.grid), 0))
        doubled = tuple(2 * n for n in self.grid)
        spectrum = torch.fft.fftn(self.coils.forward(x), s=doubled, dim=axes)  # zero-padded to the doubled grid
        spectrum = spectrum * self.kernel.to(x.device)
        convolved = torch.fft.ifftn(spectrum, dim=axes)[(..., *[slice(0, n) for n in self.grid])]
        return self.coils.adjoint(convolved)

    def squared_norm_bound(self) -> float | None:
        return self.operator.squared_norm_bound()


def radial_sense(
    coil_maps: torch.Tensor,
    trajectory: torch.Tensor,
    weights: torch.Tensor | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> LinearOperator:
    """``A x = √w ⊙ F_nu (S ⊙ x)``: image ``(*grid)`` → samples ``(coils, *samples)``, ``AᴴA`` by Toeplitz embedding.

    Args:
        coil_maps: complex ``(coils, *grid)``.
        trajectory: ``(*samples, ndim)`` grid units.
        weights: density compensation ``(*samples)`` (``None``: unweighted). With weights, fit
            the data as ``√w ⊙ y`` (see :func:`weighted_samples`).
        tolerance: NUFFT accuracy.
    """
    return ToeplitzSense(coil_maps, trajectory, weights, tolerance)


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
