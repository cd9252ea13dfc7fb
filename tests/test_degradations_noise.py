"""Noise models against closed-form moments.

Each statistical check uses a fixed seed, a large sample and a tolerance of
``Z = 5`` standard errors of the estimator (computed from the closed form), so a
correct sampler passes with probability ~1 − 6e-7 per check and a biased one fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.physics.noise import (
    add_gaussian_noise,
    add_poisson_noise,
    add_rician_noise,
    add_speckle,
    anscombe,
    inverse_anscombe,
    poisson_counts,
    resolve_sigma,
    speckle_field,
    super_poisson_counts,
)

Z = 5.0


def _within(estimate: float, expected: float, standard_error: float) -> None:
    assert abs(estimate - expected) <= Z * standard_error, (
        f"estimate {estimate!r} vs expected {expected!r}: {abs(estimate - expected) / standard_error:.2f} standard errors"
    )


def rician_mean(nu: float, sigma: float) -> float:
    """``E[M] = σ √(π/2) L_{1/2}(−ν²/2σ²)`` with ``L_{1/2}(t) = e^{t/2}[(1−t) I₀(−t/2) − t I₁(−t/2)]``.

    With ``a = ν²/4σ²`` the exponentially scaled Bessel functions give
    ``L_{1/2} = (1 + 2a) i0e(a) + 2a i1e(a)`` without overflow at high SNR.
    """
    a = nu**2 / (4 * sigma**2)
    laguerre = (1 + 2 * a) * scipy.special.i0e(a) + 2 * a * scipy.special.i1e(a)
    return sigma * math.sqrt(math.pi / 2) * laguerre


# -- Gaussian --------------------------------------------------------------------------------


def test_gaussian_noise_mean_and_std() -> None:
    sigma, n = 0.7, 1_000_000
    x = torch.full((1000, 1000), 3.0, dtype=torch.float64)
    noise = add_gaussian_noise(x, sigma, make_generator(1)) - x
    _within(float(noise.mean()), 0.0, sigma / math.sqrt(n))
    _within(float(noise.std()), sigma, sigma / math.sqrt(2 * n))


def test_relative_sigma_is_a_fraction_of_the_maximum() -> None:
    x = torch.linspace(0.0, 2.0, 500_000, dtype=torch.float64)
    sigma = resolve_sigma(x, 0.03, relative=True)
    assert sigma == pytest.approx(0.06, rel=1e-12)
    assert resolve_sigma(x, 0.03, relative=False) == 0.03
    noise = add_gaussian_noise(x, sigma, make_generator(2)) - x
    _within(float(noise.std()), 0.06, 0.06 / math.sqrt(2 * x.numel()))


def test_gaussian_noise_on_complex_data_has_sigma_per_component() -> None:
    sigma, n = 0.2, 500_000
    x = torch.full((n,), 1.0 + 2.0j, dtype=torch.complex128)
    noise = add_gaussian_noise(x, sigma, make_generator(3)) - x
    assert noise.dtype == torch.complex128
    for part in (noise.real, noise.imag):
        _within(float(part.std()), sigma, sigma / math.sqrt(2 * n))
    # independent real and imaginary parts: correlation ~ N(0, 1/n)
    correlation = float((noise.real * noise.imag).mean()) / sigma**2
    _within(correlation, 0.0, 1 / math.sqrt(n))


# -- Rician ----------------------------------------------------------------------------------


@pytest.mark.parametrize("snr", [0.0, 0.5, 1.0, 3.0, 20.0])
def test_rician_closed_form_agrees_with_scipy_rice(snr: float) -> None:
    sigma = 1.5
    assert rician_mean(snr * sigma, sigma) == pytest.approx(scipy.stats.rice.mean(snr, scale=sigma), rel=1e-10)


@pytest.mark.parametrize("snr", [0.0, 0.5, 1.0, 2.0, 4.0, 20.0])
def test_rician_mean_bias_and_second_moment(snr: float) -> None:
    sigma, n = 0.5, 400_000
    nu = snr * sigma
    x = torch.full((n,), nu, dtype=torch.float64)
    magnitude = add_rician_noise(x, sigma, make_generator(10 + int(snr * 10)))
    assert magnitude.dtype == torch.float64 and bool((magnitude >= 0).all())
    second_moment = nu**2 + 2 * sigma**2
    expected_mean = rician_mean(nu, sigma)
    variance = second_moment - expected_mean**2
    _within(float(magnitude.mean()), expected_mean, math.sqrt(variance / n))
    variance_of_square = 4 * nu**2 * sigma**2 + 4 * sigma**4
    _within(float(magnitude.square().mean()), second_moment, math.sqrt(variance_of_square / n))


def test_rayleigh_mean_at_zero_signal() -> None:
    assert rician_mean(0.0, 2.0) == pytest.approx(2.0 * math.sqrt(math.pi / 2), rel=1e-14)
    # at very high SNR the scaled-Bessel form stays finite and tends to sqrt(nu² + sigma²)
    assert np.isfinite(rician_mean(1e3, 1.0))
    assert rician_mean(1e3, 1.0) == pytest.approx(math.sqrt(1e6 + 1.0), rel=1e-9)


def test_rician_noise_on_complex_input_stays_complex() -> None:
    sigma, n = 0.3, 400_000
    x = torch.full((n,), 3.0 - 1.0j, dtype=torch.complex64)
    noisy = add_rician_noise(x, sigma, make_generator(4))
    assert noisy.dtype == torch.complex64
    difference = (noisy - x).to(torch.complex128)
    _within(float(difference.real.std()), sigma, sigma / math.sqrt(2 * n))
    _within(float(difference.imag.std()), sigma, sigma / math.sqrt(2 * n))
    # its magnitude is Rician with nu = |x|
    nu = abs(3.0 - 1.0j)
    expected = rician_mean(nu, sigma)
    variance = nu**2 + 2 * sigma**2 - expected**2
    _within(float(noisy.abs().double().mean()), expected, math.sqrt(variance / n))


# -- Poisson ---------------------------------------------------------------------------------


def test_poisson_counts_have_variance_equal_to_mean_at_several_levels() -> None:
    levels = torch.tensor([1.0, 0.5, 0.1, 0.01], dtype=torch.float64)
    per_level = 200_000
    x = levels.repeat_interleave(per_level).reshape(4, per_level)
    counts = add_poisson_noise(x, 1000.0, make_generator(5), return_counts=True)
    assert torch.equal(counts, counts.round()) and bool((counts >= 0).all())
    for row, rate in zip(counts, (levels * 1000.0).tolist(), strict=True):
        _within(float(row.mean()), rate, math.sqrt(rate / per_level))
        # Var(s²) ≈ (μ₄ − σ⁴)/n with μ₄ = λ + 3λ² for Poisson
        _within(float(row.var()), rate, math.sqrt((rate + 2 * rate**2) / per_level))


def test_super_poisson_counts_have_variance_fano_times_the_mean() -> None:
    """Negative binomial: mean μ, variance F·μ (Var(s²) ≈ (μ₄ − σ⁴)/n bounds the check); F = 1 is torch's Poisson draw."""
    per_level = 200_000
    for rate, fano in ((4.0, 1.45), (300.0, 1.45), (50.0, 3.0)):
        expected = torch.full((per_level,), rate, dtype=torch.float64)
        counts = super_poisson_counts(expected, fano, make_generator(int(rate)))
        assert torch.equal(counts, counts.round()) and bool((counts >= 0).all()) and counts.dtype == torch.float64
        variance = fano * rate
        _within(float(counts.mean()), rate, math.sqrt(variance / per_level))
        _within(float(counts.var()), variance, math.sqrt(3.0 * variance**2 * fano / per_level + 2.0 * variance**2 / per_level))
    expected = torch.tensor([0.0, 2.0, 7.5], dtype=torch.float32)
    assert torch.equal(super_poisson_counts(expected, 1.0, make_generator(1)), torch.poisson(expected, generator=make_generator(1)))
    assert float(super_poisson_counts(torch.zeros(100), 2.0, make_generator(0)).abs().sum()) == 0.0
    with pytest.raises(ConfigError, match="fano must be >= 1"):
        super_poisson_counts(expected, 0.8, make_generator(0))
    with pytest.raises(InputError, match="non-negative"):
        super_poisson_counts(-expected - 1.0, 1.5, make_generator(0))


