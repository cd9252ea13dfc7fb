"""The block-matching collaborative Wiener filter: against a loop-by-loop reference, closed forms and its checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import pywt
import scipy.fft
import torch

from medrestore.core.errors import InputError
from medrestore.physics.noise import add_rician_noise
from medrestore.physics.noise_estimation import rician_mean
from medrestore.solvers.collaborative_wiener import (
    block_distances, block_sums, block_window, collaborative_wiener, displacements, group_principal_axes, orthonormal_dct, orthonormal_haar,
)


def _haar(stack: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Orthonormal Haar transform along axis 0 by PyWavelets (full depth), or its inverse."""
    levels = int(math.log2(stack.shape[0]))
    if levels == 0:
        return stack.copy()
    template = pywt.wavedec(np.zeros(stack.shape[0]), "haar", mode="periodization", level=levels)
    sizes = np.cumsum([len(c) for c in template])[:-1]
    if not inverse:
        return np.concatenate(pywt.wavedec(stack, "haar", mode="periodization", level=levels, axis=0), axis=0)
    return pywt.waverec(np.split(stack, sizes, axis=0), "haar", mode="periodization", axis=0)


def reference_wiener(
    image: np.ndarray, pilot: np.ndarray, sigma: float, block: int, step: int, radius: int, group: int, rician: bool,
    skip_below: float, adaptive_above: float | None = None, kaiser_beta: float = 0.0,
) -> np.ndarray:
    """BM3D's Wiener step written block by block with NumPy, SciPy's DCT and PyWavelets' Haar transform; with
    ``adaptive_above``, groups whose pilot Haar spectrum outside the mean row has a mean square above ``τσ²`` are
    transformed across the group by the eigenvectors of ``X Xᵀ`` (NumPy's ``eigh``) instead; with ``kaiser_beta``,
    each block's voxels weigh ``numpy.kaiser(B, β)``'s outer product in the aggregation."""
    y = image.astype(np.float64)
    p = pilot.astype(np.float64)
    if rician:
        y = y - (rician_mean(p, sigma) - p)
    end = [block + step * math.ceil((n - block) / step) - n for n in image.shape]
    y = np.pad(np.pad(y, [(0, e) for e in end], mode="edge"), radius, mode="reflect")
    p = np.pad(np.pad(p, [(0, e) for e in end], mode="edge"), radius, mode="reflect")
    numerator, denominator = np.zeros_like(y), np.zeros_like(y)
    side = np.kaiser(block, kaiser_beta)
    window = side[:, None, None] * side[None, :, None] * side[None, None, :]
    offsets = list(itertools.product(range(-radius, radius + 1), repeat=3))
    corners = [range(radius, radius + n + e - block + 1, step) for n, e in zip(image.shape, end)]
    for corner in itertools.product(*corners):
        own = p[tuple(slice(c, c + block) for c in corner)]
        if own.max() < skip_below * sigma:
            continue
        def cut(volume: np.ndarray, offset: tuple[int, ...]) -> np.ndarray:
            return volume[tuple(slice(c + o, c + o + block) for c, o in zip(corner, offset))]
        distances = [np.sum((own - cut(p, o)) ** 2) for o in offsets]
        chosen = [offsets[i] for i in np.argsort(distances, kind="stable")[:group]]
        pilot_blocks = np.stack([cut(p, o) for o in chosen])
        pilot_dct = scipy.fft.dctn(pilot_blocks, axes=(1, 2, 3), norm="ortho")
        noisy_dct = scipy.fft.dctn(np.stack([cut(y, o) for o in chosen]), axes=(1, 2, 3), norm="ortho")
        pilot_spectrum, noisy_spectrum = _haar(pilot_dct), _haar(noisy_dct)
        axes = None
        if adaptive_above is not None and np.mean(pilot_spectrum[1:] ** 2) > adaptive_above * sigma**2:
            flat = pilot_blocks.reshape(len(chosen), -1)
            axes = np.linalg.eigh(flat @ flat.T)[1][:, ::-1].T  # rows: principal axes, largest first
            pilot_spectrum = np.tensordot(axes, pilot_dct, axes=1)
            noisy_spectrum = np.tensordot(axes, noisy_dct, axes=1)
        gains = pilot_spectrum**2 / (pilot_spectrum**2 + sigma**2)
        shrunk = gains * noisy_spectrum
        across = _haar(shrunk, inverse=True) if axes is None else np.tensordot(axes.T, shrunk, axes=1)
        estimate = scipy.fft.idctn(across, axes=(1, 2, 3), norm="ortho")
        weight = 1.0 / (sigma**2 * np.sum(gains**2)) * window
        for index, o in enumerate(chosen):
            region = tuple(slice(c + d, c + d + block) for c, d in zip(corner, o))
            numerator[region] += weight * estimate[index]
            denominator[region] += weight
    inner = tuple(slice(radius, radius + n) for n in image.shape)
    output = np.where(denominator[inner] > 0, numerator[inner] / np.maximum(denominator[inner], 1e-300), pilot)
    return np.maximum(output, 0.0) if rician else output


