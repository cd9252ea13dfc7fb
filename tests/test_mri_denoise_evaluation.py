"""Evaluation tools: Gaussian-mixture tissue classes with Jaccard, and the repeated-acquisition protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medrestore.data.mri_phantom import TISSUE_INTENSITIES, brain_phantom
from medrestore.metrics.repeated import leave_one_out_reference, repeated_acquisition_scores
from medrestore.metrics.tissue import fit_gaussian_mixture, gaussian_mixture_segmentation, tissue_jaccard
from medrestore.models.fast_nlm import fast_non_local_means
from medrestore.physics.noise import add_gaussian_noise, add_rician_noise


def test_mixture_recovers_known_components() -> None:
    generator = np.random.default_rng(0)
    values = np.concatenate([generator.normal(0.3, 0.05, 3000), generator.normal(0.65, 0.04, 5000), generator.normal(1.0, 0.05, 4000)])
    fit = fit_gaussian_mixture(values)
    assert np.allclose(fit.means, [0.3, 0.65, 1.0], atol=0.01)
    assert np.allclose(fit.stds, [0.05, 0.04, 0.05], atol=0.005)
    assert np.allclose(fit.weights, [0.25, 5 / 12, 1 / 3], atol=0.02)


def test_segmentation_jaccard_before_and_after_denoising() -> None:
    clean, labels = brain_phantom((40, 40, 40), seed=4)
    mask = labels > 0
    clean_labels, fit = gaussian_mixture_segmentation(clean, mask)
    assert np.allclose(fit.means, [TISSUE_INTENSITIES[k] for k in (1, 2, 3)], atol=0.08)
    truth = tissue_jaccard(clean, labels, mask)
    assert truth["mean"] > 0.95  # the mixture finds the phantom's tissues
    noisy = add_rician_noise(torch.from_numpy(clean), 0.15, torch.Generator().manual_seed(0))
    denoised = fast_non_local_means(noisy, 0.15, 1, 2, 1.0)
    before = tissue_jaccard(noisy, clean_labels, mask)
    after = tissue_jaccard(denoised, clean_labels, mask)
    assert before["mean"] < 0.7
    assert after["mean"] > before["mean"] + 0.04
    assert set(after) == {"1", "2", "3", "mean"}


def test_repeated_acquisition_protocol() -> None:
    clean = torch.from_numpy(brain_phantom((32, 32, 32), seed=5)[0]).double()
    sigma, count = 0.05, 5
    repetitions = [add_gaussian_noise(clean, sigma, torch.Generator().manual_seed(seed)) for seed in range(count)]
    reference = leave_one_out_reference(repetitions, 0)
    assert torch.allclose(reference, torch.stack(repetitions[1:]).mean(0))
    noisy_scores = repeated_acquisition_scores(repetitions[0], repetitions, 0)
    # E[(y_0 − ȳ_{−0})²] = σ² (1 + 1/(R − 1)) for independent Gaussian noise
    assert noisy_scores["mse"] == pytest.approx(sigma**2 * (1 + 1 / (count - 1)), rel=0.03)
    denoised = fast_non_local_means(repetitions[0], sigma, 1, 2, 1.0, rician=False)
    denoised_scores = repeated_acquisition_scores(denoised, repetitions, 0)
    assert denoised_scores["psnr"] > noisy_scores["psnr"] + 2
    assert denoised_scores["ssim"] > noisy_scores["ssim"]
