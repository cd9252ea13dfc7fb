"""Gaussian blur, blur + downsampling and upsampling against scipy/torch references and exact geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as functional

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.physics.blur import (
    FWHM_PER_SIGMA,
    blur_downsample,
    default_fwhm,
    downsample_affine,
    fwhm_to_sigma,
    gaussian_blur,
    sigma_to_fwhm,
    upsample,
    upsample_affine,
)


def _random(*shape: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=make_generator(seed), dtype=dtype)


def test_fwhm_sigma_conversion() -> None:
    assert FWHM_PER_SIGMA == pytest.approx(2.354820045, rel=1e-9)
    assert sigma_to_fwhm(fwhm_to_sigma(3.7)) == pytest.approx(3.7, rel=1e-15)


@pytest.mark.parametrize("sigma", [0.4, 1.0, 2.5, 30.0])
def test_gaussian_blur_equals_scipy_gaussian_filter(sigma: float) -> None:
    x = _random(3, 37, 29)
    blurred = gaussian_blur(x, sigma=sigma, spatial_ndim=2)
    reference = scipy.ndimage.gaussian_filter(x.numpy(), (0, sigma, sigma), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(blurred.numpy(), reference, rtol=0, atol=1e-13)


def test_gaussian_blur_3d_equals_scipy_and_keeps_input() -> None:
    x = _random(2, 11, 13, 9, dtype=torch.float32)
    original = x.clone()
    blurred = gaussian_blur(x, fwhm=3.0, spatial_ndim=3)
    assert torch.equal(x, original) and blurred.dtype == torch.float32
    sigma = fwhm_to_sigma(3.0)
    reference = scipy.ndimage.gaussian_filter(x.double().numpy(), (0, sigma, sigma, sigma), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(blurred.numpy(), reference, rtol=0, atol=2e-6)


@pytest.mark.parametrize("spatial_ndim", [1, 2, 3])
def test_blur_keeps_a_constant_image_constant(spatial_ndim: int) -> None:
    x = torch.full((2,) + (15,) * spatial_ndim, 7.25, dtype=torch.float64)
    np.testing.assert_allclose(gaussian_blur(x, fwhm=6.0, spatial_ndim=spatial_ndim).numpy(), 7.25, rtol=1e-14)
    np.testing.assert_allclose(blur_downsample(x, 3, spatial_ndim=spatial_ndim).numpy(), 7.25, rtol=1e-14)


def _half_max_width(profile: np.ndarray) -> float:
    """FWHM of a single-peaked sampled profile, crossings found by linear interpolation."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2
    left = peak - int(np.argmax(profile[peak::-1] < half))
    right = peak + int(np.argmax(profile[peak:] < half))
    left_crossing = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    right_crossing = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float(right_crossing - left_crossing)


def _linear_interpolation_bound(sigma: float) -> float:
    """Bound on the FWHM error of :func:`_half_max_width` for a Gaussian of std ``sigma`` (pixels).

    Per crossing: (max |f''| over the bracketing pixel) / 8 divided by min |f'| there, for
    ``f(t) = exp(−t²/2σ²)``; two crossings.
    """
    t = np.linspace(sigma * math.sqrt(2 * math.log(2)) - 1, sigma * math.sqrt(2 * math.log(2)) + 1, 2001)
    f = np.exp(-(t**2) / (2 * sigma**2))
    first = np.abs(-t / sigma**2 * f)
    second = np.abs((t**2 / sigma**4 - 1 / sigma**2) * f)
    return 2 * (second.max() / 8) / first.min()