def test_poisson_noise_rescaled_keeps_units_and_dtype() -> None:
    per_level = 200_000
    x = torch.tensor([4.0, 1.0], dtype=torch.float32).repeat_interleave(per_level).reshape(2, per_level)
    peak = 50.0
    noisy = add_poisson_noise(x, peak, make_generator(6))
    assert noisy.dtype == torch.float32
    scale = peak / 4.0
    for row, value in zip(noisy.double(), (4.0, 1.0), strict=True):
        # k/s has mean x and variance x/s
        _within(float(row.mean()), value, math.sqrt(value / scale / per_level))
        _within(float(row.var()), value / scale, math.sqrt((value * scale + 2 * (value * scale) ** 2) / per_level) / scale**2)


def test_poisson_total_counts_match_expectation() -> None:
    activity = torch.rand(256, 256, generator=make_generator(7), dtype=torch.float64)
    total = 1.0e6
    counts = poisson_counts(activity, make_generator(8), total_counts=total)
    # the sum of independent Poisson variables is Poisson(total)
    _within(float(counts.sum()), total, math.sqrt(total))
    peak_counts = poisson_counts(activity, make_generator(8), peak_counts=400.0)
    brightest = int(activity.argmax())
    assert abs(float(peak_counts.flatten()[brightest]) - 400.0) <= Z * math.sqrt(400.0)


