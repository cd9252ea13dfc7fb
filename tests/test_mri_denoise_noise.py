"""Noise estimation from the image and Rician bias correction, against known σ and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.data.mri_phantom import brain_phantom
from medrestore.physics.noise import add_gaussian_noise, add_rician_noise
from medrestore.physics.noise_estimation import (
    background_sigma,
    estimate_sigma,
    foreground_mask,
    koay_basser,
    rician_bias_correct,
    rician_mean,
    rician_mean_inverse,
    slice_axis,
    temporal_sigma,
    wavelet_sigma,
)


def noisy_phantom(sigma: float, seed: int, shape: tuple[int, ...] = (48, 48, 48)) -> torch.Tensor:
    clean = torch.from_numpy(brain_phantom(shape, seed=1)[0])
    return add_rician_noise(clean, sigma, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.05, 0.1])
def test_background_estimate_within_two_percent(sigma: float) -> None:
    for seed in range(2):
        estimate = background_sigma(noisy_phantom(sigma, seed))
        assert estimate.sigma == pytest.approx(sigma, rel=0.02)
        assert estimate.sigma_mean == pytest.approx(sigma, rel=0.02)
        assert estimate.sigma_mode == pytest.approx(sigma, rel=0.15)
        assert 0.4 < estimate.fraction < 0.8


@pytest.mark.parametrize("sigma", [0.05, 0.1])
def test_wavelet_estimate_on_object_within_five_percent(sigma: float) -> None:
    noisy = noisy_phantom(sigma, 0)
    assert estimate_sigma(noisy, "wavelet") == pytest.approx(sigma, rel=0.05)
    # Unmasked, the Rayleigh background (std 0.655σ) drags the median down: why the mask exists.
    assert wavelet_sigma(noisy) < 0.8 * sigma


def test_wavelet_estimate_of_pure_gaussian_noise_in_2d() -> None:
    noise = add_gaussian_noise(torch.zeros(256, 256, dtype=torch.float64), 2.5, torch.Generator().manual_seed(3))
    assert wavelet_sigma(noise) == pytest.approx(2.5, rel=0.03)


def test_auto_falls_back_to_wavelet_without_background() -> None:
    clean = torch.full((40, 40, 40), 5.0) + torch.linspace(0, 1, 40)[:, None, None]
    noisy = add_rician_noise(clean, 0.2, torch.Generator().manual_seed(0))
    assert estimate_sigma(noisy, "auto") == pytest.approx(0.2, rel=0.05)
    with pytest.raises(InputError):
        estimate_sigma(torch.zeros(3, 3), "auto")
    with pytest.raises(InputError, match="unknown noise estimator"):
        estimate_sigma(noisy, "psychic")


def test_bias_correction_closed_form() -> None:
    # E[M²] = ν² + 2σ² exactly: the correction inverts it.
    nu = torch.tensor([0.0, 0.5, 1.0, 3.0, 10.0], dtype=torch.float64)
    assert torch.allclose(rician_bias_correct(nu**2 + 2 * 0.7**2, 0.7), nu, atol=1e-12)
    # and on samples: the mean of M² over many draws.
    samples = add_rician_noise(torch.full((200_000,), 1.0, dtype=torch.float64), 0.5, torch.Generator().manual_seed(0))
    assert float(rician_bias_correct(samples.square().mean(), 0.5)) == pytest.approx(1.0, abs=0.01)
    assert float(samples.mean()) > 1.05  # the uncorrected magnitude is biased upward


def test_rician_mean_matches_samples_and_inverts() -> None:
    for nu in (0.0, 0.4, 1.0, 2.0, 5.0):
        samples = add_rician_noise(torch.full((400_000,), nu, dtype=torch.float64), 1.0, torch.Generator().manual_seed(1))
        assert float(rician_mean(nu, 1.0)) == pytest.approx(float(samples.mean()), abs=5e-3)
    assert float(rician_mean(0.0, 2.0)) == pytest.approx(2.0 * math.sqrt(math.pi / 2), rel=1e-12)
    nu = np.array([0.0, 0.3, 1.0, 4.0, 39.0, 100.0])
    assert np.allclose(rician_mean_inverse(rician_mean(nu, 1.5), 1.5), nu, rtol=1e-5, atol=1e-4)


def test_koay_basser_recovers_signal_and_sigma() -> None:
    for nu, sigma in ((3.0, 1.0), (1.5, 0.5), (20.0, 2.0)):
        samples = add_rician_noise(torch.full((400_000,), nu, dtype=torch.float64), sigma, torch.Generator().manual_seed(2))
        estimated_nu, estimated_sigma = koay_basser(float(samples.mean()), float(samples.std()))
        assert estimated_sigma == pytest.approx(sigma, rel=0.01)
        assert estimated_nu == pytest.approx(nu, rel=0.01)
    assert koay_basser(math.sqrt(math.pi / 2), math.sqrt(2 - math.pi / 2))[0] == 0.0


def test_a_stack_of_three_slices_is_estimated_slice_by_slice() -> None:
    """A 3-D stack with one side below 4 (a 3-slice fMRI run): σ is the median of its slices' estimates, within 5 %
    of the truth, and the mask is the slices' masks; a 3-D estimate is refused there, and other short shapes too."""
    clean = torch.from_numpy(brain_phantom((64, 64, 3), seed=1)[0])
    noisy = add_rician_noise(clean, 0.04, torch.Generator().manual_seed(5))
    planes = [noisy[:, :, index] for index in range(3)]
    assert slice_axis((64, 64, 3)) == 2 and slice_axis((2, 40, 40)) == 0
    assert slice_axis((64, 64, 8)) is None and slice_axis((3, 3, 64)) is None and slice_axis((64, 3)) is None
    sigma = estimate_sigma(noisy)
    assert sigma == float(np.median([estimate_sigma(plane) for plane in planes]))
    assert sigma == pytest.approx(0.04, rel=0.05)
    mask = foreground_mask(noisy, sigma)
    assert mask.shape == (64, 64, 3) and mask.any()
    for index, plane in enumerate(planes):
        assert np.array_equal(mask[:, :, index], foreground_mask(plane, sigma))
    with pytest.raises(InputError, match="every side >= 4"):
        background_sigma(noisy)
    with pytest.raises(InputError, match="every side >= 4"):
        estimate_sigma(torch.rand(3, 3, 64))