@pytest.mark.parametrize("fwhm", [3.0, 5.5, 9.0])
def test_blurred_delta_has_the_requested_fwhm(fwhm: float) -> None:
    delta = torch.zeros(61, 61, dtype=torch.float64)
    delta[30, 30] = 1.0
    psf = gaussian_blur(delta, fwhm=fwhm).numpy()
    sigma = fwhm_to_sigma(fwhm)
    assert psf.sum() == pytest.approx(1.0, rel=1e-12)
    for profile in (psf[30, :], psf[:, 30]):
        measured = _half_max_width(profile)
        assert abs(measured - fwhm) <= _linear_interpolation_bound(sigma)
        # the sampled log-profile is an exact parabola −t²/2σ² + c: fit it near the peak
        offsets = np.arange(-3, 4)
        curvature = np.polyfit(offsets, np.log(profile[30 + offsets]), 2)[0]
        assert sigma_to_fwhm(math.sqrt(-1 / (2 * curvature))) == pytest.approx(fwhm, rel=1e-9)
    # second moment of the 2-D PSF per axis: that of the sampled Gaussian truncated at round(4σ)
    # (exactly), which is σ² up to the truncated tails (~1e-3)
    rows = np.arange(61) - 30
    second_moment = float((psf.sum(axis=1) * rows**2).sum())
    taps = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    assert second_moment == pytest.approx(float((weights * taps**2).sum() / weights.sum()), rel=1e-12)
    assert second_moment == pytest.approx(sigma**2, rel=3e-3)


def test_blur_of_complex_data_blurs_real_and_imaginary_parts() -> None:
    real, imaginary = _random(9, 10, seed=1), _random(9, 10, seed=2)
    blurred = gaussian_blur(torch.complex(real, imaginary), sigma=1.2)
    torch.testing.assert_close(blurred.real, gaussian_blur(real, sigma=1.2), rtol=0, atol=1e-15)
    torch.testing.assert_close(blurred.imag, gaussian_blur(imaginary, sigma=1.2), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("shape", "spatial_ndim", "factor", "expected"),
    [
        ((37, 29), 2, 3, (12, 9)),
        ((4, 37, 29), 2, 2, (4, 18, 14)),
        ((2, 3, 20, 21, 22), 3, 4, (2, 3, 5, 5, 5)),
        ((17,), 1, 5, (3,)),
        ((8, 8), 2, 1, (8, 8)),
    ],
)
def test_blur_downsample_shape_is_floor_of_n_over_factor(
    shape: tuple[int, ...], spatial_ndim: int, factor: int, expected: tuple[int, ...]
) -> None:
    assert tuple(blur_downsample(_random(*shape), factor, spatial_ndim=spatial_ndim).shape) == expected


