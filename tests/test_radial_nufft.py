"""Radial trajectories, the NUFFT operator (adjoint, exactness, autograd) and density compensation."""

from __future__ import annotations

import math

import pytest
import torch

from medrestore.core.fft import fftc
from medrestore.physics.mri.density import pipe_menon_density, ramp_density
from medrestore.physics.mri.nufft import NUFFTOperator, nonuniform_dft
from medrestore.physics.mri.operators import adjoint_mismatch
from medrestore.physics.mri.radial import radial_sense
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.physics.mri.trajectory import (
    GOLDEN_ANGLE_FULL,
    RadialSpec,
    radial_trajectory,
    spoke_angles,
    spoke_geometry,
    stack_of_stars,
)


def _complex(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=torch.complex64, generator=generator)


def test_trajectory_layout() -> None:
    spec = RadialSpec(16, 5, oversampling=2.0)
    trajectory = radial_trajectory(spec)
    assert trajectory.shape == (5, 32, 2)
    assert torch.equal(trajectory[:, 16], torch.zeros(5, 2))  # sample readout/2 is the centre
    assert torch.allclose(trajectory[0, :, 1], (torch.arange(32) - 16) / 2.0)  # φ = 0 runs along kx
    assert float(trajectory.abs().max()) == pytest.approx(8.0)
    geometry = spoke_geometry(trajectory)
    assert geometry.sample_spacing == pytest.approx(0.5)
    assert torch.allclose(geometry.angles, spoke_angles(5), atol=1e-6)
    half = radial_trajectory(RadialSpec(16, 4, 2.0, half_spokes=True))
    assert half.shape == (4, 16, 2) and torch.equal(half[:, 0], torch.zeros(4, 2))
    golden = spoke_angles(3, golden=True)
    assert float(golden[1]) == pytest.approx(GOLDEN_ANGLE_FULL) and math.degrees(GOLDEN_ANGLE_FULL) == pytest.approx(111.246, abs=1e-3)
    stars = stack_of_stars(trajectory, 4)
    assert stars.shape == (4, 5, 32, 3) and torch.equal(stars[:, 0, 0, 0], torch.tensor([-2.0, -1.0, 0.0, 1.0]))


@pytest.mark.parametrize("golden", [False, True])
def test_nufft_adjoint(golden: bool) -> None:
    trajectory = radial_trajectory(RadialSpec(24, 10, 2.0, golden))
    operator = NUFFTOperator(trajectory, (24, 24))
    assert adjoint_mismatch(operator, torch.Generator().manual_seed(1), (3,)) <= 1e-5
    sense = radial_sense(birdcage_coil_maps((24, 24), 4), trajectory, ramp_density(trajectory))
    assert adjoint_mismatch(sense, torch.Generator().manual_seed(2)) <= 1e-5


def test_nufft_3d_adjoint() -> None:
    trajectory = stack_of_stars(radial_trajectory(RadialSpec(12, 6, 2.0, True)), 4)
    operator = NUFFTOperator(trajectory, (4, 12, 12))
    assert adjoint_mismatch(operator, torch.Generator().manual_seed(3)) <= 1e-5


def test_nufft_matches_exact_nonuniform_dft() -> None:
    trajectory = radial_trajectory(RadialSpec(16, 12, 2.0, golden=True)) + 0.137  # off-grid everywhere
    image = _complex((16, 16))
    reference = nonuniform_dft(image, trajectory)
    for tolerance, bound in ((1e-4, 3e-4), (1e-5, 3e-5), (1e-8, 1e-7)):
        result = NUFFTOperator(trajectory, (16, 16), tolerance).forward(image)
        error = float(torch.linalg.vector_norm(result.to(torch.complex128) - reference) / torch.linalg.vector_norm(reference))
        assert error <= bound, (tolerance, error)
    samples = _complex(tuple(trajectory.shape[:-1]), seed=4)
    adjoint = NUFFTOperator(trajectory, (16, 16), 1e-8).adjoint(samples)
    # the exact adjoint through the DFT matrix: x = Φᴴ y
    probe = torch.eye(256, dtype=torch.complex128).reshape(256, 16, 16)
    matrix = torch.stack([nonuniform_dft(column, trajectory).reshape(-1) for column in probe], dim=1)
    exact = (matrix.conj().T @ samples.reshape(-1).to(torch.complex128)).reshape(16, 16)
    assert torch.allclose(adjoint.to(torch.complex128), exact, atol=1e-5 * float(exact.abs().max()))


