"""NEMA NU 1 measures against closed forms: Gaussian line-spread widths, sinusoid modulation, ramp-flood uniformity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.metrics.nema import bar_contrast, flood_uniformity, line_source_widths, response_width

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
FWTM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(10.0))


def gaussian(size: int, centre: float, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64)
    return np.exp(-0.5 * ((x - centre) / sigma) ** 2)


@pytest.mark.parametrize("sigma", [3.0, 6.0, 10.0])  # NEMA asks for pixels of at most FWHM / 10
@pytest.mark.parametrize("centre", [40.0, 40.3, 40.5])
def test_gaussian_profile_widths_match_closed_form(sigma: float, centre: float) -> None:
    profile = 250.0 * gaussian(121, centre + 20.0, sigma)
    assert response_width(profile, pixel_mm=1.5) == pytest.approx(1.5 * FWHM_PER_SIGMA * sigma, rel=0.015)
    assert response_width(profile, pixel_mm=1.5, fraction=0.1) == pytest.approx(1.5 * FWTM_PER_SIGMA * sigma, rel=0.015)


def test_triangle_width_is_exact() -> None:
    """Linear interpolation is exact on a triangle: FWHM = half the base, FWTM = 0.9 of it."""
    profile = np.clip(10.0 - np.abs(np.arange(21) - 10.0), 0.0, None)  # base 20 pixels, peak 10
    assert response_width(profile) == pytest.approx(10.0)
    assert response_width(profile, fraction=0.1) == pytest.approx(18.0)


def test_two_line_sources_in_an_image() -> None:
    sigma, pixel = 3.0, 1.25
    across = 180.0 * (gaussian(128, 40.2, sigma) + gaussian(128, 90.7, sigma)) + 2.0
    image = torch.from_numpy(np.tile(across, (96, 1)))
    before = image.clone()
    widths = line_source_widths(image, pixel, lines=2, line_axis=0, strip_mm=30.0)
    assert torch.equal(image, before)
    assert widths.fwhm_mm.shape == (2, 96 // 24)
    assert widths.positions == pytest.approx([40.2, 90.7], abs=0.05)
    assert widths.mean_fwhm_mm == pytest.approx(pixel * FWHM_PER_SIGMA * sigma, rel=0.02)
    transposed = line_source_widths(image.T, pixel, lines=2, line_axis=1)
    np.testing.assert_allclose(transposed.fwhm_mm, widths.fwhm_mm)


def test_a_slit_pattern_whose_lines_are_closer_than_two_fwtm() -> None:
    """Seven lines 30 mm apart, FWHM 11 mm (FWTM 20 mm: a slit mask seen through a blurred restoration)."""
    sigma, pixel = 11.0 / FWHM_PER_SIGMA, 1.0
    centres = [25.0 + 30.0 * line for line in range(7)]
    across = 300.0 * sum(gaussian(230, centre, sigma) for centre in centres) + 3.0
    widths = line_source_widths(torch.from_numpy(np.tile(across, (60, 1))), pixel, lines=7, line_axis=0)
    assert widths.positions == pytest.approx(centres, abs=0.05)
    assert widths.mean_fwhm_mm == pytest.approx(11.0, rel=0.03)  # the neighbours' tails add < 3 %


def test_bar_contrast_of_a_sinusoid() -> None:
    x = np.arange(400)
    assert bar_contrast(100.0 + 30.0 * np.sin(2 * np.pi * x / 16.0)) == pytest.approx(0.3, abs=1e-3)
    assert bar_contrast(np.where((x // 8) % 2 == 0, 50.0, 0.0)) == 1.0
    assert bar_contrast(np.full(10, 7.0)) == 0.0


def test_ramp_flood_uniformity_closed_form() -> None:
    """v = a + b·column on a 20 × 20 field at 6.4 mm: the UFOV drops the border ring, the CFOV keeps columns 4–15."""
    a, b, n = 100.0, 1.0, 20
    flood = np.tile(a + b * np.arange(n, dtype=np.float64), (n, 1))
    result = flood_uniformity(flood, pixel_mm=6.4)
    assert result.pixel_mm == 6.4
    assert result.integral_ufov == pytest.approx(100 * b * (n - 3) / (2 * a + b * (n - 1)))
    assert result.differential_ufov == pytest.approx(100 * 4 * b / (2 * a + 6 * b))
    assert result.integral_cfov == pytest.approx(100 * 11 * b / (2 * a + 19 * b))
    assert result.differential_cfov == pytest.approx(100 * 4 * b / (2 * a + 12 * b))


def test_flood_is_binned_to_nema_pixels() -> None:
    fine = np.full((64, 64), 25.0)
    result = flood_uniformity(fine, pixel_mm=3.2)
    assert result.pixel_mm == pytest.approx(6.4)
    assert result.integral_ufov == pytest.approx(0.0)
    assert result.differential_cfov == pytest.approx(0.0)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError, match="2-D"):
        flood_uniformity(np.ones(10), 6.4)
    with pytest.raises(InputError, match="finite"):
        line_source_widths(np.full((8, 8), np.nan), 1.0)
    with pytest.raises(InputError, match="does not fall"):
        response_width(np.array([1.0, 2.0, 3.0]))


def test_dim_detector_edge_is_dropped_before_smoothing() -> None:
    """A ring below 75 % of the CFOV mean leaves the field and does not leak into its edge by the smoothing."""
    flood = np.full((20, 20), 50.0)
    flood[2:-2, 2:-2] = 100.0
    result = flood_uniformity(flood, pixel_mm=6.4)
    assert result.integral_ufov == pytest.approx(0.0) and result.differential_ufov == pytest.approx(0.0)
