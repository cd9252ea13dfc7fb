"""Metrics against skimage and hand computations: SSIM, PSNR, NMSE, MSE/MAE, masks, Dice/Jaccard."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import scipy.ndimage as ndimage
import torch
from skimage.metrics import mean_squared_error, normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from medrestore.core.errors import InputError
from medrestore.metrics import (
    LabelOverlap,
    SSIMOptions,
    dice,
    jaccard,
    mae,
    mse,
    nmse,
    psnr,
    ssim,
    ssim_map,
)
from medrestore.metrics.ssim import BANDED_MAX_LENGTH, SSIMOptions, reflect_band_matrix, separable_filter

SHAPES = [(11, 11), (12, 13), (31, 17), (64, 65), (11, 12, 13), (14, 15, 17)]


def _noisy_pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.random(shape)
    prediction = reference + 0.3 * rng.standard_normal(shape)
    return prediction, reference


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", ["gaussian", "uniform"])
@pytest.mark.parametrize("sample_covariance", [True, False])
def test_ssim_matches_skimage(shape: tuple[int, ...], window: str, sample_covariance: bool) -> None:
    prediction, reference = _noisy_pair(shape, seed=sum(shape))
    expected = structural_similarity(
        reference,
        prediction,
        data_range=2.0,
        gaussian_weights=window == "gaussian",
        sigma=1.5,
        use_sample_covariance=sample_covariance,
    )
    value = ssim(
        prediction, reference, 2.0, window=window, use_sample_covariance=sample_covariance, spatial_ndim=len(shape)
    )
    assert abs(value - expected) < 1e-6
    assert 0.0 < expected < 0.9  # a real, imperfect similarity, not a trivial 1


@pytest.mark.parametrize("sigma, win_size, k1, k2", [(0.8, 5, 0.02, 0.05), (2.0, 9, 0.01, 0.03)])
def test_ssim_other_windows_and_constants_match_skimage(sigma: float, win_size: int, k1: float, k2: float) -> None:
    prediction, reference = _noisy_pair((40, 37), seed=3)
    gaussian_expected = structural_similarity(
        reference, prediction, data_range=1.5, gaussian_weights=True, sigma=sigma, K1=k1, K2=k2,
        use_sample_covariance=False,
    )
    uniform_expected = structural_similarity(reference, prediction, data_range=1.5, win_size=win_size, K1=k1, K2=k2)
    assert abs(ssim(prediction, reference, 1.5, sigma=sigma, k1=k1, k2=k2) - gaussian_expected) < 1e-6
    uniform = ssim(
        prediction, reference, 1.5, window="uniform", win_size=win_size, k1=k1, k2=k2, use_sample_covariance=True
    )
    assert abs(uniform - uniform_expected) < 1e-6


def test_ssim_uint8_matches_skimage_default_data_range() -> None:
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 256, size=(45, 50), dtype=np.uint8)
    prediction = np.clip(reference.astype(int) + rng.integers(-40, 41, size=reference.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(reference, prediction)  # uint8: data range 255, 7x7 uniform, sample cov
    value = ssim(prediction, reference, 255, window="uniform", use_sample_covariance=True)
    assert abs(value - expected) < 1e-6
    gaussian_expected = structural_similarity(reference, prediction, gaussian_weights=True, use_sample_covariance=False)
    assert abs(ssim(torch.from_numpy(prediction), torch.from_numpy(reference), 255) - gaussian_expected) < 1e-6


def test_ssim_float32_is_computed_in_float64() -> None:
    prediction, reference = _noisy_pair((33, 29), seed=11)
    prediction32, reference32 = prediction.astype(np.float32), reference.astype(np.float32)
    expected = structural_similarity(
        reference32.astype(np.float64), prediction32.astype(np.float64), data_range=1.0, gaussian_weights=True,
        use_sample_covariance=False,
    )
    assert abs(ssim(torch.from_numpy(prediction32), torch.from_numpy(reference32), 1.0) - expected) < 1e-12


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_map_matches_skimage_full_map_including_borders(window: str) -> None:
    prediction, reference = _noisy_pair((12, 14), seed=5)
    _, expected = structural_similarity(
        reference, prediction, data_range=1.0, gaussian_weights=window == "gaussian", use_sample_covariance=False,
        full=True,
    )
    values = ssim_map(prediction, reference, 1.0, window=window)
    assert values.dtype == torch.float64 and values.shape == (12, 14)
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-12)


def test_separable_filter_equals_scipy_reflect_filters() -> None:
    volume = torch.from_numpy(np.random.default_rng(2).random((2, 13, 12, 11)))
    gaussian = separable_filter(volume, SSIMOptions(sigma=1.5).kernel(torch.float64, volume.device), spatial_ndim=3)
    expected = ndimage.gaussian_filter(volume.numpy(), 1.5, truncate=3.5, mode="reflect", axes=(1, 2, 3))
    np.testing.assert_allclose(gaussian.numpy(), expected, atol=1e-13)
    box = SSIMOptions(window="uniform", win_size=5).kernel(torch.float64, volume.device)
    uniform = separable_filter(volume, box, spatial_ndim=2)
    np.testing.assert_allclose(uniform.numpy(), ndimage.uniform_filter(volume.numpy(), 5, axes=(2, 3)), atol=1e-13)


def test_ssim_of_slice_stack_is_mean_of_slice_ssims() -> None:
    prediction, reference = _noisy_pair((3, 20, 22), seed=9)
    per_slice = [
        structural_similarity(reference[s], prediction[s], data_range=1.0, gaussian_weights=True,
                              use_sample_covariance=False)
        for s in range(3)
    ]
    assert abs(ssim(prediction, reference, 1.0, spatial_ndim=2) - float(np.mean(per_slice))) < 1e-12


def test_ssim_identical_images_and_errors() -> None:
    image = np.arange(144.0).reshape(12, 12)
    assert ssim(image, image, data_range=143.0) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(InputError, match="smaller than the 11-voxel SSIM window"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)), 1.0)
    with pytest.raises(InputError, match="does not match"):
        ssim(np.zeros((12, 12)), np.zeros((12, 13)), 1.0)
    with pytest.raises(InputError, match="unknown SSIM window"):
        ssim(image, image, 1.0, window="box")  # type: ignore[arg-type]


def test_psnr_nmse_mse_mae_match_skimage() -> None:
    prediction, reference = _noisy_pair((37, 41), seed=21)
    data_range = float(reference.max() - reference.min())
    expected_psnr = peak_signal_noise_ratio(reference, prediction, data_range=data_range)
    assert abs(psnr(prediction, reference, data_range) - expected_psnr) < 1e-6
    expected_nmse = normalized_root_mse(reference, prediction, normalization="euclidean") ** 2
    assert abs(nmse(prediction, reference) - expected_nmse) < 1e-12
    assert abs(mse(prediction, reference) - mean_squared_error(reference, prediction)) < 1e-15
    assert abs(mae(prediction, reference) - float(np.mean(np.abs(reference - prediction)))) < 1e-15
    uint8_reference = (reference * 255).astype(np.uint8)
    uint8_prediction = np.clip(prediction * 255, 0, 255).astype(np.uint8)
    expected = peak_signal_noise_ratio(uint8_reference, uint8_prediction)  # data range 255 from the dtype
    assert abs(psnr(uint8_prediction, uint8_reference, 255) - expected) < 1e-6


def test_psnr_closed_form_and_identical_images() -> None:
    reference = np.zeros((4, 4))
    prediction = reference + 0.1  # MSE = 0.01 → PSNR = 10 log10(1 / 0.01) = 20 dB
    assert psnr(prediction, reference, 1.0) == pytest.approx(20.0, abs=1e-12)
    assert psnr(reference, reference, 1.0) == math.inf
    with pytest.raises(InputError, match="positive data range"):
        psnr(prediction, reference, 0.0)
    with pytest.raises(InputError, match="zero everywhere"):
        nmse(prediction, reference)


def test_masked_metrics_against_hand_computation() -> None:
    reference = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    prediction = np.array([[1.5, 2.0, 1.0], [4.0, 9.0, 6.0]])
    mask = np.array([[1, 1, 1], [0, 0, 0]])
    # masked errors: 0.5, 0, −2 → MSE = (0.25 + 0 + 4)/3, MAE = 2.5/3, NMSE = 4.25 / (1 + 4 + 9)
    assert mse(prediction, reference, mask) == pytest.approx(4.25 / 3, abs=1e-15)
    assert mae(prediction, reference, mask) == pytest.approx(2.5 / 3, abs=1e-15)
    assert nmse(prediction, reference, mask) == pytest.approx(4.25 / 14, abs=1e-15)
    assert psnr(prediction, reference, 6.0, mask) == pytest.approx(10 * math.log10(36 / (4.25 / 3)), abs=1e-12)
    with pytest.raises(InputError, match="selects no voxel"):
        mse(prediction, reference, np.zeros_like(mask))


def test_masked_ssim_is_mean_of_map_over_masked_interior() -> None:
    prediction, reference = _noisy_pair((30, 32), seed=4)
    mask = np.zeros((30, 32), dtype=bool)
    mask[3:20, 8:30] = True
    _, full_map = structural_similarity(
        reference, prediction, data_range=1.0, gaussian_weights=True, use_sample_covariance=False, full=True
    )
    interior = np.zeros_like(mask)
    interior[5:-5, 5:-5] = True  # skimage's crop: (11 − 1) // 2 = 5 voxels per border
    expected = float(full_map[mask & interior].mean())
    assert abs(ssim(prediction, reference, 1.0, mask=mask) - expected) < 1e-12
    unmasked = ssim(prediction, reference, 1.0)
    assert ssim(prediction, reference, 1.0, mask=np.ones_like(mask)) == pytest.approx(unmasked, abs=1e-15)
    border_only = np.zeros_like(mask)
    border_only[:3] = True
    with pytest.raises(InputError, match="farther than 5 voxels"):
        ssim(prediction, reference, 1.0, mask=border_only)


def test_inputs_are_not_modified() -> None:
    prediction, reference = _noisy_pair((16, 16), seed=1)
    prediction_copy, reference_copy = prediction.copy(), reference.copy()
    tensor = torch.from_numpy(prediction.astype(np.float32))
    tensor_copy = tensor.clone()
    ssim(prediction, reference, 1.0)
    psnr(tensor, reference, 1.0)
    np.testing.assert_array_equal(prediction, prediction_copy)
    np.testing.assert_array_equal(reference, reference_copy)
    assert torch.equal(tensor, tensor_copy)


def test_dice_and_jaccard_binary_known_values() -> None:
    reference = np.array([[0, 1, 1, 1], [0, 0, 1, 0]])  # |R| = 4
    prediction = np.array([[1, 1, 1, 0], [0, 0, 1, 0]])  # |P| = 4, |P ∩ R| = 3, |P ∪ R| = 5
    assert dice(prediction, reference) == pytest.approx(6 / 8)
    assert jaccard(prediction, reference) == pytest.approx(3 / 5)
    assert dice(prediction.astype(bool), torch.from_numpy(reference).bool()) == pytest.approx(0.75)
    empty = np.zeros((2, 2), dtype=int)
    assert dice(empty, empty) == 1.0 and jaccard(empty, empty) == 1.0
    assert dice(np.ones((2, 2)), empty) == 0.0


def test_dice_and_jaccard_per_label_known_values() -> None:
    reference = np.array([0, 1, 1, 2, 2, 2, 3, 0])
    prediction = np.array([0, 1, 2, 2, 2, 0, 0, 3])
    # label 1: P={1}, R={1,2} → Dice 2/3, Jaccard 1/2
    # label 2: P={2,3,4}, R={3,4,5} → Dice 4/6, Jaccard 2/4
    # label 3: P={7}, R={6} → 0, 0
    result = dice(prediction, reference)
    assert isinstance(result, LabelOverlap)
    assert dict(result.per_label) == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 0.0})
    assert result.mean == pytest.approx(4 / 9)
    overlap = jaccard(prediction, reference)
    assert isinstance(overlap, LabelOverlap)
    assert dict(overlap.per_label) == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})
    assert overlap.mean == pytest.approx(1 / 3)
    assert dice(prediction, reference, label=2) == pytest.approx(2 / 3)
    assert jaccard(prediction, reference, label=1) == pytest.approx(0.5)
    with pytest.raises(InputError, match="integers or booleans"):
        dice(np.array([0.5, 1.0]), np.array([0.0, 1.0]))


@pytest.mark.parametrize("shape", [(3, 4), (13, 200, 7), (2, 9, 30, 17)])
def test_banded_filter_equals_scipy_and_the_tap_sums(shape: tuple[int, ...]) -> None:
    """Without gradients the filter is a banded matrix product; with them, tap sums: both are SciPy's
    ``correlate1d`` with ``'reflect'`` borders along each axis (lines shorter than the window included)."""
    rng = np.random.default_rng(7)
    volume = rng.standard_normal(shape)
    kernel = SSIMOptions().kernel(torch.float64, torch.device("cpu"))
    spatial = min(3, len(shape))
    expected = volume
    for axis in range(len(shape) - spatial, len(shape)):
        expected = ndimage.correlate1d(expected, kernel.numpy(), axis=axis, mode="reflect")
    banded = separable_filter(torch.from_numpy(volume), kernel, spatial)
    with_grad = torch.from_numpy(volume).requires_grad_()
    taps = separable_filter(with_grad, kernel, spatial)
    np.testing.assert_allclose(banded.numpy(), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(taps.detach().numpy(), expected, rtol=0, atol=1e-13)
    taps.sum().backward()
    assert with_grad.grad is not None and with_grad.grad.shape == shape
    matrix = reflect_band_matrix(5, kernel)
    np.testing.assert_allclose(matrix.sum(1).numpy(), 1.0, atol=1e-15)  # every row keeps the mean
    assert BANDED_MAX_LENGTH >= 256


@pytest.mark.parametrize("options", [SSIMOptions(), SSIMOptions(window="uniform", use_sample_covariance=True)])
def test_ssim_without_gradients_is_the_same_formula_to_the_last_bit(options: SSIMOptions, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metrics' in-place evaluation repeats the autograd path's operations in order: with the same filter
    (tap sums for both) the maps are equal bit for bit."""
    ssim_module = importlib.import_module("medrestore.metrics.ssim")
    monkeypatch.setattr(ssim_module, "BANDED_MAX_LENGTH", 0)
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(14, 20, 17, dtype=torch.float64, generator=generator)
    y = x + 0.1 * torch.rand(x.shape, dtype=torch.float64, generator=generator)
    inputs = (x.clone(), y.clone())
    plain = ssim_module.structural_similarity_map(x, y, 1.0, options, 3)
    tracked = ssim_module.structural_similarity_map(x.clone().requires_grad_(), y, 1.0, options, 3)
    assert torch.equal(plain, tracked.detach())
    assert torch.equal(x, inputs[0]) and torch.equal(y, inputs[1])  # the inputs are read, never written
