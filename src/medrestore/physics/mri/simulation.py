"""Simulated multi-coil acquisitions: receive-coil sensitivities, smooth phase, noisy k-space.

Turns a real magnitude image ``m`` (``(H, W)``) into the multi-coil Cartesian k-space an array
coil would have measured::

    x = m · exp(i φ)                         (smooth object/B0 phase φ)
    y_c = fftc(S_c ⊙ x) + n_c,   n_c ~ CN(0, σ²)

* :func:`birdcage_coil_maps` — ``coils`` loops evenly spaced on a circle of radius ``r`` (in
  units of the half field of view) around the object. Each loop's field is the Biot–Savart
  magnitude of a small loop seen in-plane, ``|S_c(p)| ∝ 1 / ‖p − p_c‖`` (the quasi-static
  near field of sigpy's ``birdcage_maps``), with phase ``arg(p − p_c) + 2π c / coils`` (the
  rotating field of a birdcage mode). Maps are normalised so that ``Σ_c |S_c|² = 1``
  everywhere (the convention of ESPIRiT maps in :mod:`~medrestore.physics.mri.sense`).
* :func:`gaussian_coil_maps` — Gaussian receive profiles ``exp(−‖p − p_c‖² / (2 w²))`` with a
  linear phase ramp per coil: a smoother, shorter-range alternative, same normalisation.
* :func:`smooth_phase` — a random low-order field: ``φ = Σ_{j+k ≤ order} a_jk P_j(u) P_k(v)``
  (Legendre polynomials on ``[−1, 1]²``), scaled to peak ``max_phase`` radians.
* :func:`simulate_kspace` — the forward model above, with complex Gaussian noise of standard
  deviation ``noise_level · ‖y‖_rms``.

Random variants take a ``torch.Generator``; everything is ``complex64``.

References:
    Pruessmann KP et al. SENSE: Sensitivity encoding for fast MRI. MRM 42:952–962, 1999.
    Ong F, Lustig M. SigPy: a python package for high performance iterative reconstruction.
    ISMRM 2019 (``sigpy.mri.birdcage_maps``).
    Roemer PB et al. The NMR phased array. MRM 16:192–225, 1990.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from medrestore.core.fft import fftc

__all__ = [
    "CoilSimulation",
    "align_phase_to_coil",
    "birdcage_coil_maps",
    "gaussian_coil_maps",
    "normalise_coil_maps",
    "random_coil_maps",
    "simulate_kspace",
    "smooth_phase",
]


def _grid(shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(v, u)`` in ``[−1, 1]`` (rows, columns), float64 ``(H, W)``."""
    rows = (torch.arange(shape[0], dtype=torch.float64) - (shape[0] - 1) / 2) / (shape[0] / 2)
    cols = (torch.arange(shape[1], dtype=torch.float64) - (shape[1] - 1) / 2) / (shape[1] / 2)
    return torch.meshgrid(rows, cols, indexing="ij")


def normalise_coil_maps(coil_maps: torch.Tensor) -> torch.Tensor:
    """``S / sqrt(Σ_c |S_c|²)``: unit root-sum-of-squares at every pixel; ``(coils, H, W)`` complex64."""
    norm = torch.sqrt((coil_maps.abs() ** 2).sum(dim=0, keepdim=True)).clamp_min(1e-12)
    return (coil_maps / norm).to(torch.complex64)


def align_phase_to_coil(coil_maps: torch.Tensor, coil: int = 0) -> torch.Tensor:
    """``S · exp(−i arg S_coil)``: coil ``coil`` made real and non-negative (ESPIRiT's phase convention).

    The object seen through the aligned maps is ``x · exp(i arg S_coil)`` (``S x`` is unchanged),
    which is what a reconstruction with ESPIRiT maps (:mod:`~medrestore.physics.mri.espirit`)
    returns: training on aligned maps gives networks the phase they meet at reconstruction time.
    """
    reference = coil_maps[coil]
    return (coil_maps * (reference.conj() / reference.abs().clamp_min(1e-12))).to(torch.complex64)


def birdcage_coil_maps(
    shape: tuple[int, int], coils: int, radius: float = 1.5, rotation: float = 0.0
) -> torch.Tensor:
    """Loop-coil sensitivities on a circle around the field of view (sigpy's ``birdcage_maps`` in 2-D).

    Args:
        shape: image matrix ``(H, W)``.
        coils: number of receive loops, evenly spaced in angle.
        radius: distance of the loops from the centre, in units of the half field of view
            (> 1 puts them outside the image).
        rotation: angle of the first loop (radians).

    Returns:
        complex64 ``(coils, H, W)`` with ``Σ_c |S_c|² = 1`` at every pixel.
    """
    v, u = _grid(shape)
    maps = []
    for coil in range(coils):
        angle = rotation + 2 * math.pi * coil / coils
        du, dv = u - radius * math.cos(angle), v - radius * math.sin(angle)
        distance = torch.sqrt(du**2 + dv**2).clamp_min(1e-6)
        phase = torch.atan2(dv, du) + 2 * math.pi * coil / coils
        maps.append(torch.polar(1.0 / distance, phase))
    return normalise_coil_maps(torch.stack(maps))