def test_poisson_rejects_negative_values_and_handles_zero_images() -> None:
    with pytest.raises(InputError, match="non-negative"):
        add_poisson_noise(torch.tensor([1.0, -0.5]), 100.0, make_generator(0))
    zeros = torch.zeros(3, 3)
    assert torch.equal(add_poisson_noise(zeros, 100.0, make_generator(0)), zeros)
    with pytest.raises(InputError, match="zero everywhere"):
        poisson_counts(zeros, make_generator(0), total_counts=10.0)
    with pytest.raises(ConfigError, match="exactly one"):
        poisson_counts(torch.ones(3), make_generator(0), total_counts=10.0, peak_counts=5.0)
    with pytest.raises(ConfigError, match="peak_counts"):
        add_poisson_noise(torch.ones(3), 0.0, make_generator(0))


# -- speckle ---------------------------------------------------------------------------------


@pytest.mark.parametrize("looks", [1.0, 4.0, 16.5])
def test_intensity_speckle_has_mean_one_and_variance_one_over_looks(looks: float) -> None:
    n = 500_000
    field = speckle_field((n,), looks, make_generator(20), dtype=torch.float64)
    variance = 1 / looks
    _within(float(field.mean()), 1.0, math.sqrt(variance / n))
    # Gamma(L, 1/L): excess kurtosis 6/L, so Var(s²) ≈ σ⁴ (2 + 6/L) / n
    _within(float(field.var()), variance, math.sqrt(variance**2 * (2 + 6 / looks) / n))
    speckled = add_speckle(torch.full((n,), 2.5, dtype=torch.float64), looks, make_generator(20))
    assert torch.allclose(speckled, 2.5 * field, rtol=1e-12)


@pytest.mark.parametrize("looks", [1.0, 3.0])
def test_amplitude_speckle_is_nakagami(looks: float) -> None:
    n = 500_000
    amplitude = speckle_field((n,), looks, make_generator(21), form="amplitude", dtype=torch.float64)
    expected_mean = math.exp(scipy.special.gammaln(looks + 0.5) - scipy.special.gammaln(looks)) / math.sqrt(looks)
    assert expected_mean == pytest.approx(scipy.stats.nakagami.mean(looks, scale=1.0), rel=1e-10)
    _within(float(amplitude.mean()), expected_mean, math.sqrt((1 - expected_mean**2) / n))
    # a² ~ Gamma(L, 1/L): mean 1, variance 1/L
    _within(float(amplitude.square().mean()), 1.0, math.sqrt(1 / looks / n))


