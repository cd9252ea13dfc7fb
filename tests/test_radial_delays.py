"""Gradient-delay model, the estimators (RING, AC-adaptive) and the checked decision, on simulated multi-coil radial data.

Truths are the simulated delays; data follow either delay model exactly: every sample moved by
``S n`` (per-axis delays) or only along its spoke (BART's ``traj -q`` without ``-O``).
"""

from __future__ import annotations

import math

import pytest
import torch

from medrestore.io import read_image
from medrestore.physics.mri.delay_estimation import (
    DelayCheck, DelayEstimate, decide_delay, estimate_delay_ac_adaptive, estimate_delay_checked, estimate_delay_ring,
)
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


def _along_only(nominal: torch.Tensor, delay: GradientDelay) -> torch.Tensor:
    """The trajectory whose samples move only along their spoke, by ``Δ (nᵀSn)`` (BART's ``traj -q`` without ``-O``)."""
    geometry = spoke_geometry(nominal)
    along = (delay.shifts(geometry.directions) * geometry.directions).sum(dim=-1)  # nᵀSn in samples
    return (nominal.to(torch.float64) + geometry.sample_spacing * along[:, None, None] * geometry.directions[:, None, :]).to(torch.float32)


def _acquire(image: torch.Tensor, spec: RadialSpec, delay: GradientDelay, noise: float = 0.0, seed: int = 0,
             model: str = "full", coils: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    nominal = radial_trajectory(spec)
    actual = delayed_trajectory(nominal, delay) if model == "full" else _along_only(nominal, delay)
    grid = tuple(image.shape)
    operator = SenseOperator(birdcage_coil_maps(grid, coils), NUFFTOperator(actual, grid, 1e-6))
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


@pytest.mark.parametrize(("model", "spokes", "delay"), [
    ("full", 8, GradientDelay(0.7, -0.4)), ("full", 16, GradientDelay(0.3, -0.2, 0.15)),
    ("along", 16, GradientDelay(0.7, -0.4)), ("along", 16, GradientDelay(0.3, -0.2, 0.15)),
])
def test_ring_is_exact_on_both_delay_models_and_says_which(model: str, spokes: int, delay: GradientDelay) -> None:
    """RING fits both models to the crossings and keeps the one that fits: exact (noise-free) on either."""
    data, nominal = _acquire(_phantom(64), RadialSpec(64, spokes, 2.0, golden=True), delay, model=model)
    estimate = estimate_delay_ring(data, nominal)
    assert estimate.delay.error(delay) < 1e-3 and estimate.model == model
    assert estimate.mismatch < 1e-4 and estimate.uncertainty < 1e-3 and estimate.residual < 1e-2


def test_ring_without_readout_oversampling() -> None:
    """Isotropic delays at 1× oversampling: every crossing sits at the centre, where the spokes are strong; the
    normalised search finds it (the plain mismatch is smallest near the window's edge, where both spokes are weak)."""
    delay = GradientDelay(0.4, 0.4)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 32, 1.0, golden=True), delay)
    assert estimate_delay_ring(data, nominal).delay.error(delay) < 1e-3


@pytest.mark.shared_data
def test_ring_with_noise_and_cross_term_on_a_brain_slice(shared_data) -> None:
    brain = read_image(shared_data / "brain-mri-ants" / "r16slice.jpg").data
    brain = torch.nn.functional.avg_pool2d(brain[None, None], 2)[0, 0]  # 128 × 128
    delay = GradientDelay(0.7, -0.4, 0.15)
    data, nominal = _acquire(brain / brain.max(), RadialSpec(128, 32, 2.0, golden=True), delay, 0.005, seed=3)
    estimate = estimate_delay_ring(data, nominal)
    assert estimate.delay.error(delay) < 0.01 and estimate.model == "full"


def test_ring_handles_large_delays() -> None:
    """Crossings beyond the search window are dropped instead of biasing the fit."""
    delay = GradientDelay(2.0, -1.5, 0.3)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 12, 2.0, golden=True), delay)
    assert estimate_delay_ring(data, nominal).delay.error(delay) < 1e-3


def test_ac_adaptive_is_exact_when_samples_move_along_the_spoke() -> None:
    delay = GradientDelay(0.7, -0.4, 0.15)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 64, 2.0, golden=True), delay, model="along")
    estimate = estimate_delay_ac_adaptive(data, nominal)
    assert estimate.delay.error(delay) < 0.005 and estimate.method == "ac-adaptive" and estimate.model == "along"


def test_ac_adaptive_ignores_a_phase_between_antiparallel_spokes() -> None:
    """A constant phase between the two readouts of a pair (off-resonance) drops out of the phase slope."""
    delay = GradientDelay(0.6, 0.6)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 64, 2.0, golden=True), delay)
    phases = torch.exp(1j * torch.linspace(0, 2.0, data.shape[1]))[None, :, None].to(torch.complex64)
    plain, shifted = estimate_delay_ac_adaptive(data, nominal), estimate_delay_ac_adaptive(data * phases, nominal)
    assert plain.delay.error(delay) < 0.005 and shifted.delay.error(plain.delay) < 1e-6