def test_temporal_sigma_of_a_drifting_series_within_five_percent() -> None:
    """A static phantom with a linear drift and Rician noise σ = 0.03 at high SNR in every one of 12 volumes: the
    successive-difference estimate inside the object is within 5 % of σ; the anatomy and the drift cancel."""
    clean = torch.from_numpy(brain_phantom((32, 32, 20), seed=1)[0])
    generator = torch.Generator().manual_seed(3)
    series = torch.stack([add_rician_noise(clean * (1.0 + 0.01 * t) + 0.5 * (clean > 0), 0.03, generator) for t in range(12)])
    mask = clean.numpy() > 0.2
    assert temporal_sigma(series, mask) == pytest.approx(0.03, rel=0.05)
    assert temporal_sigma(series.numpy(), mask) == temporal_sigma(series, mask)
    dim = torch.stack([add_rician_noise(torch.zeros_like(clean), 0.03, generator) for _ in range(12)])  # no signal
    both = torch.cat([series, dim], dim=-1)  # half of the mask without signal, where Rician noise varies less than σ
    wide = np.concatenate([mask, mask], axis=-1)
    assert temporal_sigma(both, wide) == pytest.approx(0.03, rel=0.05)
    assert temporal_sigma(both, wide, min_snr=0.0) < 0.9 * 0.03
    with pytest.raises(InputError, match="T >= 3"):
        temporal_sigma(series[:2], mask)
    with pytest.raises(InputError, match="mask"):
        temporal_sigma(series, mask[:, :, :5])
