"""Solvers against closed forms: CG vs a direct solve, FISTA-L1 vs soft thresholding, TV prox on a step."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from medrestore.physics.mri import FFTOperator, Multiply, cartesian_sense
from medrestore.solvers import (
    WaveletOptions,
    WaveletTransform,
    cg_sense,
    conjugate_gradient,
    fista,
    l1_wavelet_objective,
    l1_wavelet_reconstruction,
    soft_threshold,
    total_variation,
    tv_objective,
    tv_primal_dual,
    tv_proximal,
    tv_reconstruction,
)
from medrestore.solvers import wavelet as wavelet_module
from medrestore.solvers.proximal import project_group_ball
from test_mri_operators import _coil_maps, _line_mask


def _problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps, mask and k-space of a piecewise-constant 16×16 image."""
    image = torch.zeros(16, 16, dtype=torch.complex64)
    image[4:12, 5:11] = 1.0
    image[6:9, 7:9] = 2.0 + 0.5j
    maps, mask = _coil_maps(4, (16, 16), seed), _line_mask((16, 16))
    noise = 0.01 * torch.randn(4, 16, 16, dtype=torch.complex64, generator=torch.Generator().manual_seed(seed))
    return maps, mask, cartesian_sense(maps, mask).forward(image) + noise * mask


def test_cg_matches_direct_solve() -> None:
    """CG on (AᴴA + λI) x = Aᴴy equals the dense solve of the same system."""
    maps, mask, kspace = _problem()
    operator = cartesian_sense(maps, mask)
    lam = 0.05
    x, info = cg_sense(operator, kspace, lam, iterations=200, tolerance=1e-7)
    basis = torch.eye(256, dtype=torch.complex64).reshape(256, 16, 16)
    matrix = torch.stack([operator.forward(b).reshape(-1) for b in basis], dim=1).to(torch.complex128)
    normal = matrix.conj().T @ matrix + lam * torch.eye(256, dtype=torch.complex128)
    direct = torch.linalg.solve(normal, matrix.conj().T @ kspace.reshape(-1).to(torch.complex128))
    assert info.converged and info.iterations < 200
    np.testing.assert_allclose(x.reshape(-1).numpy(), direct.numpy(), atol=2e-4)


def test_conjugate_gradient_real_spd() -> None:
    generator = torch.Generator().manual_seed(0)
    factor = torch.randn(20, 20, generator=generator, dtype=torch.float64)
    matrix = factor @ factor.T + 20 * torch.eye(20, dtype=torch.float64)
    rhs = torch.randn(20, generator=generator, dtype=torch.float64)
    x, info = conjugate_gradient(lambda v: matrix @ v, rhs, max_iterations=50, tolerance=1e-12)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(matrix.numpy(), rhs.numpy()), rtol=1e-9, atol=1e-12)
    assert info.converged and len(info.residuals) == info.iterations


def test_fista_identity_l1_is_soft_threshold() -> None:
    """min ½‖x − y‖² + λ‖x‖₁ is solved in one FISTA step: x = soft(y, λ)."""
    y = torch.randn(50, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    x, info = fista(lambda v: v - y, lambda v, alpha: soft_threshold(v, alpha * 0.7), torch.zeros_like(y), 1.0, 5)
    expected = y * torch.clamp(1 - 0.7 / y.abs(), min=0)
    torch.testing.assert_close(x, expected)
    assert info.iterations == 5 and info.step == 1.0


def test_l1_wavelet_with_unitary_operator_is_closed_form() -> None:
    """A = F (unitary), W orthonormal: argmin ½‖Fx − y‖² + λ‖Wx‖₁ = Wᴴ soft(W Fᴴy, λ)."""
    y = torch.randn(32, 32, dtype=torch.complex64, generator=torch.Generator().manual_seed(4))
    options = WaveletOptions("db2", levels=3, mode="periodization")
    x, _ = l1_wavelet_reconstruction(FFTOperator((32, 32)), y, 0.3, iterations=5, wavelet=options)
    transform = options.transform((32, 32))
    expected = transform.adjoint(soft_threshold(transform.forward(torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(y), norm="ortho"))), 0.3))
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)