@pytest.mark.parametrize(
    ("rician", "adaptive_above", "kaiser_beta"), [(True, None, 0.0), (False, None, 0.0), (True, 0.2, 2.0), (False, 0.02, 0.0)]
)
def test_matches_the_block_by_block_reference(rician: bool, adaptive_above: float | None, kaiser_beta: float) -> None:
    rng = np.random.default_rng(3)
    shape = (10, 13, 7)  # whole grids of 4³ blocks every 3 voxels (replicated end voxels would tie candidates)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    clean = 4.0 + 3.0 * np.sin(zz / 2.0) * np.cos(yy / 3.0) + (xx > 4) * 2.0
    clean[:4] = 0.2  # a dark slab: its reference blocks are skipped
    pilot = clean + rng.normal(0.0, 0.05, shape)  # distinct distances: no ties among candidates
    noisy = np.abs(clean + rng.normal(0.0, 0.8, shape))
    settings = dict(block=4, step=3, group=8, adaptive_above=adaptive_above, kaiser_beta=kaiser_beta)
    ours = collaborative_wiener(
        torch.from_numpy(noisy.astype(np.float32)), torch.from_numpy(pilot.astype(np.float32)), 0.8,
        search_radius=2, rician=rician, skip_below=1.0, **settings,
    )
    expected = reference_wiener(noisy, pilot, 0.8, radius=2, rician=rician, skip_below=1.0, **settings)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(ours.numpy(), pilot, atol=0.05)


@pytest.mark.parametrize(("block", "step", "shape"), [(4, 3, (13, 11, 17)), (3, 2, (9, 12, 10)), (2, 2, (6, 7, 8))])
def test_block_sums_are_strided_cube_sums(block: int, step: int, shape: tuple[int, int, int]) -> None:
    """``block_sums`` = ``block³ · avg_pool3d(·, block, stride=step)``, and a loop over the cubes."""
    values = torch.rand(3, *shape, generator=torch.Generator().manual_seed(0))
    sums = block_sums(values, block, step)
    torch.testing.assert_close(sums, torch.nn.functional.avg_pool3d(values[None], block, stride=step)[0] * block**3)
    c, z, y, x = 1, 1, sums.shape[2] - 1, 0
    cube = values[c, z * step : z * step + block, y * step : y * step + block, x * step : x * step + block]
    assert float(sums[c, z, y, x]) == pytest.approx(float(cube.sum()), rel=1e-6)


@pytest.mark.parametrize("cache_bytes", [1, 2 * 4 * 3 * 11 * 17 * 4, 10**9])
@pytest.mark.parametrize(("block", "step", "shape"), [(4, 3, (16, 11, 17)), (3, 2, (11, 12, 10))])
def test_block_distances_a_few_planes_at_a_time_are_the_whole_volume_sums_to_the_bit(
    block: int, step: int, shape: tuple[int, int, int], cache_bytes: int
) -> None:
    """Forming the squared differences a few planes at a time (one plane, a few with a shorter last chunk, all)
    gives exactly ``block_sums`` of the whole volume's squared differences, for every displacement."""
    margin = 2
    pilot = torch.rand(*(n + 2 * margin for n in shape), generator=torch.Generator().manual_seed(4))
    core = pilot[margin:-margin, margin:-margin, margin:-margin]
    rows = [[0, 0, 0], [-2, 1, 0], [1, -2, 2], [2, 2, -1]]
    ours = block_distances(pilot, core, rows, block, step, margin, cache_bytes=cache_bytes)
    for slot, (dz, dy, dx) in enumerate(rows):
        shifted = pilot[margin + dz : margin + dz + shape[0], margin + dy : margin + dy + shape[1], margin + dx : margin + dx + shape[2]]
        assert torch.equal(ours[slot], block_sums((core - shifted).square()[None], block, step)[0])
    assert torch.equal(ours[0], torch.zeros_like(ours[0]))