@pytest.mark.parametrize("factor", [1, 3, 5])
def test_odd_factor_equals_blur_then_sampling_block_centres(factor: int) -> None:
    x = _random(2, 40, 33)
    reduced = blur_downsample(x, factor, fwhm=2.7)
    centre = (factor - 1) // 2
    blurred = gaussian_blur(x, fwhm=2.7)[:, centre::factor, centre::factor][:, : 40 // factor, : 33 // factor]
    torch.testing.assert_close(reduced, blurred, rtol=0, atol=1e-14)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_blur_downsample_puts_each_output_sample_at_its_block_centre(factor: int) -> None:
    """A smooth blob centred at input index c has its centroid at (c − (k − 1)/2)/k after downsampling."""
    centre = (31.3, 28.6)
    rows, columns = torch.meshgrid(torch.arange(64.0, dtype=torch.float64), torch.arange(60.0, dtype=torch.float64), indexing="ij")
    blob = torch.exp(-((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / (2 * 5.0**2))
    reduced = blur_downsample(blob, factor)
    out_rows, out_columns = torch.meshgrid(
        torch.arange(float(reduced.shape[0]), dtype=torch.float64),
        torch.arange(float(reduced.shape[1]), dtype=torch.float64),
        indexing="ij",
    )
    mass = reduced.sum()
    centroid = (float((reduced * out_rows).sum() / mass), float((reduced * out_columns).sum() / mass))
    expected = tuple((c - (factor - 1) / 2) / factor for c in centre)
    # 1e-6 output pixels: the blob's tails cut by the image border shift its centroid by ~2e-8;
    # a half-pixel convention error would be (k − 1)/(2k) ≥ 0.25
    assert centroid == pytest.approx(expected, abs=1e-6)


def test_default_fwhm_and_blur_downsample_errors() -> None:
    assert default_fwhm(4) == 4.0
    x = _random(10, 10)
    torch.testing.assert_close(blur_downsample(x, 2), blur_downsample(x, 2, fwhm=2.0), rtol=0, atol=0)
    for factor in (0, 2.5, True):
        with pytest.raises(ConfigError, match="factor"):
            blur_downsample(x, factor)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fwhm"):
        blur_downsample(x, 2, fwhm=0.0)
    with pytest.raises(InputError, match="smaller than the factor"):
        blur_downsample(_random(3, 10), 4)
    with pytest.raises(ConfigError, match="exactly one"):
        gaussian_blur(x, fwhm=2.0, sigma=1.0)
    with pytest.raises(InputError, match="floating-point"):
        gaussian_blur(torch.ones(5, 5, dtype=torch.int32), sigma=1.0)


def test_upsample_nearest_repeats_and_bilinear_is_exact_on_a_ramp() -> None:
    x = _random(2, 5, 6)
    expected = x.repeat_interleave(3, dim=-1).repeat_interleave(3, dim=-2)
    assert torch.equal(upsample(x, 3, mode="nearest"), expected)
    ramp = torch.arange(20.0, dtype=torch.float64).expand(6, 20)
    fine = upsample(ramp, 4, mode="bilinear")
    positions = (torch.arange(80.0, dtype=torch.float64) + 0.5) / 4 - 0.5  # align_corners=False
    torch.testing.assert_close(fine[:, 2:-2], positions[2:-2].expand(24, 76), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("mode", "torch_mode", "spatial_ndim"), [("bicubic", "bicubic", 2), ("bilinear", "trilinear", 3)])
def test_separable_upsampling_equals_torch_interpolate(mode: str, torch_mode: str, spatial_ndim: int) -> None:
    x = _random(2, *(7,) * spatial_ndim, seed=4)
    reference = functional.interpolate(x.unsqueeze(1), scale_factor=2, mode=torch_mode, align_corners=False).squeeze(1)
    torch.testing.assert_close(upsample(x, 2, mode=mode, spatial_ndim=spatial_ndim), reference, rtol=0, atol=1e-12)


def test_tricubic_upsampling_keeps_constants_and_rejects_unknown_modes() -> None:
    x = torch.full((4, 5, 6), 2.0, dtype=torch.float64)
    fine = upsample(x, 2, mode="bicubic", spatial_ndim=3)
    assert fine.shape == (8, 10, 12)
    np.testing.assert_allclose(fine.numpy(), 2.0, rtol=1e-14)
    with pytest.raises(ConfigError, match="mode"):
        upsample(x, 2, mode="lanczos")


def test_downsample_and_upsample_affines_are_inverse_and_move_the_origin_to_block_centres() -> None:
    affine = np.array([[0.0, -0.9, 0.1, 12.0], [0.7, 0.0, 0.0, -3.0], [0.0, 0.2, 2.0, 5.0], [0, 0, 0, 1]])
    reduced = downsample_affine(affine, 4, spatial_ndim=2)
    np.testing.assert_allclose(reduced[:3, :2], affine[:3, :2] * 4)
    np.testing.assert_allclose(reduced[:3, 2], affine[:3, 2])  # the slice column of a 2-D image is kept
    np.testing.assert_allclose(reduced @ [0, 0, 0, 1], affine @ [1.5, 1.5, 0, 1])
    np.testing.assert_allclose(reduced @ [2, 1, 0, 1], affine @ [9.5, 5.5, 0, 1])
    np.testing.assert_allclose(upsample_affine(reduced, 4, spatial_ndim=2), affine, atol=1e-12)
