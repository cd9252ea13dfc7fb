"""Training samples for radial reconstruction networks: simulated multi-coil radial k-space of real slices.

A fully sampled complex slice ``x`` (a real brain image with a random coil array and smooth
phase, as in :mod:`medrestore.data.mri_recon`) is acquired on a 2-D golden-angle radial
trajectory of ``S`` full spokes (``S`` drawn from ``spokes``, the whole pattern rotated by one of
``rotations`` fixed angles, readout oversampling ``oversampling``), optionally shifted by a small
residual gradient delay (what is left after RING correction), with complex noise of standard
deviation ``noise · max|y|`` (the convention of ``medrestore simulate-radial --noise``)::

    y_c = F_nu(k_actual) (S_c ⊙ x) + n_c,      w = Pipe–Menon density of the nominal k
    x₀  = Σ_c conj(S_c) F_nu(k)ᴴ (w ⊙ y_c) / s,  s = q₀.₉₉(|Σ_c conj(S_c) F_nu(k)ᴴ (w ⊙ y_c)|)
    target = x / s

The network sees the *nominal* trajectory ``k`` (the scanner's), so a residual delay is a model
error it must tolerate. Samples of different spoke counts are padded to ``max(spokes)`` spokes
with zero data, trajectory and weight (zero weight removes a sample from the density-weighted
operator ``√w ⊙ F_nu S``), and coils to ``max_coils`` with zero maps, so that they batch.

:class:`RadialReconSample` holds ``image`` (``x₀``, 2 channels), ``kspace`` (``y / s``),
``trajectory``, ``weights``, ``coil_maps``, ``target`` and ``scale``; the network inputs are
``(image, kspace, trajectory, weights, coil_maps)`` — the physics of
:class:`medrestore.models.unrolled.RadialUnrolledNet` — or the image alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import torch

from medrestore.core.complex import complex_to_channels
from medrestore.core.errors import ConfigError, InputError
from medrestore.physics.mri.density import pipe_menon_density
from medrestore.physics.mri.nufft import NUFFTOperator
from medrestore.physics.mri.radial import gridding
from medrestore.physics.mri.sense import SenseOperator, coil_combine
from medrestore.physics.mri.trajectory import GradientDelay, RadialSpec, delayed_trajectory, radial_trajectory, spoke_angles

__all__ = ["RadialReconSample", "RadialSampling", "network_scale", "pad_axis", "radial_inputs", "radial_sample", "scaled_radial_sample"]


@dataclasses.dataclass(frozen=True)
class RadialSampling:
    """The ``data.mri.radial`` section: how training slices are acquired radially.

    Attributes:
        spokes: spoke counts drawn uniformly per sample (full spokes, golden-angle order).
        validation_spokes: spoke count of the fixed validation draws.
        oversampling: readout samples per grid unit.
        rotations: the number of fixed rotations of the spoke pattern (multiples of
            ``π / rotations``), drawn uniformly; density weights are computed once per
            ``(spokes, rotation)``.
        noise_range: complex noise standard deviation relative to ``max|y|``, uniform in this range.
        residual_delay: per-axis delay in samples, uniform in ``±residual_delay``, applied to the
            acquisition but not to the trajectory the network sees.
        density_iterations: Pipe–Menon iterations.
    """

    spokes: tuple[int, ...] = (48, 64, 96)
    validation_spokes: int = 64
    oversampling: float = 2.0
    rotations: int = 8
    noise_range: tuple[float, float] = (0.0005, 0.004)
    residual_delay: float = 0.05
    density_iterations: int = 20

    def __post_init__(self) -> None:
        if not self.spokes or min(self.spokes) < 1 or self.validation_spokes < 1:
            raise ConfigError(f"radial.spokes: give positive spoke counts, got {list(self.spokes)}")
        if self.oversampling < 1 or self.rotations < 1 or self.density_iterations < 1:
            raise ConfigError("radial: oversampling must be >= 1, rotations and density_iterations >= 1")
        low, high = self.noise_range
        if not 0.0 <= low <= high or self.residual_delay < 0:
            raise ConfigError(f"radial: noise_range needs 0 <= low <= high (got {self.noise_range}); residual_delay >= 0")

    @property
    def max_spokes(self) -> int:
        """Spoke padding: the largest count drawn (training or validation)."""
        return max(*self.spokes, self.validation_spokes)


class RadialReconSample(NamedTuple):
    """One radial acquisition, scaled by ``scale`` (see the module docstring).

    Attributes:
        image: float32 ``(2, H, W)`` — the density-compensated coil-combined gridding ``x₀``.
        kspace: complex64 ``(coils, spokes, readout)`` — ``y / s``.
        trajectory: float32 ``(spokes, readout, 2)`` — nominal, grid units.
        weights: float32 ``(spokes, readout)`` — Pipe–Menon density compensation (0 on padding).
        coil_maps: complex64 ``(coils, H, W)``.
        target: float32 ``(2, H, W)`` — ``x / s``.
        scale: float32 ``()`` — ``s``.
    """

    image: torch.Tensor
    kspace: torch.Tensor
    trajectory: torch.Tensor
    weights: torch.Tensor
    coil_maps: torch.Tensor
    target: torch.Tensor
    scale: torch.Tensor


@functools.lru_cache(maxsize=128)
def _pattern(size: int, spokes: int, oversampling: float, rotation: float, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotated golden-angle trajectory ``(spokes, readout, 2)`` and its Pipe–Menon weights (cached)."""
    spec = RadialSpec(size, spokes, oversampling, True, False)
    trajectory = radial_trajectory(spec, spoke_angles(spokes, True, False) + rotation)
    return trajectory, pipe_menon_density(trajectory, (size, size), iterations)