def test_volumes_off_the_grid_are_padded() -> None:
    """Sides that are not a whole grid get replicated voxels at the end; the result keeps the shape and stays close."""
    generator = torch.Generator().manual_seed(2)
    clean = torch.linspace(1.0, 5.0, 11)[:, None, None].expand(11, 10, 9).contiguous()
    noisy = clean + 0.3 * torch.randn(11, 10, 9, generator=generator)
    output = collaborative_wiener(noisy, clean, 0.3, rician=False)
    assert output.shape == clean.shape
    assert float((output - clean).square().mean()) < 0.1 * float((noisy - clean).square().mean())


def test_transforms_are_orthonormal() -> None:
    for n in (1, 2, 4, 8, 16):
        torch.testing.assert_close(orthonormal_haar(n) @ orthonormal_haar(n).T, torch.eye(n, dtype=torch.float64))
    for n in (3, 4, 5):
        torch.testing.assert_close(orthonormal_dct(n) @ orthonormal_dct(n).T, torch.eye(n, dtype=torch.float64))
    torch.testing.assert_close(orthonormal_dct(4).numpy(), scipy.fft.dct(np.eye(4), axis=0, norm="ortho"))
    with pytest.raises(ValueError, match="power of 2"):
        orthonormal_haar(6)
    assert displacements(1).shape == (27, 3) and displacements(3).abs().max() == 3


def test_exact_pilot_on_a_flat_volume_averages_whole_groups() -> None:
    """Pilot = the constant: only each group's mean survives, so the noise falls ~√(K·B³)-fold."""
    generator = torch.Generator().manual_seed(0)
    noisy = 10.0 + torch.randn(24, 24, 24, generator=generator)
    output = collaborative_wiener(noisy, torch.full_like(noisy, 10.0), 1.0, rician=False)
    assert abs(float(output.mean()) - 10.0) < 0.02
    assert float(output.std()) < 0.1  # from 1.0


def test_rician_bias_is_removed_at_low_snr() -> None:
    """ν = 2σ: the magnitude's mean is E[M] ≈ 2.27σ; the filter with the bias removed returns ≈ ν."""
    truth = torch.full((24, 24, 24), 2.0)
    noisy = add_rician_noise(truth, 1.0, generator=torch.Generator().manual_seed(1))
    with_bias = collaborative_wiener(noisy, truth, 1.0, rician=False)
    corrected = collaborative_wiener(noisy, truth, 1.0, rician=True)
    bias = float(rician_mean(2.0, 1.0)) - 2.0  # 0.272
    assert float(noisy.mean()) == pytest.approx(2.0 + bias, abs=0.01)
    assert float(with_bias.mean()) > 2.0 + 0.8 * bias
    assert float(corrected.mean()) == pytest.approx(2.0, abs=0.03)
    assert float((with_bias - corrected).mean()) == pytest.approx(bias, abs=0.03)
    assert not torch.any(corrected == truth)  # a flat pilot ties every candidate; each group still holds its own block


def test_rician_mean_on_tensors_matches_numpy() -> None:
    nu = torch.linspace(0.0, 40.0, 801, dtype=torch.float64)
    torch.testing.assert_close(rician_mean(nu, 1.7), torch.from_numpy(rician_mean(nu.numpy(), 1.7)))
    assert rician_mean(torch.zeros(3), 2.0).dtype == torch.float32


def test_sigma_zero_returns_the_pilot_and_bad_input_is_refused() -> None:
    noisy, pilot = torch.rand(12, 12, 12), torch.rand(12, 12, 12)
    torch.testing.assert_close(collaborative_wiener(noisy, pilot, 0.0), pilot)
    before = noisy.clone()
    collaborative_wiener(noisy, pilot, 0.1)
    assert torch.equal(noisy, before)  # the input is not modified
    with pytest.raises(InputError, match="differ in shape"):
        collaborative_wiener(noisy, pilot[:-1], 0.1)
    with pytest.raises(InputError, match="3-D"):
        collaborative_wiener(noisy[0], pilot[0], 0.1)
    with pytest.raises(InputError, match="too small"):
        collaborative_wiener(noisy[:3], pilot[:3], 0.1)