def test_l1_wavelet_random_shifts_threshold_a_shifted_image() -> None:
    """Cycle spinning: one FISTA step from zero on A = F is roll⁻¹(Wᴴ soft(W roll(Fᴴy))) with the seeded offsets."""
    y = torch.randn(32, 32, dtype=torch.complex64, generator=torch.Generator().manual_seed(5))
    options = WaveletOptions("db2", levels=3, mode="periodization", random_shifts=True, seed=3)
    x, _ = l1_wavelet_reconstruction(FFTOperator((32, 32)), y, 0.3, iterations=1, wavelet=options)
    shifts = tuple(int(v) for v in torch.randint(2**3, (2,), generator=torch.Generator().manual_seed(3)))
    assert shifts != (0, 0)
    transform = options.transform((32, 32))
    image = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(y), norm="ortho"))
    expected = torch.roll(transform.adjoint(soft_threshold(transform.forward(torch.roll(image, shifts, (-2, -1))), 0.3)),
                          tuple(-v for v in shifts), (-2, -1))
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)
    unshifted, _ = l1_wavelet_reconstruction(FFTOperator((32, 32)), y, 0.3, 1, WaveletOptions("db2", 3, "periodization"))
    assert float((unshifted - x).abs().max()) > 1e-3  # the offsets matter for λ > 0 ...
    maps, mask, kspace = _problem(1)  # ... and not at all for λ = 0 (WᴴW = I in zero mode too)
    plain, _ = l1_wavelet_reconstruction(cartesian_sense(maps, mask), kspace, 0.0, 10)
    spun, _ = l1_wavelet_reconstruction(cartesian_sense(maps, mask), kspace, 0.0, 10, WaveletOptions(random_shifts=True))
    torch.testing.assert_close(spun, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("matrix_max_size", [0, 128, 10_000])
@pytest.mark.parametrize(
    ("mode", "shape"), [("zero", (40, 33)), ("periodization", (40, 32)), ("zero", (150, 133)), ("zero", (18, 20, 9))]
)
def test_wavelet_matches_pywavelets(monkeypatch, matrix_max_size: int, mode: str, shape: tuple[int, ...]) -> None:
    """Coefficients equal ``pywt.wavedecn`` with every level as convolutions (0), mixed (128) or as matrices."""
    monkeypatch.setattr(wavelet_module, "MATRIX_MAX_SIZE", matrix_max_size)
    values = np.random.default_rng(0).standard_normal(shape)
    transform = WaveletTransform(shape, "db4" if len(shape) == 2 else "db2", mode=mode)
    reference = pywt.wavedecn(values, transform.wavelet, mode=mode, level=transform.levels)
    flat = np.concatenate([reference[0].ravel()] + [np.stack([d[k] for k in sorted(d)]).ravel() for d in reference[1:]])
    coefficients = transform.forward(torch.from_numpy(values))
    np.testing.assert_allclose(coefficients.numpy(), flat, atol=1e-10)
    # The adjoint inverts it (W is an isometry in both modes) and matches <Wx, y> = <x, Wᴴy>.
    np.testing.assert_allclose(transform.adjoint(coefficients).numpy(), values, atol=1e-10)
    other = torch.from_numpy(np.random.default_rng(1).standard_normal(coefficients.shape))
    assert abs(float((coefficients * other).sum() - (torch.from_numpy(values) * transform.adjoint(other)).sum())) < 1e-9


def test_tv_prox_on_a_step_matches_closed_form() -> None:
    """1-D circular step (plateaus a over n₁, b over n₂): prox_{wTV} moves them by 2w/n₁ and 2w/n₂."""
    n1, n2, a, b, weight = 12, 20, 0.0, 3.0, 0.9
    signal = torch.tensor([a] * n1 + [b] * n2, dtype=torch.float64)
    x, _ = tv_proximal(signal, weight, iterations=3000, isotropic=False)
    expected = torch.tensor([a + 2 * weight / n1] * n1 + [b - 2 * weight / n2] * n2, dtype=torch.float64)
    torch.testing.assert_close(x, expected, atol=1e-6, rtol=0)


def test_tv_prox_isotropic_is_optimal() -> None:
    """Isotropic prox on a 2-D image: the objective is below that of perturbed solutions (optimality)."""
    image = torch.randn(12, 12, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    weight = 0.2
    x, _ = tv_proximal(image, weight, iterations=500)

    def objective(v: torch.Tensor) -> float:
        return 0.5 * float((v - image).abs().square().sum()) + weight * total_variation(v, isotropic=True)

    best = objective(x)
    generator = torch.Generator().manual_seed(2)
    for _ in range(20):
        perturbed = x + 1e-2 * torch.randn(12, 12, dtype=torch.complex64, generator=generator)
        assert objective(perturbed) >= best - 1e-6
    assert best < objective(image)
    assert torch.allclose(project_group_ball(torch.ones(2, 3), 1.0, 0).square().sum(0), torch.ones(3))


@pytest.mark.parametrize("isotropic", [True, False])
def test_tv_fista_and_primal_dual_agree(isotropic: bool) -> None:
    """Both TV algorithms converge to the same minimum (objective within 0.5 %)."""
    maps, mask, kspace = _problem(1)
    operator = cartesian_sense(maps, mask)
    lam = 0.02
    fast, info = tv_reconstruction(operator, kspace, lam, 300, isotropic, track_objective=True, inner_iterations=20)
    slow, _ = tv_primal_dual(operator, kspace, lam, 3000, isotropic)
    objective = tv_objective(operator, kspace, lam, isotropic)
    assert abs(objective(fast) - objective(slow)) <= 5e-3 * objective(slow)
    values = np.array(info.objective)
    assert values[-1] <= values[0] and values[-1] <= values[10:].min() + 1e-6


def test_l1_wavelet_objective_decreases_and_beats_zero_filled() -> None:
    maps, mask, kspace = _problem(2)
    operator = cartesian_sense(maps, mask)
    x, info = l1_wavelet_reconstruction(operator, kspace, 0.01, 60, WaveletOptions("haar"), track_objective=True)
    objective = l1_wavelet_objective(operator, WaveletOptions("haar").transform((16, 16)), kspace, 0.01)
    assert info.objective[-1] < info.objective[0]
    assert objective(x) < objective(operator.adjoint(kspace))


def test_weighted_multiply_solver_input_unchanged() -> None:
    """Solvers do not modify their inputs."""
    maps, mask, kspace = _problem(3)
    before = kspace.clone()
    tv_reconstruction(cartesian_sense(maps, mask), kspace, 0.01, 5)
    l1_wavelet_reconstruction(cartesian_sense(maps, mask), kspace, 0.01, 5)
    assert torch.equal(kspace, before)
    assert Multiply((2,), torch.ones(2)).squared_norm_bound() == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_solvers_on_gpu_match_cpu() -> None:
    maps, mask, kspace = _problem(4)
    cpu, _ = tv_reconstruction(cartesian_sense(maps, mask), kspace, 0.01, 20)
    gpu, _ = tv_reconstruction(cartesian_sense(maps.cuda(), mask.cuda()), kspace.cuda(), 0.01, 20)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
    cpu_w, _ = l1_wavelet_reconstruction(cartesian_sense(maps, mask), kspace, 0.01, 20)
    gpu_w, _ = l1_wavelet_reconstruction(cartesian_sense(maps.cuda(), mask.cuda()), kspace.cuda(), 0.01, 20)
    torch.testing.assert_close(gpu_w.cpu(), cpu_w, atol=1e-4, rtol=1e-4)


def test_objectives_match_sigpy() -> None:
    """Same λ and iterations as sigpy's L1WaveletRecon / TotalVariationRecon: same objective (±1 %)."""
    sigpy_mri = pytest.importorskip("sigpy.mri", reason="sigpy (optional benchmark dependency) is not installed")
    maps, mask, kspace = _problem(5)
    operator = cartesian_sense(maps, mask)
    weights = torch.broadcast_to(mask, (16, 16)).float().numpy()
    lam = 0.01
    np.random.seed(0)  # sigpy's power iteration starts from NumPy's global generator
    ours, _ = l1_wavelet_reconstruction(operator, kspace, lam, 40)
    theirs = sigpy_mri.app.L1WaveletRecon(kspace.numpy(), maps.numpy(), lam, weights=weights, max_iter=40, show_pbar=False).run()
    objective = l1_wavelet_objective(operator, WaveletOptions().transform((16, 16)), kspace, lam)
    assert abs(objective(ours) - objective(torch.from_numpy(theirs).to(torch.complex64))) <= 1e-2 * objective(ours)
    ours_tv, _ = tv_primal_dual(operator, kspace, lam, 40, isotropic=False)
    theirs_tv = sigpy_mri.app.TotalVariationRecon(kspace.numpy(), maps.numpy(), lam, weights=weights, max_iter=40, show_pbar=False).run()
    tv = tv_objective(operator, kspace, lam, isotropic=False)
    assert abs(tv(ours_tv) - tv(torch.from_numpy(theirs_tv).to(torch.complex64))) <= 1e-2 * tv(ours_tv)


def test_kspace_noise_std_recovers_the_noise_of_the_periphery() -> None:
    from medrestore.core.fft import fftc
    from medrestore.physics.mri.kspace_noise import kspace_noise_std

    generator = torch.Generator().manual_seed(2)
    yy, xx = torch.meshgrid(torch.arange(64.0) - 32, torch.arange(64.0) - 32, indexing="ij")
    image = ((yy / 20) ** 2 + (xx / 14) ** 2 <= 1).to(torch.complex64)
    image = torch.nn.functional.avg_pool2d(image.real[None, None], 5, 1, 2)[0, 0].to(torch.complex64)  # a smooth object
    clean = fftc(torch.stack([image, 0.5j * image, 0.8 * image]), 2)
    sigma = 0.02
    noise = torch.complex(torch.randn(clean.shape, generator=generator), torch.randn(clean.shape, generator=generator))
    noisy = clean + sigma / 2**0.5 * noise
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:, ::3] = True
    estimate = kspace_noise_std(noisy * mask, mask)
    assert estimate is not None and abs(estimate / sigma - 1) < 0.05, estimate
    assert kspace_noise_std(noisy * 7.0, None) == pytest.approx(7.0 * kspace_noise_std(noisy, None), rel=1e-6)  # gain
    centre_only = torch.zeros(64, 64, dtype=torch.bool)
    centre_only[24:40, 24:40] = True
    assert kspace_noise_std(noisy * centre_only, centre_only) is None  # nothing sampled in the periphery


def test_relative_weight_follows_the_noise_and_falls_back_to_the_scale_rule() -> None:
    from medrestore.solvers.regularisation import DEFAULT_RELATIVE_WEIGHTS, MIN_RELATIVE_WEIGHT, NOISE_WEIGHTS, relative_weight

    assert relative_weight("cs-wavelet", 2.0, 0.04) == pytest.approx(NOISE_WEIGHTS["cs-wavelet"] * 0.02)
    assert relative_weight("cs-tv", 2.0, 0.04) == pytest.approx(NOISE_WEIGHTS["cs-tv"] * 0.02)
    assert relative_weight("cs-wavelet", 3.0, 0.06) == pytest.approx(relative_weight("cs-wavelet", 1.0, 0.02))  # gain-invariant
    assert relative_weight("cs-wavelet", 1.0, 1e-9) == MIN_RELATIVE_WEIGHT
    assert relative_weight("cs-tv", 1.0, None) == DEFAULT_RELATIVE_WEIGHTS["cs-tv"]


def test_separate_images_along_leading_axes() -> None:
    """grid_ndim: the TV prox and the wavelet solver treat a leading axis (ESPIRiT map sets) as separate images.

    The prox of a stack equals the prox of each image alone; an operator that acts on each image
    alone (a block-diagonal A) gives each image's own L1-wavelet and TV reconstruction.
    """
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(2, 12, 10, dtype=torch.complex64, generator=generator)
    stacked, _ = tv_proximal(images, 0.3, 20, grid_ndim=2)
    for index in range(2):
        alone, _ = tv_proximal(images[index], 0.3, 20)
        torch.testing.assert_close(stacked[index], alone, atol=1e-5, rtol=1e-5)
    weights = torch.rand(2, 12, 10, generator=generator) + 0.5
    stack_operator, data = Multiply((2, 12, 10), weights), images
    wavelet_stack, _ = l1_wavelet_reconstruction(stack_operator, data, 0.05, 30, grid_ndim=2)
    tv_stack, _ = tv_reconstruction(stack_operator, data, 0.05, 30, grid_ndim=2)
    for index in range(2):
        single = Multiply((12, 10), weights[index])
        wavelet_alone, _ = l1_wavelet_reconstruction(single, data[index], 0.05, 30)
        tv_alone, _ = tv_reconstruction(single, data[index], 0.05, 30)
        # The step 1/‖A‖² is the stack's (the larger bound), so compare converged solutions loosely.
        assert float((wavelet_stack[index] - wavelet_alone).abs().max()) < 0.02 * float(data.abs().max())
        assert float((tv_stack[index] - tv_alone).abs().max()) < 0.02 * float(data.abs().max())
