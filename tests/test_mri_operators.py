"""Every MRI/solver linear operator passes one adjoint test; operators agree with their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medrestore.core.fft import fftc, ifftc
from medrestore.physics.mri import (
    CartesianSampling,
    CoilExpansion,
    FFTOperator,
    Identity,
    MapSetExpansion,
    Multiply,
    adjoint_mismatch,
    cartesian_sense,
    max_eigenvalue,
)
from medrestore.solvers import FiniteDifference, WaveletTransform


def _coil_maps(coils: int, shape: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Smooth complex maps with Σ|S|² = 1."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(-1, 1, shape[0]), torch.linspace(-1, 1, shape[1]), indexing="ij")
    maps = []
    for coil in range(coils):
        angle = 2 * np.pi * coil / coils
        centre_y, centre_x = 0.9 * np.sin(angle), 0.9 * np.cos(angle)
        magnitude = torch.exp(-((y - centre_y) ** 2 + (x - centre_x) ** 2))
        phase = torch.rand((), generator=generator) * 2 * np.pi + x * coil
        maps.append(magnitude * torch.exp(1j * phase))
    stacked = torch.stack(maps).to(torch.complex64)
    return stacked / torch.sqrt((stacked.abs() ** 2).sum(0))


def _map_sets(coils: int, shape: tuple[int, int]) -> torch.Tensor:
    """Two map sets ``(2, coils, *shape)``: the second weaker and different (as ESPIRiT's second set)."""
    return torch.stack([_coil_maps(coils, shape, 0), 0.5 * _coil_maps(coils, shape, 1)])


def _line_mask(shape: tuple[int, int]) -> torch.Tensor:
    mask = torch.zeros(shape[0], 1, dtype=torch.bool)
    mask[::3] = True
    mask[shape[0] // 2 - 2 : shape[0] // 2 + 2] = True
    return mask


def _random_mask(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(3)) > 0.6


OPERATORS = {
    "identity": lambda: Identity((5, 7)),
    "multiply-complex": lambda: Multiply((6, 8), torch.randn(6, 8, dtype=torch.complex64)),
    "fft-2d": lambda: FFTOperator((16, 12)),
    "fft-3d-odd": lambda: FFTOperator((5, 9, 7)),
    "cartesian-lines": lambda: CartesianSampling(_line_mask((16, 12)), (16, 12)),
    "cartesian-2d-mask-odd": lambda: CartesianSampling(_random_mask((15, 13)), (15, 13)),
    "coil-expansion": lambda: CoilExpansion(_coil_maps(4, (12, 10))),
    "sense-lines": lambda: cartesian_sense(_coil_maps(4, (16, 12)), _line_mask((16, 12))),
    "sense-poisson-like": lambda: cartesian_sense(_coil_maps(3, (17, 14)), _random_mask((17, 14))),
    "sense-lines-along-x": lambda: cartesian_sense(_coil_maps(3, (16, 12)), _line_mask((12, 16)).T),
    "sense-3d-lines-along-z": lambda: cartesian_sense(
        torch.stack([_coil_maps(3, (8, 10))] * 6, dim=1), torch.tensor([1, 0, 1, 1, 0, 1]).bool().reshape(6, 1, 1)
    ),
    "sense-3d-lines-along-y": lambda: cartesian_sense(
        torch.stack([_coil_maps(3, (8, 10))] * 6, dim=1), _random_mask((1, 8, 1))
    ),
    "map-set-expansion": lambda: MapSetExpansion(_map_sets(4, (12, 10))),
    "sense-map-sets-lines": lambda: cartesian_sense(_map_sets(4, (16, 12)), _line_mask((16, 12)), map_sets=True),
    "sense-map-sets-odd": lambda: cartesian_sense(_map_sets(3, (15, 13)), _random_mask((15, 13)), map_sets=True),
    "sense-adjoint": lambda: cartesian_sense(_coil_maps(3, (8, 8)), _random_mask((8, 8))).H,
    "composed": lambda: FFTOperator((8, 6)) @ Multiply((8, 6), torch.randn(8, 6, dtype=torch.complex64)),
    "wavelet-db4-zero": lambda: WaveletTransform((37, 50), "db4", mode="zero"),
    "wavelet-db2-periodization": lambda: WaveletTransform((32, 24), "db2", mode="periodization"),
    "wavelet-haar-3d": lambda: WaveletTransform((8, 12, 10), "haar"),
    "finite-difference-2d": lambda: FiniteDifference((9, 12)),
    "finite-difference-3d": lambda: FiniteDifference((4, 5, 6)),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_adjoint(name: str) -> None:
    """|<Ax, y> − <x, Aᴴy>| ≤ 1e-5 ‖Ax‖‖y‖ in complex64, without and with a batch axis."""
    operator = OPERATORS[name]()
    generator = torch.Generator().manual_seed(11)
    assert adjoint_mismatch(operator, generator) <= 1e-5
    assert adjoint_mismatch(operator, generator, batch=(2,)) <= 1e-5


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_normal_and_norm_bound(name: str) -> None:
    """normal(x) = Aᴴ(A x) and the closed-form bound is ≥ the power-iteration ‖A‖² (and tight within 10 %)."""
    operator = OPERATORS[name]()
    x = torch.randn(operator.input_shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(5))
    expected = operator.adjoint(operator.forward(x))
    assert torch.allclose(operator.normal(x), expected, atol=1e-5 * float(expected.abs().max()))
    bound = operator.squared_norm_bound()
    if bound is not None:
        estimate = max_eigenvalue(operator, x, iterations=200)
        assert estimate <= bound * (1 + 1e-4)
        if name.startswith(("fft", "identity", "wavelet", "coil", "map-set", "finite-difference-2d")):
            assert estimate >= 0.9 * bound


def test_operators_are_not_mutated() -> None:
    """Applying an operator leaves its mask and coil maps unchanged, and does not alias the caller's tensors."""
    maps, mask = _coil_maps(3, (8, 8)), _random_mask((8, 8))
    operator = cartesian_sense(maps, mask)
    maps_before, mask_before = operator.coil_maps.clone(), operator.sampling.mask.clone()
    maps.mul_(0)
    x = torch.randn(8, 8, dtype=torch.complex64)
    operator.normal(operator.adjoint(operator.forward(x)))
    assert torch.equal(operator.coil_maps, maps_before)
    assert torch.equal(operator.sampling.mask, mask_before)


@pytest.mark.parametrize("shape", [(16, 12), (15, 13), (6, 10)])
def test_cartesian_sampling_matches_centred_fft(shape: tuple[int, int]) -> None:
    """The sign-modulation fast path equals mask · fftc (and ifftc for the adjoint), against NumPy."""
    mask = _random_mask(shape)
    operator = CartesianSampling(mask, shape)
    x = torch.randn(2, *shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    reference = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(operator.forward(x).numpy(), reference * mask.numpy(), atol=2e-6)
    np.testing.assert_allclose(operator.adjoint(x).numpy(), ifftc(x * mask).numpy(), atol=2e-6)
    np.testing.assert_allclose(FFTOperator(shape).forward(x).numpy(), fftc(x).numpy(), atol=1e-6)


def test_map_set_sense_matches_definition() -> None:
    """Two map sets: A x = M ⊙ fftc(S_0 ⊙ x_0 + S_1 ⊙ x_1), and Aᴴ returns one image per set."""
    maps, mask = _map_sets(4, (16, 12)), _line_mask((16, 12))
    x = torch.randn(2, 16, 12, dtype=torch.complex64)
    operator = cartesian_sense(maps, mask, map_sets=True)
    expected = fftc(maps[0] * x[0] + maps[1] * x[1]) * mask
    torch.testing.assert_close(operator.forward(x), expected, atol=1e-5, rtol=1e-5)
    assert operator.input_shape == (2, 16, 12) and operator.output_shape == (4, 16, 12)
    adjoint = operator.adjoint(expected)
    torch.testing.assert_close(adjoint[1], (ifftc(expected * mask) * maps[1].conj()).sum(0), atol=1e-5, rtol=1e-5)


def test_sense_matches_definition() -> None:
    """A x = M ⊙ fftc(S ⊙ x) coil by coil."""
    maps, mask = _coil_maps(4, (16, 12)), _line_mask((16, 12))
    x = torch.randn(16, 12, dtype=torch.complex64)
    expected = fftc(maps * x) * mask
    torch.testing.assert_close(cartesian_sense(maps, mask).forward(x), expected, atol=1e-5, rtol=1e-5)


def test_split_intensity() -> None:
    """S = w·Ŝ with Σ|Ŝ|² = 1 where S ≠ 0; unit-norm maps come back unchanged with w = None."""
    from medrestore.physics.mri.sense import split_intensity

    maps = _coil_maps(4, (12, 10))
    unit, weight = split_intensity(maps)
    assert weight is None and unit is maps
    profile = torch.linspace(0.2, 2.0, 10).expand(12, 10).clone()
    profile[0] = 0
    unit, weight = split_intensity(maps * profile)
    assert weight is not None
    torch.testing.assert_close(weight, profile, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(unit[:, 1:], maps[:, 1:], atol=1e-5, rtol=1e-5)
    assert float(unit[:, 0].abs().max()) == 0.0
