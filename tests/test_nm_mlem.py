"""ML-EM super-resolution: exact adjoint, count preservation, monotone likelihood, recovery of a known object."""

from __future__ import annotations

import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.physics.blur import gaussian_blur, upsample
from medrestore.physics.gamma_camera import bin_counts
from medrestore.solvers import mlem
from medrestore.solvers.mlem import binned_blur, binned_blur_adjoint, gaussian_blur_adjoint, mlem_super_resolution

torch.set_num_threads(1)


@pytest.mark.parametrize("product", [False, True], ids=["conv1d", "matrix-product"])
@pytest.mark.parametrize(
    ("fwhm", "scale", "shape"), [(0.0, 4, (9, 7)), (2.5, 4, (10, 12)), (9.0, 2, (13, 6)), (40.0, 4, (5, 5)), (26.0, 4, (70, 33))]
)
def test_forward_and_adjoint_agree(fwhm: float, scale: int, shape: tuple[int, int], product: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``A x`` is the binned blur of the camera model, and |⟨Ax, r⟩ − ⟨x, Aᵀr⟩| ≤ 1e-12 ‖Ax‖‖r‖, widths wider than the
    image included (reflections fold back); the forward pass as a strided ``conv1d`` and, for large arrays, as a
    matrix product of overlapping windows (forced here on small ones), several windows per row included."""
    if product:
        monkeypatch.setattr(mlem, "GEMM_MIN_ELEMENTS", 0)
    generator = make_generator(0)
    x = torch.rand(shape[0] * scale, shape[1] * scale, dtype=torch.float64, generator=generator)
    r = torch.rand(*shape, dtype=torch.float64, generator=generator)
    forward, transpose = binned_blur(fwhm, scale), binned_blur_adjoint(fwhm, scale)
    torch.testing.assert_close(forward(x), bin_counts(gaussian_blur(x, fwhm=fwhm), scale), rtol=1e-12, atol=1e-12)
    left, right = float((forward(x) * r).sum()), float((x * transpose(r)).sum())
    assert abs(left - right) <= 1e-12 * float(forward(x).norm() * r.norm())
    blurred = torch.rand(*shape, dtype=torch.float64, generator=generator)
    assert float((gaussian_blur(x[: shape[0], : shape[1]], fwhm=fwhm + 1) * blurred).sum()) == pytest.approx(
        float((x[: shape[0], : shape[1]] * gaussian_blur_adjoint(blurred, fwhm + 1)).sum()), rel=1e-12
    )


def test_mlem_keeps_the_counts_and_raises_the_likelihood() -> None:
    generator = make_generator(1)
    counts = torch.poisson(50.0 * torch.rand(24, 20, dtype=torch.float64, generator=generator) + 5.0, generator=generator)
    estimate, info = mlem_super_resolution(counts, fwhm=4.0, scale=4, iterations=15, track_likelihood=True)
    assert estimate.shape == (96, 80) and estimate.dtype == torch.float64 and float(estimate.min()) >= 0
    assert float(binned_blur(4.0, 4)(estimate).sum()) == pytest.approx(float(counts.sum()), rel=1e-10)
    likelihood = info.log_likelihood
    assert info.iterations == 15 and len(likelihood) == 15
    assert all(later >= earlier - 1e-6 * abs(earlier) for earlier, later in zip(likelihood, likelihood[1:]))
    start, _ = mlem_super_resolution(counts, fwhm=4.0, scale=4, iterations=0)
    bicubic = upsample(counts / 16, 4, "bicubic").clamp(min=0)
    assert torch.allclose(start, bicubic * (counts.sum() / bicubic.sum()), rtol=1e-4, atol=1e-3)


def test_mlem_recovers_noise_free_detail_that_bicubic_misses() -> None:
    """Two 5 × 5 hot squares 3 fine pixels apart, FWHM 4, ×4 binning: ML-EM restores the contrast, bicubic cannot."""
    truth = torch.full((64, 64), 1.0, dtype=torch.float64)
    truth[28:33, 26:31] += 50.0
    truth[28:33, 34:39] += 50.0
    counts = bin_counts(gaussian_blur(truth, fwhm=4.0), 4)  # noise-free expected counts
    estimate, _ = mlem_super_resolution(counts, fwhm=4.0, scale=4, iterations=50)
    bicubic = upsample(counts / 16, 4, "bicubic")
    error_mlem = float((estimate - truth).norm() / truth.norm())
    error_bicubic = float((bicubic - truth).norm() / truth.norm())
    assert error_mlem < 0.8 * error_bicubic  # measured 0.51 vs 0.66
    dips = []
    for image in (estimate, bicubic):
        row = image[30]
        gap, peaks = float(row[32:34].mean()), min(float(row[26:31].max()), float(row[34:39].max()))
        dips.append(gap / peaks)
    assert dips[0] < 0.5 and dips[1] > 0.8  # ML-EM separates the squares (measured 0.37), bicubic barely (0.87)


def test_mlem_refuses_bad_input() -> None:
    with pytest.raises(InputError, match="non-negative"):
        mlem_super_resolution(-torch.ones(4, 4), 2.0, 4, 3)
    with pytest.raises(ConfigError, match="iterations"):
        mlem_super_resolution(torch.ones(4, 4), 2.0, 4, -1)
    zeros, info = mlem_super_resolution(torch.zeros(4, 4), 2.0, 2, 5)
    assert zeros.shape == (8, 8) and float(zeros.abs().sum()) == 0.0 and info.iterations == 0
