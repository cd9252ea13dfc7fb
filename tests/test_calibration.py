"""Count calibration: isotonic regression against SciPy, LUT recovery of a known non-linear
relation under Poisson noise, mean/std matching and total-count preservation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import isotonic_regression as scipy_isotonic_regression

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.physics.blur import gaussian_blur
from medrestore.physics.calibration import (
    CalibrationConfig,
    CountLUT,
    block_mean,
    calibrate_teacher,
    fit_count_lut,
    grid_factor,
    isotonic_regression,
    match_moments,
    preserve_total_counts,
)


def _relation(t: torch.Tensor) -> torch.Tensor:
    """A monotone, non-linear teacher → counts relation."""
    return 2.0 + 30.0 * t**2


def _smooth_teacher(size: int, seed: int) -> torch.Tensor:
    noise = torch.rand(size, size, generator=make_generator(seed), dtype=torch.float64)
    smooth = gaussian_blur(noise, sigma=3.0)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min())


def test_isotonic_regression_matches_scipy() -> None:
    assert isotonic_regression(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4)).tolist() == [1.0, 2.5, 2.5, 4.0]
    generator = np.random.default_rng(0)
    for _ in range(5):
        values, weights = generator.normal(size=40).cumsum(), generator.uniform(0.1, 3.0, size=40)
        ours = isotonic_regression(values, weights)
        np.testing.assert_allclose(ours, scipy_isotonic_regression(values, weights=weights).x, rtol=1e-12, atol=1e-12)
        assert np.all(np.diff(ours) >= 0)


def test_lut_recovers_the_relation_on_a_ramp() -> None:
    teacher = torch.linspace(0, 1, 256, dtype=torch.float64).repeat(256, 1)  # uniform teacher values
    measured = torch.poisson(_relation(teacher), generator=make_generator(1))
    lut = fit_count_lut(teacher, measured, bins=64)
    assert len(lut.counts) == 64 and all(b >= a for a, b in zip(lut.counts, lut.counts[1:]))
    probe = torch.linspace(0.02, 0.98, 97, dtype=torch.float64)
    error = (lut(probe) - _relation(probe)).abs()
    # 1024 pixels per bin: the bin means have σ = sqrt(32/1024) ≈ 0.18 counts at most
    assert float(error.max()) < 0.8 and float(error.mean()) < 0.25


def test_lut_recovers_the_relation_through_a_coarser_measured_grid() -> None:
    teacher = _smooth_teacher(256, seed=2)
    on_measured = block_mean(teacher, 2)
    measured = torch.poisson(_relation(on_measured), generator=make_generator(3))
    calibration = calibrate_teacher(teacher, measured, CalibrationConfig(match_moments=False))
    assert calibration.factor == 2
    probe_values = torch.quantile(on_measured.flatten(), torch.tensor([0.05, 0.95], dtype=torch.float64))
    probe = torch.linspace(float(probe_values[0]), float(probe_values[1]), 50, dtype=torch.float64)
    relative = (calibration.lut(probe) - _relation(probe)).abs() / _relation(probe)
    assert float(relative.max()) < 0.08  # 5–95 % of the values; sparse bins at the ends are noisier
    # counts per teacher pixel: four teacher pixels share one measured pixel's counts
    total = float(measured.sum())
    assert abs(float(calibration.teacher_counts.sum()) - total) <= 0.01 * total
    expected_per_pixel = _relation(teacher) / 4
    inner = (teacher > probe_values[0]) & (teacher < probe_values[1])
    relative_pixel = ((calibration.teacher_counts - expected_per_pixel).abs() / expected_per_pixel)[inner]
    assert float(relative_pixel.mean()) < 0.03


def test_moment_matching_reaches_the_measured_mean_and_std() -> None:
    teacher = _smooth_teacher(128, seed=4)
    measured = torch.poisson(10.0 + 50.0 * block_mean(teacher, 2) ** 1.5, generator=make_generator(5))
    config = CalibrationConfig(match_moments=True, preserve_total=False)
    calibrated = calibrate_teacher(teacher, measured, config).teacher_counts
    binned = calibrated.reshape(64, 2, 64, 2).sum(dim=(1, 3))
    assert float(binned.mean()) == pytest.approx(float(measured.mean()), rel=1e-10)
    assert float(binned.std(unbiased=False)) == pytest.approx(float(measured.std(unbiased=False)), rel=1e-10)
    config = CalibrationConfig(std_target="poisson-corrected", preserve_total=False)
    corrected = calibrate_teacher(teacher, measured, config)
    binned = corrected.teacher_counts.reshape(64, 2, 64, 2).sum(dim=(1, 3))
    target = math.sqrt(float(measured.var(unbiased=False)) - float(measured.mean()))
    assert float(binned.std(unbiased=False)) == pytest.approx(target, rel=1e-10)


def test_default_calibration_preserves_total_counts_and_is_non_negative() -> None:
    teacher = _smooth_teacher(128, seed=6)
    measured = torch.poisson(_relation(block_mean(teacher, 4)) * 3, generator=make_generator(7))
    calibration = calibrate_teacher(teacher, measured)
    assert float(calibration.teacher_counts.min()) >= 0
    assert float(calibration.teacher_counts.sum()) == pytest.approx(float(measured.sum()), rel=1e-9)
    assert calibration.record["total_counts"] == pytest.approx(calibration.record["measured_total_counts"], rel=1e-9)
    assert calibration.record["lut"]["teacher_values"] == list(calibration.lut.teacher_values)


def test_preserve_total_counts_and_match_moments() -> None:
    image = torch.tensor([[1.0, 3.0], [0.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(preserve_total_counts(image, 16.0), image * 2)
    with pytest.raises(InputError, match="total is 0.0"):
        preserve_total_counts(torch.zeros(2, 2), 5.0)
    torch.testing.assert_close(match_moments(image, 2.0, 1.0, 10.0, 3.0), (image - 2.0) * 3.0 + 10.0)


def test_constant_teacher_gives_a_one_point_lut() -> None:
    lut = fit_count_lut(torch.full((4, 4), 2.0), torch.arange(16.0).reshape(4, 4))
    assert lut == CountLUT((2.0,), (7.5,))
    assert torch.equal(lut(torch.tensor([0.0, 5.0])), torch.tensor([7.5, 7.5]))


def test_bad_grids_and_options_are_refused() -> None:
    assert grid_factor((256, 128), (64, 32)) == 4
    with pytest.raises(InputError, match="times one integer"):
        grid_factor((256, 256), (100, 100))
    with pytest.raises(InputError, match="times one integer"):
        grid_factor((256, 128), (64, 64))
    with pytest.raises(InputError, match="non-negative"):
        calibrate_teacher(torch.ones(4, 4), -torch.ones(2, 2))
    with pytest.raises(ConfigError, match="std_target"):
        CalibrationConfig(std_target="robust")
    with pytest.raises(ConfigError, match="bins"):
        CalibrationConfig(bins=1)
    with pytest.raises(ConfigError, match="must not decrease"):
        CountLUT((0.0, 1.0), (2.0, 1.0))
