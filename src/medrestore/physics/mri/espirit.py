"""ESPIRiT coil-sensitivity estimation from the fully sampled k-space centre.

Uecker et al., "ESPIRiT — an eigenvalue approach to autocalibrating parallel MRI: where SENSE
meets GRAPPA", MRM 71(3), 2014. Steps (as in sigpy's ``EspiritCalib`` and BART's ``ecalib``):

1. calibration region: the central ``calibration_width`` samples of each k-space axis (fewer
   where the mask's fully sampled centre is smaller);
2. calibration matrix: every ``kernel_width``-sized block of it (all coils) is one row;
3. its right singular vectors with ``σ > threshold · σ_max`` span the signal space; each is a
   multi-coil convolution kernel ``k_j`` (``coils × kernel_width^d``);
4. image space: ``G(r) = (N / kernel_width^d) Σ_j a_j(r) a_j(r)ᴴ`` with
   ``a_j = ifftc(zero-pad(k_j))`` — a ``coils × coils`` Hermitian matrix per pixel, computed
   from the kernels' k-space correlations (one inverse FFT per coil pair);
5. the maps are the eigenvectors of ``G(r)`` for the eigenvalue 1: we take the top eigenvector
   (exact ``eigh``, where sigpy runs 100 power iterations and BART 30 orthogonal iterations) —
   or the top ``maps`` eigenvectors, one *map set* each (BART's ``ecalib -m 2``: a second set
   where the object folds over itself in a reduced field of view, "soft-SENSE") —, keep the
   pixels whose eigenvalue exceeds ``crop`` (each set by its own eigenvalue) and fix the free
   phase of every pixel: ``phase_reference="first-coil"`` makes ``S_0`` real, non-negative
   (sigpy); ``"principal-component"`` makes ``vᴴ S(r)`` real, non-negative, with ``v`` the
   first principal component of the calibration data (the top eigenvector of ``Σ y yᴴ`` over
   its samples, last entry real) — BART's choice: a smooth phase everywhere the array sees,
   where coil 0's phase turns wild in its blind spots.

The eigenvalue crop (BART ``ecalib -c``, default 0.8) keeps the maps where the calibration
data's signal subspace explains the coil data — inside the object — and zeroes them in the
background, where a SENSE or CS reconstruction then puts no image (``Aᴴ`` is zero there and
the regulariser pulls it to zero), so the background is clean instead of carrying noise.

The maps of a set have ``Σ_c |S_c|² = 1`` where kept, 0 elsewhere; the sets are orthonormal
per pixel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from medrestore.core.fft import ifftc


PhaseReference = Literal["first-coil", "principal-component"]
PHASE_REFERENCES = ("first-coil", "principal-component")


@dataclasses.dataclass(frozen=True)
class EspiritOptions:
    """ESPIRiT parameters (defaults: sigpy's ``EspiritCalib``).

    Attributes:
        calibration_width: size of the central calibration region per axis.
        kernel_width: k-space kernel size per axis; ``None`` adapts it to the calibration region:
            ``min(6, max(3, side // 2 − 1))`` for its smallest side (a 6-wide kernel in a 10-line
            centre leaves too few calibration rows; wider kernels than 6 shrink the eigenvalue
            support at the object's edge).
        threshold: singular values kept above ``threshold · σ_max``.
        crop: eigenvalue at or below which a pixel's maps are set to zero (outside the object).
        maps: number of map sets (eigenvectors per pixel, largest eigenvalues first).
        min_rows_per_column: ``None``: the kernel width rule above. A number ``ρ``: the adaptive
            width is the largest up to that rule's whose calibration matrix has at least ``ρ`` rows
            per column (``Π_i (r_i − w + 1) / (coils · w^d)``: a wide kernel in a small square
            centre leaves too few rows to tell signal from null space, and the eigenvalues then
            fall below the crop inside the object), 3 at least, and the crop is skipped (maps over
            the whole field of view) when the chosen width leaves fewer than ``ρ/2`` — too small a
            centre to crop by.
        phase_reference: ``"first-coil"`` (sigpy) or ``"principal-component"`` (BART); see the
            module notes.
    """

    calibration_width: int = 24
    kernel_width: int | None = 6
    threshold: float = 0.02
    crop: float = 0.95
    maps: int = 1
    phase_reference: PhaseReference = "first-coil"
    min_rows_per_column: float | None = None

    def __post_init__(self) -> None:
        if self.maps < 1:
            raise ValueError(f"ESPIRiT needs at least one map set, got {self.maps}")
        if self.phase_reference not in PHASE_REFERENCES:
            raise ValueError(f"unknown phase reference {self.phase_reference!r}; expected one of {', '.join(PHASE_REFERENCES)}")


RECON_ESPIRIT = EspiritOptions(calibration_width=24, kernel_width=None, threshold=0.02, crop=0.0)
"""Maps over the whole field of view (adaptive kernel width, no eigenvalue crop): what the
reconstruction networks were trained with and what radial reconstruction uses."""

BART_THRESHOLD = math.sqrt(0.001)
"""BART's ``ecalib -t 0.001`` in our units: BART keeps singular values with ``σ/σ_max > √t``."""

BART_ESPIRIT = EspiritOptions(
    calibration_width=24, kernel_width=6, threshold=BART_THRESHOLD, crop=0.8, maps=1, phase_reference="principal-component"
)
"""BART ``ecalib -m 1`` defaults (v0.8: ``-r 24 -k 6 -t 0.001 -c 0.8``, phase of the first principal component)."""


def calibration_region(mask: torch.Tensor | None, grid_shape: tuple[int, ...], width: int) -> tuple[slice, ...]:
    """Per-axis slices of the calibration region: a fully sampled box around the k-space centre.

    Without a mask: the central ``min(width, N)`` samples of each axis. With a mask: the box grows
    from the centre sample ``N // 2``, one sample at a time on each side of each axis in turn,
    while every sample of the added slab was acquired and the side stays within ``width`` —
    the largest fully sampled centred box for line masks and calibration squares alike.
    """
    if mask is None:
        return tuple(slice(n // 2 - min(width, n) // 2, n // 2 - min(width, n) // 2 + min(width, n)) for n in grid_shape)
    full = torch.broadcast_to(mask.to(torch.bool).cpu(), grid_shape)
    low = [n // 2 for n in grid_shape]
    high = [n // 2 + 1 for n in grid_shape]
    if not bool(full[tuple(low)]):
        return tuple(slice(start, start) for start in low)
    grown = True
    while grown:
        grown = False
        for axis, size in enumerate(grid_shape):
            for side in (-1, 1):
                if high[axis] - low[axis] >= min(width, size):
                    continue
                index = low[axis] - 1 if side < 0 else high[axis]
                if not 0 <= index < size:
                    continue
                slab = [slice(a, b) for a, b in zip(low, high)]
                slab[axis] = slice(index, index + 1)
                if bool(full[tuple(slab)].all()):
                    low[axis], high[axis] = (index, high[axis]) if side < 0 else (low[axis], index + 1)
                    grown = True
    return tuple(slice(a, b) for a, b in zip(low, high))


def calibration_shape(mask: torch.Tensor | None, grid_shape: tuple[int, ...], width: int) -> tuple[int, ...]:
    """Sizes of :func:`calibration_region`."""
    return tuple(region.stop - region.start for region in calibration_region(mask, grid_shape, width))


def _calibration_matrix(calibration: torch.Tensor, kernel_width: int) -> torch.Tensor:
    """Rows = all ``kernel_width^d`` blocks (stride 1) of ``(coils, *calib)``, flattened coil-major."""
    blocks = calibration
    for axis in range(1, calibration.ndim):
        blocks = blocks.unfold(axis, kernel_width, 1)
    n_grid = calibration.ndim - 1
    # blocks: (coils, *positions, *kernel) → (positions, coils, *kernel)
    positions = blocks.shape[1 : 1 + n_grid]
    blocks = blocks.movedim(0, n_grid)
    return blocks.reshape(int(torch.tensor(positions).prod()), -1)


def rows_per_column(region: tuple[int, ...], coils: int, kernel_width: int) -> float:
    """Rows over columns of the calibration matrix: ``Π_i (r_i − w + 1) / (coils · w^d)``."""
    rows = math.prod(max(size - kernel_width + 1, 0) for size in region)
    return rows / (coils * kernel_width ** len(region))


def kernel_width_for(options: EspiritOptions, region: tuple[int, ...], coils: int = 1) -> int:
    """The kernel width used for a calibration region of ``coils`` coils (see :class:`EspiritOptions`)."""
    if options.kernel_width is not None:
        return options.kernel_width
    widest = min(6, max(3, min(region) // 2 - 1))
    if options.min_rows_per_column is None:
        return widest
    for width in range(widest, 3, -1):
        if rows_per_column(region, coils, width) >= options.min_rows_per_column:
            return width
    return 3


def crop_is_reliable(options: EspiritOptions, region: tuple[int, ...], coils: int) -> bool:
    """Whether the eigenvalue crop is applied: always without ``min_rows_per_column``, else when the
    calibration matrix has at least half that many rows per column (see :class:`EspiritOptions`)."""
    if options.min_rows_per_column is None:
        return True
    width = kernel_width_for(options, region, coils)
    return rows_per_column(region, coils, width) >= options.min_rows_per_column / 2


def _kernels(kspace: torch.Tensor, options: EspiritOptions, region: tuple[slice, ...]) -> torch.Tensor:
    """Signal-space kernels ``(n_kernels, coils, *kernel)`` from the calibration matrix's SVD."""
    sizes = tuple(part.stop - part.start for part in region)
    kernel_width = kernel_width_for(options, sizes, int(kspace.shape[0]))
    if min(sizes) < kernel_width:
        raise ValueError(
            f"the fully sampled centre {sizes} is smaller than the ESPIRiT kernel ({kernel_width}); "
            "sample a larger centre or give coil maps"
        )
    calibration = kspace[(slice(None), *region)]
    matrix = _calibration_matrix(calibration.to(torch.complex128), kernel_width)
    _, singular_values, right = torch.linalg.svd(matrix, full_matrices=False)
    keep = singular_values > options.threshold * singular_values.max()
    n_grid = kspace.ndim - 1
    return right[keep].reshape(int(keep.sum()), kspace.shape[0], *([kernel_width] * n_grid))


def _zero_pad(kernels: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Place ``kernels (..., *kernel)`` at the centre of a zero grid ``(..., *grid)`` (sigpy's ``resize``)."""
    n_grid = len(grid)
    padded = torch.zeros((*kernels.shape[:-n_grid], *grid), dtype=kernels.dtype, device=kernels.device)
    slices = [slice(None)] * (kernels.ndim - n_grid)
    for size, width in zip(grid, kernels.shape[-n_grid:]):
        start = size // 2 - width // 2
        slices.append(slice(start, start + width))
    padded[tuple(slices)] = kernels
    return padded


def _kernel_correlations(kernels: torch.Tensor) -> torch.Tensor:
    """``R_cd(u) = Σ_j Σ_v k_jc(v + u) conj(k_jd(v))`` for all coil pairs: complex ``(coils, coils, *(2w − 1))``.

    One real convolution: real and imaginary parts are stacked as channels (``Re(a b̄)`` and
    ``Im(a b̄)`` are sums of products of parts).
    """
    coils = kernels.shape[1]
    width, n_grid = kernels.shape[-1], kernels.ndim - 2
    parts = torch.cat([kernels.real, kernels.imag], dim=0).transpose(0, 1)  # (coils, 2K, *w)
    weight = torch.cat([parts, torch.cat([-kernels.imag, kernels.real], dim=0).transpose(0, 1)], dim=0)
    padded = torch.nn.functional.pad(parts, (width - 1, width - 1) * n_grid)
    convolve = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)[n_grid - 1]
    output = convolve(padded, weight)  # (coils c, 2·coils [Re d | Im d], *(2w − 1))
    return torch.complex(output[:, :coils], output[:, coils:])


def _image_space_gram(kernels: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """``G(r) = (N / w^d) Σ_j a_j(r) a_j(r)ᴴ`` with ``a_j = ifftc(zero-pad(k_j))``: ``(*grid, coils, coils)``.

    A product of images is a correlation of spectra, so ``G_cd = (N / w^d) / sqrt(N) · ifftc(zero-pad(R_cd))``
    with the ``(2w − 1)``-wide kernel correlations ``R`` — ``coils²`` inverse FFTs instead of
    ``kernels × coils`` FFTs and a per-pixel matrix product.
    """
    n_grid, width = len(grid), kernels.shape[-1]
    total = float(torch.tensor(grid, dtype=torch.float64).prod())
    correlations = _kernel_correlations(kernels).to(torch.complex64)
    gram = ifftc(_zero_pad(correlations, grid), n_grid) * (total / width**n_grid / total**0.5)
    return _pixel_major(gram, n_grid)


def _pixel_major(gram: torch.Tensor, n_grid: int) -> torch.Tensor:
    """``(c, d, *grid)`` → ``(*grid, c, d)``."""
    return gram.permute(*range(2, 2 + n_grid), 0, 1).contiguous()


def principal_component(kspace: torch.Tensor, region: tuple[slice, ...]) -> torch.Tensor:
    """First principal component of the calibration data: the top eigenvector ``v`` of ``Σ y yᴴ``.

    ``kspace`` complex ``(coils, *grid)``; returns complex128 ``(coils,)`` with unit norm and its
    last entry real, non-negative (LAPACK's convention, so the phases match BART's maps).
    """
    calibration = kspace[(slice(None), *region)].reshape(kspace.shape[0], -1).to(torch.complex128)
    _, vectors = torch.linalg.eigh(calibration @ calibration.conj().T)
    top = vectors[:, -1]
    return top * torch.sgn(top[-1]).conj() if bool(top[-1].abs() > 0) else top


def _fix_phase(vectors: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    """Rotate every pixel's eigenvectors ``(*grid, coils, sets)`` so that ``rᴴ v`` is real, non-negative.

    ``reference`` ``(coils,)``; ``None``: coil 0 (``r = e_0``).
    """
    projection = vectors[..., :1, :] if reference is None else torch.einsum("c,...cm->...m", reference.conj(), vectors).unsqueeze(-2)
    return vectors * torch.sgn(projection).conj()


def espirit_map_sets(
    kspace: torch.Tensor, mask: torch.Tensor | None = None, options: EspiritOptions = EspiritOptions()
) -> tuple[torch.Tensor, torch.Tensor]:
    """``options.maps`` ESPIRiT map sets from multi-coil k-space with a fully sampled centre.

    Args:
        kspace: complex ``(coils, *grid)`` (2-D or 3-D grid); unsampled samples are zeros.
        mask: sampling mask broadcastable to the grid; the calibration region is limited to its
            fully sampled centre (:func:`calibration_region`). ``None``: fully sampled.
        options: :class:`EspiritOptions`.

    Returns:
        ``(coil_maps, eigenvalues)``: complex64 ``(sets, coils, *grid)`` — per set
        ``Σ_c |S_c|² = 1`` where its eigenvalue exceeds ``crop``, 0 elsewhere — and float32
        ``(sets, *grid)`` eigenvalues, largest first.
    """
    grid = tuple(kspace.shape[1:])
    if options.maps > kspace.shape[0]:
        raise ValueError(f"{options.maps} ESPIRiT map sets need at least as many coils, the data has {kspace.shape[0]}")
    region = calibration_region(mask, grid, options.calibration_width)
    kernels = _kernels(kspace, options, region)
    eigenvalues, eigenvectors = torch.linalg.eigh(_image_space_gram(kernels, grid))
    top = eigenvectors[..., -options.maps :].flip(-1)  # (*grid, coils, sets), largest first
    values = eigenvalues[..., -options.maps :].flip(-1).to(torch.float32)  # (*grid, sets)
    reference = principal_component(kspace, region).to(top.dtype) if options.phase_reference == "principal-component" else None
    crop = options.crop if crop_is_reliable(options, tuple(p.stop - p.start for p in region), int(kspace.shape[0])) else 0.0
    top = _fix_phase(top, reference) * (values > crop).unsqueeze(-2)
    n_grid = len(grid)
    maps = top.permute(n_grid + 1, n_grid, *range(n_grid))
    return maps.to(torch.complex64).contiguous(), values.permute(n_grid, *range(n_grid)).contiguous()


def espirit_maps(
    kspace: torch.Tensor, mask: torch.Tensor | None = None, options: EspiritOptions = EspiritOptions()
) -> tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT coil maps (the first map set) from multi-coil k-space with a fully sampled centre.

    Args:
        kspace: complex ``(coils, *grid)`` (2-D or 3-D grid); unsampled samples are zeros.
        mask: sampling mask broadcastable to the grid (see :func:`espirit_map_sets`).
        options: :class:`EspiritOptions` (``maps`` is ignored: one set).

    Returns:
        ``(coil_maps, eigenvalues)``: complex64 ``(coils, *grid)`` with ``Σ_c |S_c|² = 1`` where
        ``eigenvalues > crop`` (0 elsewhere), and float32 ``(*grid)`` top eigenvalues.
    """
    maps, eigenvalues = espirit_map_sets(kspace, mask, dataclasses.replace(options, maps=1))
    return maps[0], eigenvalues[0]