def test_nufft_on_grid_is_the_centred_fft() -> None:
    ky, kx = torch.meshgrid(torch.arange(12.0) - 6, torch.arange(10.0) - 5, indexing="ij")
    operator = NUFFTOperator(torch.stack([ky, kx], dim=-1), (12, 10), 1e-7)
    image = _complex((2, 12, 10))
    torch.testing.assert_close(operator.forward(image), fftc(image, 2), atol=1e-5, rtol=1e-5)


def test_nufft_autograd_uses_the_adjoint() -> None:
    trajectory = radial_trajectory(RadialSpec(16, 8, 2.0, True))
    operator = NUFFTOperator(trajectory, (16, 16))
    image = _complex((16, 16)).requires_grad_(True)
    target = _complex(tuple(trajectory.shape[:-1]), seed=5)
    loss = (operator.forward(image) - target).abs().square().sum()
    loss.backward()
    expected = 2.0 * operator.adjoint(operator.forward(image.detach()) - target)
    torch.testing.assert_close(image.grad, expected, atol=1e-4, rtol=1e-4)
    samples = target.clone().requires_grad_(True)
    operator.adjoint(samples).real.sum().backward()
    torch.testing.assert_close(samples.grad, operator.forward(torch.ones(16, 16, dtype=torch.complex64)), atol=1e-4, rtol=1e-4)


def test_ramp_density_matches_the_area_per_sample() -> None:
    spec = RadialSpec(32, 40, 2.0)
    trajectory = radial_trajectory(spec)
    weights = ramp_density(trajectory)
    radius = torch.linalg.vector_norm(trajectory, dim=-1)
    # the weights of all samples inside |k| < R cover the disc of radius R (midpoint rule)
    inside = radius <= 12.0
    assert float(weights[inside].sum()) == pytest.approx(math.pi * 12.25**2, rel=0.01)
    assert float(weights[0, 32]) == pytest.approx(math.pi * 0.25 / (4 * 40))


def test_pipe_menon_density() -> None:
    ky, kx = torch.meshgrid(torch.arange(16.0) - 8, torch.arange(16.0) - 8, indexing="ij")
    cartesian = pipe_menon_density(torch.stack([ky, kx], dim=-1), (16, 16))
    torch.testing.assert_close(cartesian, torch.ones(16, 16), atol=1e-3, rtol=0)  # a full grid needs no compensation
    trajectory = radial_trajectory(RadialSpec(48, 72, 2.0))
    weights = pipe_menon_density(trajectory, (48, 48))
    ramp = ramp_density(trajectory)
    radius = torch.linalg.vector_norm(trajectory, dim=-1)
    band = (radius > 3) & (radius < 20)
    ratio = weights[band] / ramp[band]
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.02) and float(ratio.std()) < 0.03
    # gridding a smooth object with the weights reconstructs it
    yy, xx = torch.meshgrid(torch.arange(48.0) - 24, torch.arange(48.0) - 24, indexing="ij")
    image = torch.exp(-(yy**2 + xx**2) / (2 * 6.0**2)).to(torch.complex64)
    operator = NUFFTOperator(trajectory, (48, 48))
    gridded = operator.adjoint(operator.forward(image) * weights)
    assert float(torch.linalg.vector_norm(gridded - image) / torch.linalg.vector_norm(image)) < 0.02


def test_nufft_refuses_bad_trajectories() -> None:
    with pytest.raises(ValueError):
        NUFFTOperator(torch.zeros(4, 3), (8, 8))
    with pytest.raises(ValueError):
        NUFFTOperator(torch.full((4, 2), float("nan")), (8, 8))


