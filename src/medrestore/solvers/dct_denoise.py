"""Overcomplete DCT denoising (2-D or 3-D), and Poisson counts denoised through Anscombe's transform.

:func:`odct_denoise`: every overlapping ``block^d`` block of the image is transformed by the
orthonormal DCT-II, its coefficients below ``threshold · σ`` (all but the mean) are set to 0, the
blocks are transformed back and averaged where they overlap, each weighted by
``1 / (1 + kept coefficients)`` (sparser blocks are more trustworthy; BM3D's aggregation weights).
With 3 × 3 × 3 blocks it is the oracle-DCT pre-filter of PRI-NLM (Manjón et al. 2012,
:mod:`medrestore.models.fast_nlm`); with 6 × 6 blocks on 2-D images it is the sliding-window DCT
denoiser of Yu & Sapiro (IPOL 2011).

:func:`denoise_counts`: Poisson counts ``k`` → ``A⁻¹(DCT(A(k)))`` with Anscombe's transform ``A``
(:func:`~medrestore.physics.noise.anscombe`: the noise becomes ≈ N(0, 1) whatever the count level,
so σ = 1 is known) and its exact unbiased inverse (Mäkitalo & Foi, IEEE TIP 20(9), 2011). It is
the first step of ``medrestore superres --method dct-mlem``: the coarse counts are the one place
where the noise is still white and of known size.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from medrestore.core.errors import InputError
from medrestore.physics.noise import anscombe, inverse_anscombe

COUNT_DCT_BLOCK = 6
"""Side of the sliding DCT blocks of :func:`denoise_counts`."""


def mirror_pad(image: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror-pad every axis by ``width`` (replicate when an axis is too short to mirror)."""
    mode = "reflect" if min(image.shape) > width else "replicate"
    batch = image[None, None]
    if image.ndim == 2:
        return F.pad(batch, (width,) * 4, mode=mode)[0, 0]
    return F.pad(batch, (width,) * 6, mode=mode)[0, 0]


ODCT_THRESHOLD = 2.7
"""DCT coefficients below ``ODCT_THRESHOLD · σ`` are zeroed by :func:`odct_denoise`."""


@functools.lru_cache(maxsize=8)
def orthonormal_dct(n: int) -> torch.Tensor:
    """The ``n × n`` orthonormal DCT-II matrix ``C`` (rows: frequencies; ``C Cᵀ = I``), float64."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix


@functools.lru_cache(maxsize=4)
def dct_basis(ndim: int, block: int) -> torch.Tensor:
    """The ``block^ndim`` orthonormal DCT-II basis images as conv filters ``(block^ndim, 1, *[block] * ndim)``."""
    matrix = orthonormal_dct(block)
    if ndim == 2:
        basis = torch.einsum("ai,bj->abij", matrix, matrix)
    else:
        basis = torch.einsum("ai,bj,ck->abcijk", matrix, matrix, matrix)
    return basis.reshape(block**ndim, 1, *([block] * ndim))


def odct_denoise(image: torch.Tensor, sigma: float, threshold: float = ODCT_THRESHOLD, block: int = 3) -> torch.Tensor:
    """Oracle-DCT (overcomplete DCT hard-thresholding) estimate of a 2-D or 3-D image ``(*spatial)``.

    Every overlapping ``block^d`` block is transformed by the orthonormal DCT, its coefficients
    with ``|c| < threshold · σ`` (except the mean) are zeroed, and the blocks are inverse
    transformed and averaged with weights ``1 / (1 + kept coefficients)`` (module docstring).
    Mirror padding at the borders; same shape and dtype as ``image``.
    """
    if image.ndim not in (2, 3) or not image.is_floating_point():
        raise InputError(None, f"ODCT expects a real 2-D or 3-D float tensor, got {tuple(image.shape)} {image.dtype}")
    ndim, pad = image.ndim, block - 1
    basis = dct_basis(ndim, block).to(image.dtype).to(image.device)
    convolve, transpose = (F.conv2d, F.conv_transpose2d) if ndim == 2 else (F.conv3d, F.conv_transpose3d)
    padded = mirror_pad(image, pad)[None, None]
    coefficients = convolve(padded, basis)  # (1, block^d, *): every block's DCT
    keep = coefficients.abs() >= threshold * sigma
    keep[:, 0] = True
    weights = 1.0 / (1.0 + keep.sum(dim=1, keepdim=True).to(image.dtype))
    numerator = transpose(coefficients * keep * weights, basis)
    denominator = transpose(weights, torch.ones_like(basis[:1]))
    inner = (slice(None), slice(None)) + (slice(pad, -pad),) * ndim
    return (numerator / denominator)[inner][0, 0]


def denoise_counts(counts: torch.Tensor, block: int = COUNT_DCT_BLOCK, threshold: float = ODCT_THRESHOLD) -> torch.Tensor:
    """Poisson counts ``(h, w)`` (or ``(d, h, w)``) denoised: ``A⁻¹(DCT(A(k)))`` (module docstring).

    Args:
        counts: non-negative counts, any float dtype.
        block: DCT block side (6: chosen on validation phantoms and bone scans, ``benchmarks/README.md``).
        threshold: coefficients below ``threshold`` (σ = 1 after the transform) are zeroed.

    Returns:
        Non-negative estimate of the expected counts, same shape; float64 for float64 input, else float32.
    """
    dtype = torch.float64 if counts.dtype == torch.float64 else torch.float32
    return inverse_anscombe(odct_denoise(anscombe(counts.to(dtype)), 1.0, threshold=threshold, block=block))
