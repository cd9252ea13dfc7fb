"""Block-matching collaborative Wiener filtering of a 3-D volume with a pilot estimate (BM3D/BM4D's second step).

Given a noisy volume ``y`` (noise σ, white) and a pilot estimate ``p`` of the clean volume, every
reference block (``B³`` voxels, on a grid of step ``s``) is grouped with the ``K`` blocks whose pilot
content is closest to its own (squared distance over the block) within a ``(2R + 1)³`` cube of
displacements (itself included, at distance 0). Each group, a ``K × B³`` stack, is transformed by a
separable orthonormal transform ``T`` — the 3-D DCT-II of every block, then a Haar (``K`` a power
of 2) or DCT transform across the group — and shrunk by the empirical Wiener gains of the pilot:

    ``Ŷ = W ⊙ T(Y)``,   ``W = T(P)² / (T(P)² + σ²)``,

then transformed back. The block estimates are aggregated where they overlap, each group weighted by
``1 / (σ² ‖W‖²)`` (the inverse of its estimate's noise variance), times an optional window over the block, as in
Dabov et al., IEEE TIP 16(8), 2007 (BM3D) and Maggioni et al., IEEE TIP 22(1), 2013 (BM4D). Voxels that no group covers keep the pilot.

Stacking similar blocks makes the content of a group nearly constant along the group axis, so the
transform packs it into few coefficients while the noise spreads evenly over all of them: the Wiener
gains keep the first and drop the second. With a good pilot this recovers detail that a local
average (non-local means) blurs and removes noise that the pilot kept.

Two options refine this (the MRI default of ``medrestore denoise``, ``unet3d-nlm``, uses both):

* *Adaptive group transform* (``adaptive_above = τ``). Where the blocks of a group differ, e.g. at a folded edge met
  at different offsets or in tissue whose contrast changes across the search cube, a fixed Haar row set spreads
  the group's content over many rows, and each row's gain lets its share of noise through. Such groups — the pilot's
  mean square outside the group's mean row above ``τσ²`` — are transformed across the group by the principal axes of
  their pilot blocks instead (the eigenvectors of ``X Xᵀ``, ``X`` the ``K × B³`` pilot group;
  :func:`group_principal_axes`), which pack the same content into the fewest rows. Nearly constant groups keep
  Haar: there the pilot's differences are its own leftover noise, which principal axes would fit and pass on.
  The axes come from the pilot, never from the noisy blocks. (Adaptive bases across similar patches: the
  shape-adaptive PCA of BM3D-SAPCA, Dabov et al., SPARS 2009; HOSVD groups, Zhang et al., MedIA 2015.)
* *Kaiser window* (``kaiser_beta = β``): each block estimate's voxels weigh the outer product of three Kaiser
  windows in the aggregation, as in BM3D (β = 2), so the edge voxels of a block, whose estimates lean most on
  neighbouring content, count less.

Rician magnitudes (``rician=True``): the filter assumes zero-mean noise, so the Rician bias of the
magnitude at the pilot's value, ``E[M | ν = p] − p`` (:func:`~medrestore.physics.noise_estimation.rician_mean`),
is removed from ``y`` first. At SNR ≥ 3 (most of a brain at σ ≤ 7 % of the maximum) the remaining noise
of a magnitude is close to Gaussian of standard deviation σ.

Cost: one squared-difference volume and one strided box sum per displacement (``(2R + 1)³`` of them),
then ``K · B³`` gathered voxels per reference block; reference blocks whose pilot stays below
``skip_below · σ`` (empty background) are skipped. On a whole 1-mm brain (the 163 × 199 × 165 box of
its tissue) it took 2.9 s with 2 CPU threads (5.7 s with 3³ blocks every 2 voxels and groups of 16) when the
cube sums were ``avg_pool3d``; :func:`block_sums` makes the whole filter 1.3–1.4× faster (measured in the same runs).
The adaptive groups add one ``K × K`` eigen-decomposition per group that takes them: on ICBM152 at σ = 5 % with
``τ = 0.2``, 32 851 groups, 0.6 s.
Volumes above :data:`WIENER_MAX_VOXELS` run in slabs.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from medrestore.core.errors import InputError
from medrestore.core.progress import track
from medrestore.physics.noise_estimation import rician_mean
from medrestore.solvers.dct_denoise import mirror_pad, orthonormal_dct

WIENER_BLOCK = 4
WIENER_STEP = 3
WIENER_SEARCH_RADIUS = 3
WIENER_GROUP = 8
WIENER_SKIP_BELOW = 1.0
"""Defaults (4³ blocks every 3 voxels, 7³ search, groups of 8, background blocks below σ skipped), chosen on the
held-out Colin27 slab and its variants at σ = 3, 5, 7 % (``benchmarks/mri_guided_ablation.py``; scores and times in
``benchmarks/history.md``). The MRI default passes its own settings
(:class:`~medrestore.models.guided_wiener.GuidedWienerSettings`: groups of 16)."""
WIENER_MAX_VOXELS = 8_000_000
"""Volumes of more voxels are filtered in overlapping slabs along the first axis, with the same result
(:func:`collaborative_wiener`'s ``max_voxels``). A pass holds the padded volumes, ``batch`` squared differences
and the running top-``K`` of every reference block: ≈ 60 bytes per voxel by default."""
EIGH_SPLIT_BELOW = 1024
"""Groups per thread below which :func:`group_principal_axes` does not split its batch across threads."""


@functools.lru_cache(maxsize=8)
def orthonormal_haar(n: int) -> torch.Tensor:
    """The ``n × n`` orthonormal Haar matrix (``n`` a power of 2; row 0 is the mean), float64."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Haar transform needs a power of 2, got {n}")
    if n == 1:
        return torch.ones(1, 1, dtype=torch.float64)
    half = orthonormal_haar(n // 2)
    coarse = torch.kron(half, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    detail = torch.kron(torch.eye(n // 2, dtype=torch.float64), torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    matrix = torch.cat([coarse, detail])
    return matrix / matrix.norm(dim=1, keepdim=True)


def group_transform(n: int) -> torch.Tensor:
    """The transform across a group of ``n`` blocks: Haar for powers of 2 (as BM3D), else the DCT."""
    return orthonormal_haar(n) if n & (n - 1) == 0 else orthonormal_dct(n)


def _cube(axis: torch.Tensor) -> torch.Tensor:
    """Every point ``(z, y, x)`` with coordinates in ``axis``, in z-y-x order: ``(len(axis)³, 3)``."""
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def displacements(radius: int) -> torch.Tensor:
    """All ``(2·radius + 1)³`` integer displacements ``(dz, dy, dx)`` of the search cube, ``(M, 3)`` int64."""
    return _cube(torch.arange(-radius, radius + 1))


def _pad(volume: torch.Tensor, end: tuple[int, ...], margin: int) -> torch.Tensor:
    """Replicate ``end`` voxels after each axis (a whole reference grid), then mirror ``margin`` on every side."""
    return mirror_pad(F.pad(volume[None, None], (0, end[2], 0, end[1], 0, end[0]), mode="replicate")[0, 0], margin)


def padded_to_grid(volume: torch.Tensor, block: int, step: int, margin: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """``volume`` ``(D, H, W)`` padded to a whole grid of ``block``-sided blocks every ``step`` voxels and then by
    ``margin`` on every side (:func:`_pad`); its view without the margin (the grid's extent); and the voxels added at
    the end of each axis."""
    end = tuple(block + step * math.ceil((n - block) / step) - n for n in volume.shape)
    padded = _pad(volume, end, margin)
    return padded, padded[tuple(slice(margin, margin + n + e) for n, e in zip(volume.shape, end))], end


def collaborative_wiener(
    image: torch.Tensor,
    pilot: torch.Tensor,
    sigma: float,
    block: int = WIENER_BLOCK,
    step: int = WIENER_STEP,
    search_radius: int = WIENER_SEARCH_RADIUS,
    group: int = WIENER_GROUP,
    rician: bool = True,
    skip_below: float = WIENER_SKIP_BELOW,
    chunk: int = 8192,
    max_voxels: int = WIENER_MAX_VOXELS,
    adaptive_above: float | None = None,
    kaiser_beta: float = 0.0,
) -> torch.Tensor:
    """Collaborative Wiener estimate of ``image`` ``(D, H, W)`` guided by ``pilot`` (module docstring).

    Args:
        image: the noisy volume (magnitudes when ``rician``), real float.
        pilot: a first estimate of the clean volume, same shape.
        sigma: the noise standard deviation in image units (``0`` returns the pilot).
        block: side ``B`` of the cubic blocks.
        step: spacing of the reference blocks (``< block`` so that they overlap).
        search_radius: ``R``: candidates are displaced by at most ``R`` voxels on each axis.
        group: ``K``, the blocks per group (at most ``(2R + 1)³``).
        rician: remove the Rician bias at the pilot's value from ``image`` first.
        skip_below: reference blocks whose pilot never reaches ``skip_below · σ`` are skipped.
        chunk: reference blocks processed at a time (memory ≈ ``chunk · K · B³ · 28`` bytes).
        max_voxels: larger volumes are filtered in slabs along the first axis, each with a margin of
            ``2R + B`` voxels (rounded up to the grid) on both sides: every kept voxel sees the same
            groups as in one pass, so the result is the same up to rounding.
        adaptive_above: ``τ``: groups whose pilot varies across the group, ``e > τ`` with ``e`` the mean square of
            the pilot's spectrum outside the group's mean row in units of ``σ²``, are transformed across the group
            by the principal axes of their pilot (:func:`group_principal_axes`) instead of Haar/DCT. ``None``: never.
        kaiser_beta: ``β`` of the Kaiser window ``w`` (:func:`block_window`) that weighs each voxel of a block
            estimate in the aggregation (``0``: flat, every voxel of a block weighs the same).

    Returns:
        The estimate ``(D, H, W)``, float32, ``>= 0`` when ``rician``.

    Raises:
        InputError: not a real 3-D float volume, shapes differ, a side shorter than ``block`` or
        than ``search_radius + 1``, or ``step > block``.

    Example:
        >>> noisy = torch.rand(16, 16, 16)
        >>> collaborative_wiener(noisy, torch.full((16, 16, 16), 0.5), sigma=0.1).shape
        torch.Size([16, 16, 16])
    """
    if image.ndim != 3 or not image.is_floating_point() or image.is_complex():
        raise InputError(None, f"collaborative Wiener: expected a real 3-D float volume, got {tuple(image.shape)} {image.dtype}")
    if tuple(pilot.shape) != tuple(image.shape):
        raise InputError(None, f"collaborative Wiener: the pilot {tuple(pilot.shape)} and the image {tuple(image.shape)} differ in shape")
    if min(image.shape) < max(block, search_radius + 1) or not 1 <= step <= block:
        raise InputError(
            None, f"collaborative Wiener: volume {tuple(image.shape)} too small for {block}³ blocks and a search radius of "
            f"{search_radius}, or step {step} outside 1…{block}"
        )
    pilot = pilot.detach().to(device=image.device, dtype=torch.float32)
    if sigma <= 0:
        return pilot.clone()
    noisy = image.detach().to(torch.float32)
    if rician:
        noisy = noisy - (rician_mean(pilot, sigma) - pilot)
    settings = (block, step, search_radius, group, skip_below, chunk, adaptive_above, kaiser_beta)
    depth = max(step, (max_voxels // (image.shape[1] * image.shape[2])) // step * step)  # kept planes per slab
    if image.shape[0] <= depth:
        output = _filter(noisy, pilot, sigma, *settings)
    else:
        margin = step * math.ceil((2 * search_radius + block) / step)  # slabs start on the global grid
        output = torch.empty_like(pilot)
        for start in range(0, image.shape[0], depth):
            low, high = max(0, start - margin), min(image.shape[0], start + depth + margin)
            part = _filter(noisy[low:high], pilot[low:high], sigma, *settings)
            output[start : start + depth] = part[start - low : start - low + depth]
    return output.clamp_min(0.0) if rician else output


def _filter(
    noisy: torch.Tensor, pilot: torch.Tensor, sigma: float, block: int, step: int, search_radius: int, group: int,
    skip_below: float, chunk: int, adaptive_above: float | None = None, kaiser_beta: float = 0.0,
) -> torch.Tensor:
    """One pass of :func:`collaborative_wiener` over a whole (bias-corrected) volume."""
    device = noisy.device
    offsets = displacements(search_radius).to(device)
    shape = tuple(noisy.shape)
    pilot_p, core, end = padded_to_grid(pilot, block, step, search_radius)
    noisy_p = _pad(noisy, end, search_radius)
    grid = tuple((n + e - block) // step + 1 for n, e in zip(shape, end))
    corners = [torch.arange(g, device=device) * step + search_radius for g in grid]
    references = torch.stack(torch.meshgrid(*corners, indexing="ij"), -1).reshape(-1, 3)
    keep = F.max_pool3d(core[None, None], block, stride=step).reshape(-1) >= skip_below * sigma  # blocks that reach tissue
    references = references[keep]
    k = min(group, offsets.shape[0])
    matches = _closest_blocks(pilot_p, core, offsets, block, step, search_radius, keep, k)  # (n, K), the block itself first

    padded_shape = noisy_p.shape
    strides = torch.tensor([padded_shape[1] * padded_shape[2], padded_shape[2], 1], device=device)
    within = (_cube(torch.arange(block, device=device)) * strides).sum(-1)  # the B³ voxels of a block
    offset_index = (offsets * strides).sum(-1)
    reference_index = (references * strides).sum(-1)
    block_dct = orthonormal_dct(block)
    forward = torch.kron(torch.kron(block_dct, block_dct), block_dct).to(device=device, dtype=torch.float32)
    across = group_transform(k).to(device=device, dtype=torch.float32)
    window = block_window(block, kaiser_beta).to(device)
    numerator = torch.zeros(noisy_p.numel(), device=device)
    denominator = torch.zeros(noisy_p.numel(), device=device)
    flat_noisy, flat_pilot = noisy_p.reshape(-1), pilot_p.reshape(-1)
    variance = float(sigma) ** 2
    for start in track(range(0, reference_index.shape[0], chunk), "collaborative Wiener filter"):
        index = (reference_index[start : start + chunk, None] + offset_index[matches[start : start + chunk]])[..., None] + within
        pilot_blocks, noisy_blocks = _block_spectra(flat_pilot[index], forward), _block_spectra(flat_noisy[index], forward)
        gains, noisy_spectrum = torch.matmul(across, pilot_blocks), torch.matmul(across, noisy_blocks)
        varied, axes = _adapt_groups(gains, noisy_spectrum, pilot_blocks, noisy_blocks, variance, adaptive_above)
        gains.square_()  # the pilot's spectrum, squared, then W = P² / (P² + σ²)
        gains.div_(gains + variance)
        estimate = _inverse_spectrum(noisy_spectrum.mul_(gains), across, forward, varied, axes)
        weight = 1.0 / (variance * gains.square_().sum((1, 2))).clamp_min(1e-12)  # (n,)
        flat_index = index.reshape(-1)
        voxel_weight = weight[:, None, None] * window
        numerator.index_add_(0, flat_index, estimate.mul_(voxel_weight).reshape(-1))
        denominator.index_add_(0, flat_index, voxel_weight.expand_as(estimate).reshape(-1))
    inner = tuple(slice(search_radius, search_radius + n) for n in shape)
    numerator, denominator = numerator.reshape(padded_shape)[inner], denominator.reshape(padded_shape)[inner]
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1e-30), pilot)


def block_window(block: int, beta: float) -> torch.Tensor:
    """The aggregation window of a ``block³`` block, flattened in z-y-x order ``(block³,)`` float32: the outer product
    of three Kaiser windows ``I₀(β·√(1 − (2n/(B − 1) − 1)²)) / I₀(β)`` (:func:`numpy.kaiser`), as BM3D weighs its
    block estimates (β = 2 there): the block's edge voxels, whose estimates lean most on the neighbouring content,
    count less. ``β = 0`` is flat."""
    side = torch.from_numpy(np.kaiser(block, beta)).to(torch.float32)
    return (side[:, None, None] * side[None, :, None] * side[None, None, :]).reshape(-1)


def block_sums(values: torch.Tensor, block: int, step: int) -> torch.Tensor:
    """Sums over the ``block³`` cubes at every ``step`` voxels of ``values`` ``(C, D, H, W)``: ``(C, D', H', W')``,
    ``D' = (D − block) // step + 1`` (``block³ ×`` ``F.avg_pool3d(values, block, stride=step)``).

    Separable: one strided window sum per axis, each on the already reduced volume, so a voxel is read about
    ``block / step`` times instead of ``(block / step)³``; about 2× faster than ``avg_pool3d`` on 2 CPU threads.
    """
    for axis in (1, 2, 3):
        values = values.unfold(axis, block, step).sum(-1)
    return values


def _closest_blocks(
    pilot: torch.Tensor, core: torch.Tensor, offsets: torch.Tensor, block: int, step: int, margin: int,
    keep: torch.Tensor, k: int, batch: int = 8,
) -> torch.Tensor:
    """The ``k`` displacements ``δ`` with the smallest ``‖P(r) − P(r + δ)‖²`` for every kept reference corner ``r``.

    ``pilot`` is padded by ``margin`` on every side; ``core`` is its view without that margin.

    Returns row indices into ``offsets``, ``(refs kept, k)``, closest first. The distances of ``batch``
    displacements at a time (:func:`block_distances`) are merged into a running top-``k``, so memory stays at
    ``(k + batch)`` values per reference block.
    """
    count = int(keep.sum())
    best = torch.full((count, k), math.inf, device=pilot.device)
    chosen = torch.zeros((count, k), dtype=torch.int64, device=pilot.device)
    listed = offsets.tolist()
    centre = listed.index([0, 0, 0])
    for start in range(0, len(listed), batch):
        rows = listed[start : start + batch]
        pooled = block_distances(pilot, core, rows, block, step, margin).reshape(len(rows), -1)[:, keep].T
        if start <= centre < start + len(rows):
            pooled[:, centre - start] = -1.0  # every group holds its reference block, first, even among ties
        labels = torch.arange(start, start + len(rows), device=pilot.device).expand(count, -1)
        best, order = torch.cat([best, pooled], dim=1).topk(k, dim=1, largest=False)
        chosen = torch.cat([chosen, labels], dim=1).gather(1, order)
    return chosen


DISTANCE_CACHE_BYTES = 8 << 20
"""Bytes of squared differences that :func:`block_distances` holds at a time (a few planes of the volume per
displacement): small enough to stay in the CPU's cache between the subtraction and the block sums."""


def block_distances(
    pilot: torch.Tensor, core: torch.Tensor, rows: list[list[int]], block: int, step: int, margin: int,
    cache_bytes: int = DISTANCE_CACHE_BYTES,
) -> torch.Tensor:
    """``‖P(r) − P(r + δ)‖²`` over the ``block³`` blocks at every ``step`` voxels of ``core`` for each displacement
    ``δ = (dz, dy, dx)`` of ``rows``: ``(len(rows), D', H', W')`` as :func:`block_sums` of the squared differences.

    ``pilot`` is ``core`` padded by ``margin ≥ max |δ|`` on every side. The squared differences are formed a few
    output planes at a time (about ``cache_bytes`` of them), so each is summed while it is still in the cache
    instead of being written to memory and read back and written again (timings in
    ``benchmarks/mri-denoise-default.md``). The sums are the same, in the same order, as over the whole volume.
    """
    extent = tuple(core.shape)
    planes_out = (extent[0] - block) // step + 1
    plane_bytes = len(rows) * step * extent[1] * extent[2] * core.element_size()
    planes = max(1, min(planes_out, cache_bytes // max(1, plane_bytes)))
    output = torch.empty(len(rows), planes_out, (extent[1] - block) // step + 1, (extent[2] - block) // step + 1,
                         dtype=core.dtype, device=core.device)
    buffer = torch.empty(len(rows), (planes - 1) * step + block, extent[1], extent[2], dtype=core.dtype, device=core.device)
    for first in range(0, planes_out, planes):
        last = min(planes_out, first + planes)
        low, high = first * step, (last - 1) * step + block  # the input planes of output planes first…last − 1
        squared = buffer[:, : high - low]
        for slot, (dz, dy, dx) in enumerate(rows):
            shifted = pilot[margin + dz + low : margin + dz + high, margin + dy : margin + dy + extent[1], margin + dx : margin + dx + extent[2]]
            torch.sub(core[low:high], shifted, out=squared[slot]).square_()
        output[:, first:last] = block_sums(squared, block, step)
    return output


def _block_spectra(groups: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """``X · Fᵀ`` for groups ``X`` ``(n, K, B³)``: the 3-D DCT of every block."""
    n, k, voxels = groups.shape
    return (groups.reshape(-1, voxels) @ forward.T).reshape(n, k, voxels)


def group_principal_axes(pilot_blocks: torch.Tensor) -> torch.Tensor:
    """The principal axes across each group of pilot blocks ``X`` ``(n, K, V)``: ``(n, K, K)`` orthonormal rows,
    the eigenvectors of ``X Xᵀ`` (uncentred, so the first row is close to the group's mean), largest eigenvalue
    first. They pack the pilot's variation across the group into the fewest rows, where a fixed Haar transform
    spreads a group that changes, e.g. blocks straddling an edge at different offsets, over many. The eigenvectors
    are found in float64: the mean's eigenvalue dwarfs the rest, and float32 leaves the small ones' axes wrong by
    ~10⁻³ (the same time on 2 CPU threads, ≈ 19 µs per 16 × 16 group). A batched ``eigh`` on the CPU solves one
    matrix after another on one thread, so a large batch is split across the intra-op threads (each matrix is solved
    by the same routine either way: the result is the same to the bit)."""
    grams = (pilot_blocks @ pilot_blocks.transpose(1, 2)).double()
    threads = torch.get_num_threads() if grams.device.type == "cpu" else 1
    if threads > 1 and grams.shape[0] >= EIGH_SPLIT_BELOW * threads:
        with ThreadPoolExecutor(threads) as pool:  # LAPACK releases the GIL
            vectors = torch.cat(list(pool.map(lambda part: torch.linalg.eigh(part)[1], grams.chunk(threads))))
    else:
        _, vectors = torch.linalg.eigh(grams)
    return vectors.flip(-1).transpose(1, 2).to(pilot_blocks.dtype)



def _adapt_groups(
    pilot_spectrum: torch.Tensor, noisy_spectrum: torch.Tensor, pilot_blocks: torch.Tensor, noisy_blocks: torch.Tensor,
    variance: float, adaptive_above: float | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Put the groups whose pilot varies on their :func:`group_principal_axes`, in place.

    ``pilot_spectrum`` / ``noisy_spectrum`` ``(n, K, B³)`` hold the shared transform across the group applied to the
    block spectra ``pilot_blocks`` / ``noisy_blocks``. Where the pilot's mean square outside row 0 (the group's
    mean) exceeds ``adaptive_above · σ²``, both rows are recomputed on the pilot's principal axes. Returns the mask
    of those groups and their axes ``(m, K, K)``, or ``(None, None)`` when none adapts."""
    if adaptive_above is None:
        return None, None
    varied = pilot_spectrum[:, 1:].square().mean((1, 2)) > adaptive_above * variance
    if not bool(varied.any()):
        return None, None
    axes = group_principal_axes(pilot_blocks[varied])
    pilot_spectrum[varied] = torch.matmul(axes, pilot_blocks[varied])
    noisy_spectrum[varied] = torch.matmul(axes, noisy_blocks[varied])
    return varied, axes


def _inverse_spectrum(
    spectrum: torch.Tensor, across: torch.Tensor, forward: torch.Tensor,
    varied: torch.Tensor | None = None, axes: torch.Tensor | None = None,
) -> torch.Tensor:
    """The inverse of the group spectrum ``G · X · Fᵀ`` (both transforms orthonormal): ``Gᵀ · S · F``, with ``G`` the
    shared ``across`` or, for the ``varied`` groups, their ``axes`` (:func:`_adapt_groups`)."""
    n, k, voxels = spectrum.shape
    groups = torch.matmul(across.T, spectrum)
    if varied is not None and axes is not None:
        groups[varied] = torch.matmul(axes.transpose(1, 2), spectrum[varied])
    return (groups.reshape(-1, voxels) @ forward).reshape(n, k, voxels)
