"""Evaluation conventions against their published formulas (fastMRI, OCT peers) and real OCT data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medrestore.core.errors import InputError
from medrestore.metrics import CONVENTION_NAMES, Convention, evaluate, get_convention


def _fastmri_reference(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """fastMRI's fastmri/evaluate.py formulas, written with skimage directly."""
    maxval = gt.max()
    slices = gt if gt.ndim == 3 else gt[None]
    predicted = pred if pred.ndim == 3 else pred[None]
    ssim_sum = sum(
        structural_similarity(slices[s], predicted[s], data_range=maxval) for s in range(slices.shape[0])
    )
    return {
        "nmse": float(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2),
        "psnr": float(peak_signal_noise_ratio(gt, pred, data_range=maxval)),
        "ssim": float(ssim_sum / slices.shape[0]),
    }


def _volume_pair(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = np.abs(rng.standard_normal(shape)) * 1e-4  # magnitudes on fastMRI's scale
    pred = np.abs(gt + 3e-5 * rng.standard_normal(shape))
    return gt, pred


@pytest.mark.parametrize("shape", [(4, 32, 30), (3, 17, 23), (40, 41)])
def test_fastmri_convention_matches_fastmri_formulas(shape: tuple[int, ...]) -> None:
    gt, pred = _volume_pair(shape, seed=len(shape) + shape[-1])
    expected = _fastmri_reference(gt, pred)
    result = evaluate(pred, gt, convention="fastmri")
    assert list(result) == ["nmse", "psnr", "ssim"]
    for name, value in expected.items():
        assert abs(result[name] - value) < 1e-6, name


def test_fastmri_convention_with_float32_tensors() -> None:
    gt, pred = _volume_pair((2, 24, 26), seed=3)
    gt32, pred32 = gt.astype(np.float32), pred.astype(np.float32)
    expected = _fastmri_reference(gt32.astype(np.float64), pred32.astype(np.float64))
    result = evaluate(torch.from_numpy(pred32), torch.from_numpy(gt32), convention="fastmri")
    for name, value in expected.items():
        assert abs(result[name] - value) < 1e-6, name


def test_oct_convention_crops_to_even_and_uses_255_gaussian_ssim() -> None:
    rng = np.random.default_rng(12)
    reference = rng.integers(0, 256, size=(45, 61), dtype=np.uint8)
    prediction = np.clip(reference + rng.normal(0, 25, reference.shape), 0, 255).astype(np.uint8)
    cropped_reference, cropped_prediction = reference[:44, :60], prediction[:44, :60]
    expected_psnr = peak_signal_noise_ratio(cropped_reference, cropped_prediction, data_range=255)
    expected_ssim = structural_similarity(
        cropped_reference, cropped_prediction, data_range=255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, K1=0.01, K2=0.03,
    )
    result = evaluate(prediction, reference, convention="oct")
    assert list(result) == ["psnr", "ssim"]
    assert abs(result["psnr"] - expected_psnr) < 1e-6
    assert abs(result["ssim"] - expected_ssim) < 1e-6
    uncropped = peak_signal_noise_ratio(reference, prediction, data_range=255)
    assert abs(uncropped - expected_psnr) > 1e-6  # the crop really changes the number


def test_default_convention_2d_and_3d_match_skimage() -> None:
    rng = np.random.default_rng(5)
    image = rng.random((30, 28)) * 3.0 - 1.0
    noisy = image + 0.2 * rng.standard_normal(image.shape)
    span = float(image.max() - image.min())
    result = evaluate(noisy, image)
    assert list(result) == ["psnr", "ssim", "nmse", "mae"]
    assert abs(result["psnr"] - peak_signal_noise_ratio(image, noisy, data_range=span)) < 1e-6
    expected_ssim = structural_similarity(
        image, noisy, data_range=span, gaussian_weights=True, use_sample_covariance=False
    )
    assert abs(result["ssim"] - expected_ssim) < 1e-6
    assert result["nmse"] == pytest.approx(np.sum((image - noisy) ** 2) / np.sum(image**2), rel=1e-12)
    assert result["mae"] == pytest.approx(np.mean(np.abs(image - noisy)), rel=1e-12)

    volume = rng.random((12, 14, 13))
    noisy_volume = volume + 0.2 * rng.standard_normal(volume.shape)
    span = float(volume.max() - volume.min())
    expected_3d = structural_similarity(
        volume, noisy_volume, data_range=span, gaussian_weights=True, use_sample_covariance=False
    )
    assert abs(evaluate(noisy_volume, volume)["ssim"] - expected_3d) < 1e-6


def test_default_convention_thin_volume_falls_back_to_slices() -> None:
    rng = np.random.default_rng(6)
    volume = rng.random((4, 20, 21))  # 4 slices: too thin for an 11-voxel 3-D window
    noisy = volume + 0.1 * rng.standard_normal(volume.shape)
    span = float(volume.max() - volume.min())
    per_slice = [
        structural_similarity(volume[s], noisy[s], data_range=span, gaussian_weights=True, use_sample_covariance=False)
        for s in range(4)
    ]
    assert abs(evaluate(noisy, volume)["ssim"] - float(np.mean(per_slice))) < 1e-6
    thick = rng.random((12, 20, 21))
    thick_noisy = thick + 0.1 * rng.standard_normal(thick.shape)
    as_slices = evaluate(thick_noisy, thick, spatial_ndim=2)["ssim"]
    assert abs(as_slices - evaluate(thick_noisy, thick, spatial_ndim=3)["ssim"]) > 1e-3
    assert evaluate(thick_noisy, thick)["ssim"] == evaluate(thick_noisy, thick, spatial_ndim=3)["ssim"]


def test_masked_convention_uses_masked_errors_and_whole_reference_range() -> None:
    gt, pred = _volume_pair((2, 20, 20), seed=8)
    mask = np.zeros(gt.shape, dtype=bool)
    mask[:, 6:14, 4:18] = True
    result = evaluate(pred, gt, convention="fastmri", mask=mask)
    masked_mse = np.mean((gt[mask] - pred[mask]) ** 2)
    assert result["psnr"] == pytest.approx(10 * np.log10(gt.max() ** 2 / masked_mse), abs=1e-9)
    assert result["nmse"] == pytest.approx(np.sum((gt[mask] - pred[mask]) ** 2) / np.sum(gt[mask] ** 2), rel=1e-12)
    maps = [structural_similarity(gt[s], pred[s], data_range=gt.max(), full=True)[1] for s in range(2)]
    interior = np.zeros_like(mask)
    interior[:, 3:-3, 3:-3] = True  # 7x7 window: 3 voxels cropped per border
    assert result["ssim"] == pytest.approx(float(np.stack(maps)[mask & interior].mean()), abs=1e-12)


def test_conventions_are_documented_and_errors_are_clear() -> None:
    assert CONVENTION_NAMES == ("default", "fastmri", "oct")
    for name in CONVENTION_NAMES:
        convention = get_convention(name)
        assert isinstance(convention, Convention) and convention.formula and convention.source
    with pytest.raises(InputError, match="unknown evaluation convention 'brats'"):
        get_convention("brats")
    with pytest.raises(InputError, match="data range 0"):
        evaluate(np.ones((12, 12)), np.ones((12, 12)))
    with pytest.raises(InputError, match="does not match reference shape"):
        evaluate(np.ones((12, 12)), np.ones((12, 14)), convention="oct")


def test_custom_convention_from_a_published_one() -> None:
    rng = np.random.default_rng(13)
    reference = rng.integers(0, 256, size=(25, 27)).astype(np.float64)
    prediction = np.clip(reference + rng.normal(0, 20, reference.shape), 0, 255)
    uncropped = dataclasses.replace(get_convention("oct"), name="oct-uncropped", crop_to_even=False)
    result = evaluate(prediction, reference, convention=uncropped)
    assert abs(result["psnr"] - peak_signal_noise_ratio(reference, prediction, data_range=255)) < 1e-6
    with pytest.raises(InputError, match="give fixed_data_range exactly when the rule is 'fixed'"):
        dataclasses.replace(uncropped, fixed_data_range=None)
    with pytest.raises(InputError, match="not among"):
        dataclasses.replace(uncropped, metrics=("psnr", "lpips"))


@pytest.mark.shared_data
def test_oct_duke_subject_1_noisy_input_scores_published_level(shared_data: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    subject = shared_data / "oct-duke-bioptigen" / "1"
    if not subject.is_dir():
        pytest.skip(f"{subject} is not present")
    noisy = tifffile.imread(subject / "test.tif")
    average = tifffile.imread(subject / "average.tif")
    result = evaluate(noisy, average, convention="oct")
    assert result["psnr"] == pytest.approx(17.78, abs=0.01)
    assert result["ssim"] == pytest.approx(0.083, abs=0.001)
    expected_ssim = structural_similarity(
        average[:450, :900], noisy[:450, :900], data_range=255, gaussian_weights=True, use_sample_covariance=False
    )
    assert abs(result["ssim"] - expected_ssim) < 1e-6


@pytest.mark.parametrize("thin_axis", [0, 2])
def test_a_volume_thinner_than_the_window_is_scored_in_slices_across_its_thin_side(thin_axis: int) -> None:
    """A 40 × 36 × 6 stack (e.g. a few thick slices, in either axis order): SSIM is the mean of skimage's Gaussian
    SSIM of its 40 × 36 slices (the volume's data range), not of 36 × 6 planes across the slices, which do not even
    hold the window; where 3-D SSIM fits, nothing changes."""
    generator = np.random.default_rng(3)
    reference = generator.random((40, 36, 6))
    prediction = reference + 0.1 * generator.standard_normal(reference.shape)
    reference, prediction = np.moveaxis(reference, 2, thin_axis), np.moveaxis(prediction, 2, thin_axis)
    span = float(reference.max() - reference.min())
    expected = np.mean([
        structural_similarity(np.take(reference, k, axis=thin_axis), np.take(prediction, k, axis=thin_axis), data_range=span,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for k in range(6)
    ])
    assert evaluate(prediction, reference)["ssim"] == pytest.approx(expected, abs=1e-9)
    cube = generator.random((12, 12, 12))
    assert evaluate(cube * 0.9, cube)["ssim"] == pytest.approx(
        structural_similarity(cube, cube * 0.9, data_range=float(cube.max() - cube.min()), gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False), abs=1e-9)
