"""Gradient-delay model and estimators (RING, AC-adaptive) on simulated multi-coil radial data."""

from __future__ import annotations

import pytest
import torch

from medrestore.io import read_image
from medrestore.physics.mri.delay_estimation import estimate_delay_ac_adaptive, estimate_delay_ring
from medrestore.physics.mri.nufft import NUFFTOperator
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.physics.mri.sense import SenseOperator
from medrestore.physics.mri.trajectory import GradientDelay, RadialSpec, delayed_trajectory, radial_trajectory, spoke_geometry


def _phantom(size: int) -> torch.Tensor:
    """Ellipses with different intensities (a real, asymmetric object)."""
    yy, xx = torch.meshgrid(torch.arange(size) - size / 2, torch.arange(size) - size / 2, indexing="ij")
    image = ((yy / (0.42 * size)) ** 2 + (xx / (0.33 * size)) ** 2 <= 1).float()
    image += 0.6 * (((yy - 0.1 * size) / (0.12 * size)) ** 2 + ((xx + 0.08 * size) / (0.2 * size)) ** 2 <= 1).float()
    image -= 0.4 * (((yy + 0.15 * size) / (0.08 * size)) ** 2 + ((xx - 0.1 * size) / (0.05 * size)) ** 2 <= 1).float()
    return image


def _acquire(image: torch.Tensor, spec: RadialSpec, delay: GradientDelay, noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    nominal = radial_trajectory(spec)
    grid = tuple(image.shape)
    operator = SenseOperator(birdcage_coil_maps(grid, 8), NUFFTOperator(delayed_trajectory(nominal, delay), grid, 1e-6))
    data = operator.forward(image.to(torch.complex64))
    generator = torch.Generator().manual_seed(seed)
    data = data + noise * float(data.abs().max()) * torch.randn(data.shape, dtype=torch.complex64, generator=generator)
    return data, nominal


def test_delay_shifts_each_spoke_along_s_n() -> None:
    nominal = radial_trajectory(RadialSpec(16, 4, 2.0))  # angles 0, 45, 90, 135 degrees
    shifted = delayed_trajectory(nominal, GradientDelay(0.7, -0.4, 0.1))
    shift = (shifted - nominal)[:, 0]  # (spokes, (ky, kx)), grid units = 0.5 × samples
    torch.testing.assert_close(shift[0], torch.tensor([0.05, 0.35]))  # n = x: S n = (xy, x) in (y, x)
    torch.testing.assert_close(shift[2], torch.tensor([-0.2, 0.05]), atol=1e-6, rtol=0)  # n = y: (y, xy)
    along = (shift * spoke_geometry(nominal).directions).sum(-1) / 0.5
    angles = spoke_geometry(nominal).angles
    expected = 0.7 * torch.cos(angles) ** 2 - 0.4 * torch.sin(angles) ** 2 + 0.1 * torch.sin(2 * angles)
    torch.testing.assert_close(along, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(delayed_trajectory(nominal, GradientDelay()), nominal)
    with pytest.raises(ValueError, match="centre"):  # only nominal trajectories define the spoke geometry
        spoke_geometry(shifted)


@pytest.mark.parametrize("spokes", [8, 16])
def test_ring_recovers_delays_noise_free(spokes: int) -> None:
    delay = GradientDelay(0.7, -0.4)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, spokes, 2.0, golden=True), delay, 0.0)
    estimate = estimate_delay_ring(data, nominal)
    assert estimate.delay.error(delay) < 1e-3


@pytest.mark.shared_data
def test_ring_with_noise_and_cross_term_on_a_brain_slice(shared_data) -> None:
    brain = read_image(shared_data / "brain-mri-ants" / "r16slice.jpg").data
    brain = torch.nn.functional.avg_pool2d(brain[None, None], 2)[0, 0]  # 128 × 128
    delay = GradientDelay(0.7, -0.4, 0.15)
    data, nominal = _acquire(brain / brain.max(), RadialSpec(128, 32, 2.0, golden=True), delay, 0.002, seed=3)
    estimate = estimate_delay_ring(data, nominal)
    assert estimate.delay.error(delay) < 0.02


def test_ac_adaptive_recovers_isotropic_delays() -> None:
    # uniform spokes over 2π: exactly antiparallel partners; isotropic delay: no perpendicular shift
    nominal_angles = torch.arange(24, dtype=torch.float64) * (2 * torch.pi / 24)
    spec = RadialSpec(64, 24, 2.0)
    nominal = radial_trajectory(spec, nominal_angles)
    delay = GradientDelay(0.6, 0.6)
    grid = (64, 64)
    operator = SenseOperator(birdcage_coil_maps(grid, 8), NUFFTOperator(delayed_trajectory(nominal, delay), grid, 1e-6))
    data = operator.forward(_phantom(64).to(torch.complex64))
    estimate = estimate_delay_ac_adaptive(data, nominal)
    assert estimate.delay.error(delay) < 0.01
    assert estimate.method == "ac-adaptive" and estimate.equations == 24


def test_ac_adaptive_approximates_anisotropic_delays() -> None:
    delay = GradientDelay(0.7, -0.4)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 64, 2.0, golden=True), delay, 0.0)
    estimate = estimate_delay_ac_adaptive(data, nominal)
    assert abs(estimate.delay.x - 0.7) < 0.15 and abs(estimate.delay.y + 0.4) < 0.15


def test_estimators_refuse_centre_out_spokes() -> None:
    nominal = radial_trajectory(RadialSpec(32, 8, 2.0, half_spokes=True))
    data = torch.ones(2, *nominal.shape[:-1], dtype=torch.complex64)
    with pytest.raises(ValueError, match="full spokes"):
        estimate_delay_ring(data, nominal)


def test_ring_handles_large_delays() -> None:
    """Intersections beyond the search window are dropped instead of biasing the fit."""
    delay = GradientDelay(2.0, -1.5, 0.3)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 12, 2.0, golden=True), delay, 0.0)
    estimate = estimate_delay_ring(data, nominal)
    assert estimate.delay.error(delay) < 1e-3
