"""Sampling masks: fastMRI's RandomMaskFunc / EquiSpacedMaskFunc draw for draw, and Poisson-disc properties."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from medrestore.physics.mri import MaskSpec, equispaced_line_mask, poisson_disc_mask, random_line_mask, sample_mask
from medrestore.physics.mri.masks import mask_acceleration


# --- fastMRI's code (fastmri/data/subsample.py, v0.3), transcribed for comparison -------------
@contextlib.contextmanager
def _temp_seed(rng: np.random.RandomState, seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    state = rng.get_state()
    rng.seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


class _FastmriMaskFunc:
    def __init__(self, center_fractions: list[float], accelerations: list[int], seed: int | None = None) -> None:
        self.center_fractions, self.accelerations = center_fractions, accelerations
        self.rng = np.random.RandomState(seed)

    def __call__(self, shape: tuple[int, ...], seed: int | None = None) -> np.ndarray:
        with _temp_seed(self.rng, seed):
            num_cols = shape[-2]
            choice = self.rng.randint(len(self.center_fractions))
            center_fraction, acceleration = self.center_fractions[choice], self.accelerations[choice]
            num_low = round(num_cols * center_fraction)
            center = np.zeros(num_cols, dtype=np.float32)
            pad = (num_cols - num_low + 1) // 2
            center[pad : pad + num_low] = 1
            accel = self.acceleration_mask(num_cols, acceleration, num_low)
        return np.maximum(center, accel)


class _RandomMaskFunc(_FastmriMaskFunc):
    def acceleration_mask(self, num_cols: int, acceleration: int, num_low: int) -> np.ndarray:
        prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
        return (self.rng.uniform(size=num_cols) < prob).astype(np.float32)


class _EquiSpacedMaskFunc(_FastmriMaskFunc):
    def acceleration_mask(self, num_cols: int, acceleration: int, num_low: int) -> np.ndarray:
        offset = self.rng.randint(0, high=round(acceleration))
        mask = np.zeros(num_cols, dtype=np.float32)
        mask[offset::acceleration] = 1
        return mask


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize(("num_lines", "center_fraction", "acceleration"), [(368, 0.08, 4), (320, 0.04, 8), (128, 0.08, 4)])
def test_random_mask_equals_fastmri(seed: int, num_lines: int, center_fraction: float, acceleration: int) -> None:
    expected = _RandomMaskFunc([center_fraction], [acceleration], seed=seed)((640, num_lines, 2)).astype(bool)
    ours = random_line_mask((640, num_lines), acceleration, center_fraction, seed, axis=-1)
    assert ours.shape == (1, num_lines)
    np.testing.assert_array_equal(ours.numpy()[0], expected)


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize(("num_lines", "center_fraction", "acceleration"), [(368, 0.08, 4), (128, 0.04, 8)])
def test_equispaced_mask_equals_fastmri(seed: int, num_lines: int, center_fraction: float, acceleration: int) -> None:
    expected = _EquiSpacedMaskFunc([center_fraction], [acceleration], seed=seed)((1, num_lines, 2)).astype(bool)
    ours = equispaced_line_mask((num_lines, 64), acceleration, center_fraction, seed, axis=-2)
    assert ours.shape == (num_lines, 1)
    np.testing.assert_array_equal(ours.numpy()[:, 0], expected)


def test_line_mask_centre_and_rate() -> None:
    """The centre block is fully sampled and the mean acceleration over seeds is close to R."""
    reached = []
    for seed in range(200):
        mask = random_line_mask((1, 256), 4, 0.08, seed, axis=-1)[0]
        assert bool(mask[(256 - 20 + 1) // 2 : (256 - 20 + 1) // 2 + 20].all())  # round(256·0.08) = 20
        reached.append(256 / float(mask.sum()))
    assert abs(float(np.mean(reached)) - 4) < 0.1


def test_poisson_disc_mask() -> None:
    """Acceleration within the tolerance, calibration box sampled, reproducible by seed, denser at the centre."""
    mask = poisson_disc_mask((48, 40), 4, (8, 8), seed=3)
    again = poisson_disc_mask((48, 40), 4, (8, 8), seed=3)
    other = poisson_disc_mask((48, 40), 4, (8, 8), seed=4)
    assert torch.equal(mask, again) and not torch.equal(mask, other)
    assert abs(mask_acceleration(mask, (48, 40)) - 4) < 0.1
    assert bool(mask[20:28, 16:24].all())
    y, x = torch.meshgrid(torch.arange(48) - 24, torch.arange(40) - 20, indexing="ij")
    radius = torch.sqrt((y / 24.0) ** 2 + (x / 20.0) ** 2)
    inner, outer = mask[radius < 0.4].float().mean(), mask[(radius > 0.6) & (radius < 1)].float().mean()
    assert inner > 2 * outer
    assert not bool(mask[radius >= 1.2].any())  # corners beyond the ellipse are cropped


def test_poisson_disc_minimum_distance() -> None:
    """Outside the calibration box no two samples are closer than the exclusion radius (≥ 1 grid unit)."""
    mask = poisson_disc_mask((32, 32), 3, (0, 0), seed=0, crop_corner=False)
    points = torch.nonzero(mask).double()
    distances = torch.cdist(points, points) + torch.eye(len(points)) * 1e9
    assert float(distances.min()) >= 1.0


def test_sample_mask_dispatch() -> None:
    assert sample_mask(MaskSpec("random", 4, 0.08, 0), (64, 32)).shape == (64, 1)
    assert sample_mask(MaskSpec("equispaced", 4, 0.08, 0, phase_encode_axis=-1), (64, 32)).shape == (1, 32)
    assert sample_mask(MaskSpec("poisson", 3, 0.1, 0), (32, 32)).shape == (32, 32)
    with pytest.raises(ValueError):
        MaskSpec("spiral", 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        equispaced_line_mask((64, 32), 2.5, 0.08, 0)