def pad_axis(tensor: torch.Tensor, axis: int, length: int, limit: str) -> torch.Tensor:
    """Zero-pad ``tensor`` along ``axis`` to ``length`` (for batching); ``limit`` names the setting that fixes ``length``."""
    missing = length - tensor.shape[axis]
    if missing < 0:
        raise InputError(None, f"{tensor.shape[axis]} entries along axis {axis} exceed {limit} = {length}")
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor, torch.zeros(shape, dtype=tensor.dtype)], dim=axis)


def network_scale(image: torch.Tensor, quantile: float = 0.99) -> float:
    """The scale a reconstruction network's inputs are divided by: the ``quantile`` of ``|image|`` (1 for an empty image)."""
    return float(torch.quantile(image.abs().flatten().to(torch.float32), quantile)) or 1.0


def scaled_radial_sample(
    kspace: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, coil_maps: torch.Tensor,
    target: torch.Tensor | None = None, max_coils: int | None = None, max_spokes: int | None = None,
) -> RadialReconSample:
    """Grid, coil-combine and scale one acquisition ``kspace (coils, spokes, readout)`` on ``trajectory``.

    This is the network input both in training and at reconstruction time (``target`` ``None``:
    zeros); ``max_coils``/``max_spokes`` pad for batching.
    """
    grid = tuple(coil_maps.shape[-2:])
    gridded = coil_combine(gridding(kspace, trajectory, grid, weights), coil_maps)
    scale = network_scale(gridded)
    if target is None:
        target = torch.zeros(grid, dtype=torch.complex64)
    data, maps = (kspace / scale).to(torch.complex64), coil_maps.to(torch.complex64)
    trajectory, weights = trajectory.to(torch.float32), weights.to(torch.float32)
    if max_coils is not None:
        data, maps = pad_axis(data, 0, max_coils, "data.mri.max_coils"), pad_axis(maps, 0, max_coils, "data.mri.max_coils")
    if max_spokes is not None:
        limit = "the largest data.mri.radial spoke count"
        data, trajectory, weights = (pad_axis(t, a, max_spokes, limit) for t, a in ((data, 1), (trajectory, 0), (weights, 0)))
    return RadialReconSample(
        image=complex_to_channels(gridded / scale), kspace=data, trajectory=trajectory, weights=weights, coil_maps=maps,
        target=complex_to_channels(target / scale), scale=torch.tensor(scale, dtype=torch.float32),
    )


def radial_sample(
    image: torch.Tensor, coil_maps: torch.Tensor, sampling: RadialSampling, generator: torch.Generator,
    max_coils: int, spokes: int | None = None,
) -> RadialReconSample:
    """Acquire the complex ``image (H, W)`` (square) through ``coil_maps`` radially as ``sampling`` says.

    ``image`` is also the target, so it must be in the phase frame of ``coil_maps`` (for
    ESPIRiT-convention maps, see :func:`~medrestore.physics.mri.simulation.align_phase_to_coil`:
    ``S x`` is the same in either frame). ``spokes`` fixes the spoke count (validation). Draws,
    in order: spokes, rotation, noise level, residual delay, noise.
    """
    size = int(image.shape[-1])
    if tuple(image.shape) != (size, size):
        raise ConfigError(f"radial training slices must be square, got {tuple(image.shape)}")
    choice = sampling.spokes[int(torch.randint(len(sampling.spokes), (), generator=generator))]
    spokes = spokes or choice
    rotation = math.pi * int(torch.randint(sampling.rotations, (), generator=generator)) / sampling.rotations
    trajectory, weights = _pattern(size, spokes, sampling.oversampling, rotation, sampling.density_iterations)
    low, high = sampling.noise_range
    noise = low + (high - low) * float(torch.rand((), generator=generator))
    delay = GradientDelay(*(sampling.residual_delay * (2.0 * float(v) - 1.0) for v in torch.rand(2, generator=generator)))
    actual = delayed_trajectory(trajectory, delay)
    samples = SenseOperator(coil_maps, NUFFTOperator(actual, (size, size), 1e-6)).forward(image.to(torch.complex64))
    sigma = noise * float(samples.abs().max()) / math.sqrt(2.0)
    samples = samples + sigma * torch.complex(
        torch.randn(samples.shape, generator=generator), torch.randn(samples.shape, generator=generator)
    )
    return scaled_radial_sample(samples, trajectory, weights, coil_maps, image, max_coils, sampling.max_spokes)


def radial_inputs(sample: RadialReconSample, kind: str) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """What a network receives: the gridded image, or ``(image, kspace, trajectory, weights, coil_maps)``."""
    if kind == "image":
        return sample.image
    return (sample.image, sample.kspace, sample.trajectory, sample.weights, sample.coil_maps)