def test_ac_adaptive_is_biased_by_the_transverse_shift_and_refuses_spokes_over_180_degrees() -> None:
    delay = GradientDelay(0.7, -0.4)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 64, 2.0, golden=True), delay)
    estimate = estimate_delay_ac_adaptive(data, nominal)
    assert 0.002 < estimate.delay.error(delay) < 0.1  # the perpendicular offset of the partner lines
    uniform, nominal = _acquire(_phantom(64), RadialSpec(64, 32, 2.0), delay)  # φ = πi/32: no antiparallel partners
    with pytest.raises(ValueError, match="180°"):
        estimate_delay_ac_adaptive(uniform, nominal)


def test_estimators_refuse_centre_out_spokes() -> None:
    nominal = radial_trajectory(RadialSpec(32, 8, 2.0, half_spokes=True))
    data = torch.ones(2, *nominal.shape[:-1], dtype=torch.complex64)
    for estimator in (estimate_delay_ring, estimate_delay_ac_adaptive):
        with pytest.raises(ValueError, match="full spokes"):
            estimator(data, nominal)


def _estimate(method: str, delay: GradientDelay, mismatch: float = 0.0, uncertainty: float = 0.001) -> DelayEstimate:
    return DelayEstimate(delay, method, 100, 0.01, uncertainty, mismatch)


def test_decision_rules() -> None:
    check = DelayCheck()
    ring, ac = _estimate("ring", GradientDelay(0.5, -0.3)), _estimate("ac-adaptive", GradientDelay(0.52, -0.28))
    agreed = decide_delay(ring, ac, check)
    assert agreed.applied is ring and not agreed.fallback and agreed.disagreement == pytest.approx(0.02 / math.sqrt(1.5))
    # threshold: 0.15 + 0.1 × anisotropy (0.4 here) = 0.19
    assert agreed.threshold == pytest.approx(0.19)
    far = _estimate("ac-adaptive", GradientDelay(-0.1, 0.1))
    split = decide_delay(ring, far, check)
    assert split.applied is None and split.fallback and "disagree" in split.reason
    poor = _estimate("ring", GradientDelay(3.6, 3.2), mismatch=0.2)
    rescued = decide_delay(poor, ac, check)
    assert rescued.applied is ac and rescued.fallback and "mismatch" in rescued.reason
    assert decide_delay(poor, "AC-adaptive needs antiparallel spokes", check).applied is None
    unchecked = decide_delay(ring, "AC-adaptive needs antiparallel spokes", check)
    assert unchecked.applied is ring and not unchecked.fallback and unchecked.failures[0][0] == "ac-adaptive"
    uncertain = decide_delay(_estimate("ring", GradientDelay(0.5, -0.3), uncertainty=1.0), None, check)
    assert uncertain.applied is None and "standard error" in uncertain.reason
    report = split.to_dict()
    assert report["applied"] is None and len(report["estimates"]) == 2 and report["estimates"][0]["method"] == "ring"


def test_auto_falls_back_when_an_estimator_must_fail() -> None:
    """Pure noise: neither is sound → no correction. Delays beyond RING's window: AC-adaptive. Spokes over 180°: RING unchecked."""
    nominal = radial_trajectory(RadialSpec(64, 32, 2.0, golden=True))
    noise = torch.randn(8, 32, 128, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    decision = estimate_delay_checked(noise, nominal)
    assert decision.applied is None and decision.fallback and len(decision.failures) == 2
    large = GradientDelay(5.0, 4.0)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 32, 2.0, golden=True), large, noise=0.005)
    decision = estimate_delay_checked(data, nominal)
    assert decision.applied is not None and decision.applied.method == "ac-adaptive" and decision.fallback
    assert decision.applied.delay.error(large) < 0.05
    delay = GradientDelay(0.5, -0.3)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 32, 2.0), delay, noise=0.005)
    decision = estimate_delay_checked(data, nominal)
    assert decision.applied is not None and decision.applied.method == "ring" and not decision.fallback
    assert decision.applied.delay.error(delay) < 0.01 and decision.failures[0][0] == "ac-adaptive"


def test_auto_agrees_with_ring_on_sound_data() -> None:
    delay = GradientDelay(0.5, -0.3, 0.1)
    data, nominal = _acquire(_phantom(64), RadialSpec(64, 32, 2.0, golden=True), delay, noise=0.005, seed=1)
    decision = estimate_delay_checked(data, nominal)
    assert decision.applied is not None and decision.applied.method == "ring" and not decision.fallback
    assert decision.disagreement is not None and decision.disagreement < decision.threshold
    assert decision.applied.delay.error(delay) < 0.01


def test_data_without_signal_is_not_corrected() -> None:
    nominal = radial_trajectory(RadialSpec(32, 16, 2.0, golden=True))
    for data, reason in ((torch.zeros(2, 16, 64, dtype=torch.complex64), "no signal"),
                         (torch.full((2, 16, 64), float("nan"), dtype=torch.complex64), "NaN")):
        decision = estimate_delay_checked(data, nominal)
        assert decision.applied is None and decision.fallback and reason in decision.reason