def gaussian_coil_maps(
    shape: tuple[int, int], coils: int, width: float = 0.8, radius: float = 1.0, rotation: float = 0.0, phase_slope: float = 1.0
) -> torch.Tensor:
    """Gaussian receive profiles ``exp(−‖p − p_c‖² / (2 width²))`` centred on a circle, with a linear phase ramp.

    Args:
        shape: image matrix ``(H, W)``.
        coils: number of coils.
        width: profile standard deviation (half-FOV units).
        radius: distance of the profile centres from the image centre (half-FOV units).
        rotation: angle of the first coil (radians).
        phase_slope: phase ramp (radians per half-FOV) pointing towards each coil.

    Returns:
        complex64 ``(coils, H, W)`` with ``Σ_c |S_c|² = 1`` at every pixel.
    """
    v, u = _grid(shape)
    maps = []
    for coil in range(coils):
        angle = rotation + 2 * math.pi * coil / coils
        cu, cv = radius * math.cos(angle), radius * math.sin(angle)
        magnitude = torch.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * width**2)) + 1e-3
        phase = phase_slope * (u * math.cos(angle) + v * math.sin(angle)) + 2 * math.pi * coil / coils
        maps.append(torch.polar(magnitude, phase))
    return normalise_coil_maps(torch.stack(maps))


def smooth_phase(shape: tuple[int, int], generator: torch.Generator, order: int = 2, max_phase: float = math.pi / 2) -> torch.Tensor:
    """A random smooth phase map (radians), float32 ``(H, W)``: Legendre terms up to total degree ``order``.

    Coefficients are standard normal; the field is scaled so that ``max|φ| = max_phase``.
    """
    v, u = _grid(shape)
    field = torch.zeros(shape, dtype=torch.float64)
    for j in range(order + 1):
        for k in range(order + 1 - j):
            coefficient = float(torch.randn((), generator=generator, dtype=torch.float64))
            pu = torch.from_numpy(np.polynomial.legendre.legval(u.numpy(), [0] * j + [1]))
            pv = torch.from_numpy(np.polynomial.legendre.legval(v.numpy(), [0] * k + [1]))
            field += coefficient * pu * pv
    peak = float(field.abs().max())
    return (field * (max_phase / peak if peak > 0 else 0.0)).to(torch.float32)


@dataclasses.dataclass(frozen=True)
class CoilSimulation:
    """Ranges the random coil arrays are drawn from (:func:`random_coil_maps`).

    Attributes:
        coils: the choices of coil counts.
        radius_range: loop distance from the centre (half-FOV units) for birdcage maps.
        gaussian_fraction: probability of Gaussian profiles instead of birdcage loops.
        width_range: Gaussian profile widths (half-FOV units).
        max_phase: peak of the smooth object phase (radians).
        noise_range: complex noise standard deviation relative to the RMS k-space amplitude.
    """

    coils: tuple[int, ...] = (8, 12, 16)
    radius_range: tuple[float, float] = (1.1, 2.0)
    gaussian_fraction: float = 0.3
    width_range: tuple[float, float] = (0.5, 1.0)
    max_phase: float = math.pi / 2
    noise_range: tuple[float, float] = (0.0, 0.02)

    def __post_init__(self) -> None:
        if not self.coils or min(self.coils) < 1:
            raise ValueError(f"coils must be positive counts, got {self.coils}")
        if not 0.0 <= self.gaussian_fraction <= 1.0:
            raise ValueError(f"gaussian_fraction must be in [0, 1], got {self.gaussian_fraction}")


def _uniform(generator: torch.Generator, bounds: tuple[float, float]) -> float:
    return bounds[0] + (bounds[1] - bounds[0]) * float(torch.rand((), generator=generator, dtype=torch.float64))


def random_coil_maps(shape: tuple[int, int], simulation: CoilSimulation, generator: torch.Generator) -> torch.Tensor:
    """A random coil array drawn from ``simulation``: complex64 ``(coils, H, W)``, ``Σ_c |S_c|² = 1``."""
    coils = simulation.coils[int(torch.randint(len(simulation.coils), (), generator=generator))]
    rotation = _uniform(generator, (0.0, 2 * math.pi))
    if float(torch.rand((), generator=generator)) < simulation.gaussian_fraction:
        width = _uniform(generator, simulation.width_range)
        return gaussian_coil_maps(shape, coils, width=width, rotation=rotation)
    return birdcage_coil_maps(shape, coils, radius=_uniform(generator, simulation.radius_range), rotation=rotation)


def simulate_kspace(image: torch.Tensor, coil_maps: torch.Tensor, noise_level: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fully sampled multi-coil k-space ``y_c = fftc(S_c ⊙ x) + n_c`` of a complex image.

    Args:
        image: complex (or real) ``(H, W)``.
        coil_maps: complex ``(coils, H, W)``.
        noise_level: noise standard deviation (per real and imaginary part / √2, i.e. complex
            σ) relative to the RMS of the noiseless k-space.
        generator: source of the noise (needed when ``noise_level > 0``).

    Returns:
        complex64 ``(coils, H, W)``.
    """
    kspace = fftc(coil_maps.to(torch.complex64) * image.to(torch.complex64), 2)
    if noise_level > 0:
        sigma = noise_level * float(kspace.abs().pow(2).mean().sqrt())
        noise = torch.randn((2, *kspace.shape), generator=generator) * (sigma / math.sqrt(2))
        kspace = kspace + torch.complex(noise[0], noise[1])
    return kspace.to(torch.complex64)
