"""Training losses: values against closed forms and skimage's SSIM, gradients by finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from medrestore.core.errors import InputError
from medrestore.losses import LOSSES, SSIMLoss, build_loss
from medrestore.metrics import SSIMOptions


def _batch(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator, dtype=torch.float64)
    prediction = (target + 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return prediction.to(dtype), target.to(dtype)


def _skimage_mean_ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    """Mean over batch and channels of skimage's Gaussian SSIM (population covariance)."""
    values = [
        structural_similarity(
            target[n, c].double().numpy(), prediction[n, c].double().numpy(), data_range=data_range,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        )
        for n in range(target.shape[0])
        for c in range(target.shape[1])
    ]
    return float(np.mean(values))


def test_loss_names() -> None:
    assert LOSSES == ("mse", "l1", "ssim", "mse+ssim", "l1+ssim")
    for name in LOSSES:
        assert isinstance(build_loss(name), torch.nn.Module)
    with pytest.raises(InputError, match=r"unknown loss 'ssim\+gan'"):
        build_loss("ssim+gan")


def test_pixel_losses_closed_form() -> None:
    target = torch.zeros(1, 1, 2, 2)
    prediction = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert float(build_loss("mse")(prediction, target)) == pytest.approx((1 + 1 + 4) / 4)
    assert float(build_loss("l1")(prediction, target)) == pytest.approx((1 + 1 + 2) / 4)


@pytest.mark.parametrize("shape", [(2, 3, 16, 18), (1, 1, 12, 13, 14)])
def test_ssim_loss_is_one_minus_skimage_ssim(shape: tuple[int, ...]) -> None:
    prediction, target = _batch(shape, seed=len(shape))
    expected = 1.0 - _skimage_mean_ssim(prediction, target, data_range=1.0)
    value = build_loss("ssim")(prediction, target)
    assert value.dtype == torch.float32 and value.ndim == 0
    assert float(value) == pytest.approx(expected, abs=1e-5)  # float32 arithmetic
    value64 = build_loss("ssim")(prediction.double(), target.double())
    assert float(value64) == pytest.approx(expected, abs=1e-10)


def test_combined_losses_add_their_terms() -> None:
    prediction, target = _batch((2, 1, 16, 16), seed=5, dtype=torch.float64)
    structure = 1.0 - _skimage_mean_ssim(prediction, target, data_range=1.0)
    squared = float(torch.mean((prediction - target) ** 2))
    absolute = float(torch.mean(torch.abs(prediction - target)))
    assert float(build_loss("mse+ssim")(prediction, target)) == pytest.approx(squared + structure, abs=1e-10)
    assert float(build_loss("l1+ssim")(prediction, target)) == pytest.approx(absolute + structure, abs=1e-10)


def test_ssim_loss_data_range() -> None:
    prediction, target = _batch((1, 1, 16, 16), seed=2, dtype=torch.float64)
    expected = 1.0 - _skimage_mean_ssim(prediction * 255, target * 255, data_range=255.0)
    value = build_loss("ssim", data_range=255.0)(prediction * 255, target * 255)
    assert float(value) == pytest.approx(expected, abs=1e-10)
    assert float(SSIMLoss()(target, target)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="positive data range"):
        SSIMLoss(data_range=0.0)


def test_ssim_loss_gradient_matches_finite_differences_2d() -> None:
    prediction, target = _batch((1, 1, 12, 12), seed=3, dtype=torch.float64)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: SSIMLoss()(x, target), (prediction,))


def test_ssim_loss_gradient_matches_finite_differences_3d_and_both_inputs() -> None:
    prediction, target = _batch((1, 2, 5, 5, 6), seed=4, dtype=torch.float64)
    prediction.requires_grad_(True)
    target.requires_grad_(True)
    loss = SSIMLoss(options=SSIMOptions(window="uniform", win_size=3, use_sample_covariance=True))
    assert torch.autograd.gradcheck(loss, (prediction, target))


def test_ssim_loss_trains_float32_prediction_towards_target() -> None:
    prediction, target = _batch((1, 1, 16, 16), seed=6)
    parameter = prediction.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([parameter], lr=0.01)
    loss_function = build_loss("mse+ssim")
    with torch.no_grad():
        first = float(loss_function(parameter, target))
    for _ in range(30):
        optimiser.zero_grad()
        loss = loss_function(parameter, target)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        assert float(loss_function(parameter, target)) < 0.5 * first


def test_losses_refuse_bad_batches() -> None:
    with pytest.raises(InputError, match="does not match target shape"):
        build_loss("ssim")(torch.zeros(1, 1, 12, 12), torch.zeros(1, 1, 12, 13))
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        build_loss("l1+ssim")(torch.zeros(12, 12), torch.zeros(12, 12))