def test_speckle_with_additive_noise_adds_variances() -> None:
    n, looks, sigma, value = 500_000, 4.0, 0.3, 2.0
    noisy = add_speckle(torch.full((n,), value, dtype=torch.float64), looks, make_generator(22), additive_sigma=sigma)
    variance = value**2 / looks + sigma**2
    _within(float(noisy.mean()), value, math.sqrt(variance / n))
    # μ₄ of the sum of independent zero-mean parts: μ₄(a) + 6 Var(a) Var(b) + μ₄(b)
    speckle_variance = value**2 / looks
    fourth = speckle_variance**2 * (3 + 6 / looks) + 6 * speckle_variance * sigma**2 + 3 * sigma**4
    _within(float(noisy.var()), variance, math.sqrt((fourth - variance**2) / n))


def test_speckle_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="looks"):
        add_speckle(torch.ones(3), 0.0, make_generator(0))
    with pytest.raises(ConfigError, match="form"):
        add_speckle(torch.ones(3), 2.0, make_generator(0), form="log")


# -- common behaviour ------------------------------------------------------------------------

NOISE_FUNCTIONS = {
    "gaussian": lambda x, g: add_gaussian_noise(x, 0.1, g),
    "rician": lambda x, g: add_rician_noise(x, 0.1, g),
    "poisson": lambda x, g: add_poisson_noise(x, 30.0, g),
    "speckle": lambda x, g: add_speckle(x, 2.0, g, additive_sigma=0.05),
}


@pytest.mark.parametrize("name", sorted(NOISE_FUNCTIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_is_reproducible_keeps_dtype_and_leaves_input_alone(name: str, dtype: torch.dtype) -> None:
    function = NOISE_FUNCTIONS[name]
    x = torch.rand(2, 17, 9, generator=make_generator(30), dtype=dtype)
    original = x.clone()
    first = function(x, make_generator(123))
    assert torch.equal(x, original)
    assert first.shape == x.shape and first.dtype == dtype
    assert torch.equal(first, function(x, make_generator(123)))
    assert not torch.equal(first, function(x, make_generator(124)))


def test_noise_rejects_negative_sigma_and_integer_tensors() -> None:
    with pytest.raises(ConfigError, match="sigma"):
        add_gaussian_noise(torch.ones(3), -0.1, make_generator(0))
    with pytest.raises(ConfigError, match="sigma"):
        add_rician_noise(torch.ones(3), float("nan"), make_generator(0))
    with pytest.raises(InputError, match="floating-point"):
        add_gaussian_noise(torch.ones(3, dtype=torch.int16), 0.1, make_generator(0))


def test_anscombe_stabilises_poisson_variance_and_its_unbiased_inverse_returns_the_mean() -> None:
    """``Var[2√(k + 3/8)] → 1`` (within 2 % for λ ≥ 4, Anscombe 1948), and the closed-form unbiased
    inverse of ``E[z]`` gives back λ where the algebraic ``z²/4 − 3/8`` does not (Mäkitalo & Foi 2011)."""
    for rate in (1.0, 4.0, 20.0, 200.0):
        counts = torch.poisson(torch.full((400_000,), rate, dtype=torch.float64), generator=make_generator(int(rate)))
        z = anscombe(counts)
        if rate >= 4:
            assert float(z.var()) == pytest.approx(1.0, abs=0.03)
        mean = z.mean().reshape(1)
        assert float(inverse_anscombe(mean)) == pytest.approx(rate, rel=0.01, abs=0.02)
        if rate <= 4:
            assert float(mean**2 / 4 - 0.375) < rate * 0.95  # the algebraic inverse is biased low here
    z = torch.tensor([0.0, 1.0, 2.0 * math.sqrt(0.375), 10.0], dtype=torch.float32)
    inverse = inverse_anscombe(z)
    assert inverse.dtype == torch.float32 and float(inverse.min()) >= 0 and float(inverse[-1]) == pytest.approx(24.892635, abs=1e-4)  # 25 + √1.5/40 − 11/800 + 5√1.5/8000 − 1/8
    torch.testing.assert_close(inverse_anscombe(anscombe(torch.tensor([1000.0], dtype=torch.float64))), torch.tensor([1000.0], dtype=torch.float64), rtol=1e-3, atol=0)
    with pytest.raises(InputError, match="non-negative"):
        anscombe(torch.tensor([-1.0]))