def test_network_trains_through_the_nufft_data_consistency_step() -> None:
    """A learned layer before the unrolled network's data-consistency step, with the radial NUFFT-SENSE operator."""
    from medrestore.core.complex import channels_to_complex, complex_to_channels
    from medrestore.models.unrolled import DataConsistencyStep

    torch.manual_seed(0)
    trajectory = radial_trajectory(RadialSpec(16, 12, 2.0, golden=True))
    operator = radial_sense(birdcage_coil_maps((16, 16), 4), trajectory, ramp_density(trajectory))
    target = _complex((16, 16), seed=6)
    adjoint_data = operator.adjoint(operator.forward(target))[None]
    layer = torch.nn.Conv2d(2, 2, 3, padding=1)
    step = DataConsistencyStep(0.5)

    def loss() -> torch.Tensor:
        refined = channels_to_complex(layer(complex_to_channels(adjoint_data)))
        return (step(refined, [operator], adjoint_data) - target).abs().square().sum()

    value = loss()
    value.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    with torch.no_grad():  # the autograd derivative in the learned step equals a central difference
        delta = 1e-2
        step.raw_step += delta
        upper = float(loss())
        step.raw_step -= 2 * delta
        lower = float(loss())
        step.raw_step += delta
    assert float(step.raw_step.grad) == pytest.approx((upper - lower) / (2 * delta), rel=2e-2)


@pytest.mark.parametrize("grid", [(12, 12), (9, 14)])
def test_toeplitz_gram_equals_the_exact_weighted_gram(grid: tuple[int, int]) -> None:
    """``AᴴA`` by Toeplitz embedding against ``Sᴴ Eᴴ W E S`` with the exact non-uniform DFT ``E`` (odd and even sizes)."""
    from medrestore.physics.mri.radial import ToeplitzSense

    trajectory = radial_trajectory(RadialSpec(max(grid), 7, 2.0, golden=True))
    weights = pipe_menon_density(trajectory, grid, 10)
    weights[2] = 0.0  # a held-out spoke
    maps = _complex((3, *grid), seed=1)
    image = _complex(grid, seed=2).to(torch.complex128)
    coil_images = maps.to(torch.complex128) * image
    samples = torch.stack([nonuniform_dft(coil, trajectory) for coil in coil_images])  # (coils, spokes, readout)
    # Eᴴ of the exact DFT: the conjugate phases of nonuniform_dft, summed over the samples.
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) - n // 2 for n in grid], indexing="ij")
    positions = torch.stack([axis.reshape(-1) / n for axis, n in zip(axes, grid)], dim=-1)
    phase = torch.exp(2j * math.pi * (trajectory.to(torch.float64).reshape(-1, 2) @ positions.T)) / math.sqrt(math.prod(grid))
    weighted = (samples * weights.to(torch.float64)).reshape(3, -1)
    exact = (maps.conj().to(torch.complex128) * (weighted @ phase).reshape(3, *grid)).sum(0)
    operator = ToeplitzSense(maps, trajectory, weights)
    result = operator.normal(image.to(torch.complex64)).to(torch.complex128)
    assert float((result - exact).norm() / exact.norm()) < 1e-5
    nufft_pair = operator.adjoint(operator.forward(image.to(torch.complex64))).to(torch.complex128)
    assert float((nufft_pair - exact).norm() / exact.norm()) < 1e-4


def test_radial_sense_gram_matches_its_nufft_pair_on_a_batch() -> None:
    """The operator CS and the unrolled network use: Toeplitz ``normal`` = ``adjoint(forward)`` on a batch of images."""
    trajectory = radial_trajectory(RadialSpec(32, 20, 2.0, golden=True))
    operator = radial_sense(birdcage_coil_maps((32, 32), 4), trajectory, pipe_menon_density(trajectory, (32, 32), 10))
    images = _complex((2, 32, 32), seed=3)
    pair = operator.adjoint(operator.forward(images))
    assert float((operator.normal(images) - pair).norm() / pair.norm()) < 1e-4
