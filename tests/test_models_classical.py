"""Classical denoising methods against direct scipy/skimage calls and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import skimage.restoration
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.models import METHODS, create_method, method_options, run_method

torch.set_num_threads(1)


def noisy_batch(shape: tuple[int, ...], sigma: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth clean batch (N, C, *spatial) in [0, 1] and a Gaussian-noisy copy (float32)."""
    axes = torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape[2:]], indexing="ij")
    clean = 0.5 + 0.4 * torch.sin(3 * sum(axes)) * torch.cos(2 * axes[0])
    clean = clean.expand(shape).contiguous()
    noise = sigma * torch.randn(shape, generator=make_generator(seed))
    return clean, clean + noise


def test_registry_of_methods() -> None:
    assert METHODS.names() == ["median", "gaussian-filter", "nlm", "fast-nlm"]
    for entry in METHODS:
        assert entry.task == "denoise" and entry.modality in ("any", "mri")
    assert method_options("median") == {"size": 3}
    assert method_options("gaussian-filter") == {"sigma": 1.0}


@pytest.mark.parametrize("spatial_shape", [(23, 31), (7, 9, 11)])
def test_median_matches_scipy_per_image(spatial_shape: tuple[int, ...]) -> None:
    _, noisy = noisy_batch((2, 3, *spatial_shape))
    original = noisy.clone()
    output = create_method("median", {"size": 5})(noisy)
    assert output.shape == noisy.shape and output.dtype == torch.float32
    assert torch.equal(noisy, original)
    for n in range(2):
        for c in range(3):
            expected = scipy.ndimage.median_filter(noisy[n, c].double().numpy(), size=5, mode="reflect")
            np.testing.assert_allclose(output[n, c].numpy(), expected, rtol=0, atol=1e-7)


def test_median_removes_an_isolated_spike() -> None:
    image = torch.full((1, 1, 9, 9), 2.0)
    image[0, 0, 4, 4] = 100.0
    assert torch.equal(run_method("median", image, {"size": 3}), torch.full((1, 1, 9, 9), 2.0))


def test_gaussian_matches_scipy_per_image() -> None:
    _, noisy = noisy_batch((2, 1, 25, 19))
    output = create_method("gaussian-filter", {"sigma": 1.5})(noisy)
    for n in range(2):
        expected = scipy.ndimage.gaussian_filter(noisy[n, 0].double().numpy(), sigma=1.5, mode="reflect")
        np.testing.assert_allclose(output[n, 0].numpy(), expected, rtol=0, atol=1e-6)


def test_gaussian_impulse_response_is_the_sampled_normalised_gaussian() -> None:
    sigma = 1.25
    radius = int(4 * sigma + 0.5)  # scipy truncates at truncate·σ, rounded
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    image = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    image[0, 0, 10, 10] = 1.0
    output = run_method("gaussian-filter", image, {"sigma": sigma})[0, 0].numpy()
    expected = np.zeros((21, 21))
    expected[10 - radius : 11 + radius, 10 - radius : 11 + radius] = np.outer(kernel, kernel)
    np.testing.assert_allclose(output, expected, rtol=0, atol=1e-12)
    assert output.sum() == pytest.approx(1.0, abs=1e-12)


def test_gaussian_3d_impulse_response_is_separable_and_per_image() -> None:
    image = torch.zeros(2, 1, 9, 9, 9, dtype=torch.float64)
    image[1, 0, 4, 4, 4] = 1.0
    output = run_method("gaussian-filter", image, {"sigma": 1.0})
    assert torch.equal(output[0], torch.zeros_like(output[0]))  # no mixing across the batch axis
    kernel = np.exp(-(np.arange(-4, 5) ** 2) / 2.0)
    kernel /= kernel.sum()  # σ = 1, truncated at 4σ: exactly the 9 samples of the volume
    np.testing.assert_allclose(output[1, 0].numpy(), np.einsum("i,j,k->ijk", kernel, kernel, kernel), rtol=0, atol=1e-12)


def test_nlm_matches_skimage_with_estimated_sigma() -> None:
    clean, noisy = noisy_batch((1, 2, 32, 40), sigma=0.08)
    output = create_method("nlm")(noisy)
    for c in range(2):
        array = noisy[0, c].double().numpy()
        sigma = float(np.mean(skimage.restoration.estimate_sigma(array, channel_axis=None)))
        expected = skimage.restoration.denoise_nl_means(
            array, patch_size=5, patch_distance=6, h=0.8 * sigma, fast_mode=True, sigma=sigma, channel_axis=None
        )
        np.testing.assert_allclose(output[0, c].numpy(), expected, rtol=0, atol=1e-6)
    noisy_error = float(((noisy - clean) ** 2).mean())
    denoised_error = float(((output - clean) ** 2).mean())
    assert denoised_error < 0.5 * noisy_error


def test_nlm_with_given_sigma_on_a_camera_image() -> None:
    camera = skimage.data.camera()[::8, ::8].astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    noisy = camera + 0.05 * rng.standard_normal(camera.shape)
    output = run_method("nlm", torch.from_numpy(noisy)[None, None], {"sigma": 0.05, "h_factor": 1.0})
    expected = skimage.restoration.denoise_nl_means(
        noisy, patch_size=5, patch_distance=6, h=0.05, fast_mode=True, sigma=0.05, channel_axis=None
    )
    np.testing.assert_allclose(output[0, 0].numpy(), expected, rtol=0, atol=1e-12)


def test_nlm_leaves_a_constant_image_unchanged() -> None:
    image = torch.full((1, 1, 16, 16), 0.25)
    assert torch.equal(run_method("nlm", image), image)


@pytest.mark.parametrize("name", ["median", "gaussian-filter", "nlm", "fast-nlm"])
def test_bad_input_is_refused(name: str) -> None:
    method = create_method(name)
    with pytest.raises(InputError, match="2 or 3 spatial axes"):
        method(torch.zeros(8, 8))
    with pytest.raises(InputError, match="real floating-point"):
        method(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))


def test_method_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="size must be at least 1"):
        create_method("median", {"size": 0})
    with pytest.raises(ConfigError, match="valid options: sigma"):
        create_method("gaussian-filter", {"radius": 2})
    with pytest.raises(ConfigError, match="sigma"):
        create_method("gaussian-filter", {"sigma": "wide"})
    assert create_method("gaussian-filter", {"sigma": 2}).config.sigma == 2.0  # int accepted for float
    assert create_method("nlm", {"sigma": None}).config.sigma is None