def test_slabs_give_the_one_pass_result() -> None:
    """Large volumes run in overlapping slabs along the first axis; every kept voxel sees the same groups."""
    generator = torch.Generator().manual_seed(4)
    clean = 3.0 + torch.rand(41, 14, 13, generator=generator).cumsum(0) / 10.0
    noisy = add_rician_noise(clean, 0.4, generator=generator)
    pilot = clean + 0.02 * torch.randn(clean.shape, generator=generator)
    whole = collaborative_wiener(noisy, pilot, 0.4)
    for planes in (3, 7, 12):  # slabs of 3, 6 and 12 kept planes (multiples of the grid step)
        slabbed = collaborative_wiener(noisy, pilot, 0.4, max_voxels=planes * 14 * 13)
        torch.testing.assert_close(slabbed, whole, rtol=1e-5, atol=1e-5)


def test_principal_axes_pack_a_group_that_changes_by_scale_into_one_row() -> None:
    """Blocks ``a_k · u``: ``X Xᵀ = ‖u‖² a aᵀ`` has rank 1, so row 0 is ``±a/‖a‖`` and every other row is blind to
    the group; the rows are orthonormal and ordered by the energy they carry."""
    generator = torch.Generator().manual_seed(5)
    scales, pattern = 1.0 + torch.rand(3, 16, generator=generator), torch.randn(3, 64, generator=generator)
    groups = scales[:, :, None] * pattern[:, None, :]  # (3 groups, K = 16, B³ = 64)
    axes = group_principal_axes(groups)
    assert axes.shape == (3, 16, 16) and axes.dtype == torch.float32
    torch.testing.assert_close(axes @ axes.transpose(1, 2), torch.eye(16).expand(3, -1, -1), atol=1e-5, rtol=0)
    direction = scales / scales.norm(dim=1, keepdim=True)
    torch.testing.assert_close((axes[:, 0] * direction).sum(1).abs(), torch.ones(3), atol=1e-5, rtol=0)
    spectrum = axes @ groups
    assert float(spectrum[:, 1:].abs().max()) < 1e-4 * float(spectrum[:, 0].abs().max())
    haar = orthonormal_haar(16).to(torch.float32) @ groups  # the fixed transform spreads the same group over many rows
    assert float(haar[:, 1:].square().sum()) > 0.01 * float(haar.square().sum())


def test_principal_axes_of_a_large_batch_split_across_threads_are_the_same_to_the_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    import medrestore.solvers.collaborative_wiener as module

    groups = torch.randn(600, 16, 64, generator=torch.Generator().manual_seed(8))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = group_principal_axes(groups)
        torch.set_num_threads(3)
        monkeypatch.setattr(module, "EIGH_SPLIT_BELOW", 100)  # 600 groups ≥ 100 per thread: split in three
        torch.testing.assert_close(group_principal_axes(groups), alone, atol=0, rtol=0)
    finally:
        torch.set_num_threads(threads)


def test_adaptive_groups_beat_haar_where_the_content_changes_across_the_group() -> None:
    """A random in-plane texture whose contrast grows along z: blocks matched across planes differ by scale. With
    the exact pilot the principal axes hold such a group in two rows (offset and scale), so the Wiener gains pass
    less noise than Haar's (−21 % squared error here); τ above every group's spread gives the fixed transform back."""
    generator = torch.Generator().manual_seed(6)
    texture = torch.randn(1, 24, 24, generator=generator)
    clean = 5.0 + (1.0 + torch.arange(24.0)[:, None, None]) * texture
    noisy = clean + 0.5 * torch.randn(clean.shape, generator=generator)
    fixed = collaborative_wiener(noisy, clean, 0.5, rician=False)
    adaptive = collaborative_wiener(noisy, clean, 0.5, rician=False, adaptive_above=0.0)
    error = lambda estimate: float((estimate - clean).square().mean())  # noqa: E731
    assert error(adaptive) < 0.85 * error(fixed)
    torch.testing.assert_close(collaborative_wiener(noisy, clean, 0.5, rician=False, adaptive_above=1e9), fixed)


def test_block_window_is_the_kaiser_outer_product() -> None:
    torch.testing.assert_close(block_window(4, 0.0), torch.ones(64))
    side = np.kaiser(4, 2.0)
    expected = np.einsum("i,j,k->ijk", side, side, side).reshape(-1)
    np.testing.assert_allclose(block_window(4, 2.0).numpy(), expected, rtol=1e-6)
    assert float(block_window(3, 2.0)[13]) == pytest.approx(1.0)  # the centre voxel of a 3³ block weighs 1
