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
ANSCOMBE_SIGMA_PATCH = 4
"""Side of the patches whose covariance :func:`anscombe_sigma` takes."""
ANSCOMBE_SIGMA_MIN_COUNTS = 20.0
""":func:`anscombe_sigma` uses the patches whose every pixel holds at least this many counts (Anscombe's
transform of Poisson counts has variance ≈ 1 from about 4 counts up; 20 keeps a margin)."""
ANSCOMBE_SIGMA_MIN_FWHM = 1.5
"""Least system-response FWHM, in coarse pixels, on which :func:`count_noise_sigma` measures the noise."""


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


def anscombe_sigma(counts: torch.Tensor, min_counts: float = ANSCOMBE_SIGMA_MIN_COUNTS, patch: int = ANSCOMBE_SIGMA_PATCH) -> float | None:
    """The noise level of ``A(k)`` measured on counts ``k (h, w)`` itself, or ``None`` where too few pixels tell.

    ``σ̂² = λ_min(Cov(P))``: the smallest eigenvalue of the covariance of every ``patch × patch`` patch ``P`` of
    Anscombe's transform in which each pixel holds at least ``min_counts`` counts (Pyatykh, Hesser & Zheng,
    "Image noise level estimation by principal component analysis", IEEE TIP 22(2):687–699, 2013, without
    their patch selection). White noise adds ``σ²`` to every direction of patch space while a band-limited
    image lies in a few smooth directions, so the least direction holds noise alone; there the transform of
    Poisson counts has variance within a few % of 1, and over-dispersed counts of variance ``F`` times their
    mean (:func:`~medrestore.physics.noise.super_poisson_counts`) give ``σ ≈ √F``. Biased low by a few % on
    small images (the least eigenvalue of a sample covariance). ``None`` below ``10 · patch²`` patches.
    """
    if counts.ndim != 2:
        raise InputError(None, f"the noise of planar counts is measured on a 2-D image, got shape {tuple(counts.shape)}")
    array = counts.detach().to(torch.float64).cpu()
    if min(array.shape) < patch:
        return None
    patches = anscombe(array).unfold(0, patch, 1).unfold(1, patch, 1).reshape(-1, patch * patch)
    least = array.unfold(0, patch, 1).unfold(1, patch, 1).reshape(-1, patch * patch).amin(dim=1)
    patches = patches[least >= min_counts]
    if patches.shape[0] < 10 * patch * patch:
        return None
    centred = patches - patches.mean(dim=0)
    covariance = centred.T @ centred / (patches.shape[0] - 1)
    return float(torch.linalg.eigvalsh(covariance)[0].clamp(min=0.0).sqrt())


def count_noise_sigma(counts: torch.Tensor, response_fwhm: float | None) -> tuple[float, float | None]:
    """``(σ used, σ̂)``: the noise level :func:`denoise_counts` thresholds at, ``max(1, σ̂)`` of :func:`anscombe_sigma`.

    Args:
        counts: coarse counts ``(h, w)``.
        response_fwhm: FWHM of the system response in *coarse* pixels (``None``: unknown).

    The estimate needs an image whose finest patch directions hold no structure: a response of at least
    :data:`ANSCOMBE_SIGMA_MIN_FWHM` pixels (a Gaussian's transfer at the Nyquist frequency ``exp(−π²s²/2)``,
    ``s = FWHM / 2.355``, is then below 0.13); on a sharper (or unknown) response σ̂ measures edges, and it is
    not made (``σ̂ = None``). Poisson counting noise is the least a camera adds (``σ = 1`` after the
    transform): an estimate below it is the estimator's small-sample bias, and a missing one keeps the
    Poisson value.
    """
    if response_fwhm is None or response_fwhm < ANSCOMBE_SIGMA_MIN_FWHM:
        return 1.0, None
    estimate = anscombe_sigma(counts)
    return (1.0 if estimate is None else max(1.0, estimate)), estimate


def denoise_counts(
    counts: torch.Tensor, block: int = COUNT_DCT_BLOCK, threshold: float = ODCT_THRESHOLD, sigma: float = 1.0
) -> torch.Tensor:
    """Poisson counts ``(h, w)`` (or ``(d, h, w)``) denoised: ``A⁻¹(DCT(A(k)))`` (module docstring).

    Args:
        counts: non-negative counts, any float dtype.
        block: DCT block side (6: chosen on validation phantoms and bone scans, ``benchmarks/README.md``).
        threshold: coefficients below ``threshold · sigma`` are zeroed.
        sigma: noise level after the transform (1 for Poisson counts; :func:`count_noise_sigma` measures it).

    Returns:
        Non-negative estimate of the expected counts, same shape; float64 for float64 input, else float32.
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(None, f"the noise level sigma must be a finite number > 0, got {sigma!r}")
    dtype = torch.float64 if counts.dtype == torch.float64 else torch.float32
    return inverse_anscombe(odct_denoise(anscombe(counts.to(dtype)), sigma, threshold=threshold, block=block))
