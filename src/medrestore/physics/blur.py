"""Gaussian blur, anti-aliased downsampling and upsampling of the last ``spatial_ndim`` axes.

Tensors may have any leading (batch, channel, time) axes; the last ``spatial_ndim`` (1–3) axes
are spatial. Widths are in input pixels. Blurs are separable, with a sampled Gaussian kernel
``w(o) ∝ exp(−o²/2σ²)`` normalised to sum 1, truncated at ``round(4σ)`` pixels, and
half-sample symmetric ("reflect") padding ``d c b a | a b c d | d c b a`` of any width, so a
constant image stays exactly constant and :func:`gaussian_blur` equals
``scipy.ndimage.gaussian_filter(x, σ, mode="reflect", truncate=4)``.

Geometry of :func:`blur_downsample` by an integer factor ``k``: output voxel ``i`` is the
block of input voxels ``k·i … k·i + k − 1`` and sits at its centre, input index
``k·i + (k − 1)/2`` (a half-integer when ``k`` is even; the kernel is then sampled at
half-integer offsets, so no half-pixel shift is introduced). The output has ``⌊N/k⌋``
samples per axis (a trailing partial block is dropped). :func:`downsample_affine` gives the
matching voxel→world matrix; :func:`upsample` (``align_corners=False``) and
:func:`upsample_affine` use the same block-centre convention in reverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as functional

from medrestore.core.errors import ConfigError, InputError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""``FWHM = 2√(2 ln 2) · σ ≈ 2.3548 σ`` for a Gaussian."""

TRUNCATE = 4.0
"""Kernel half-width in standard deviations (as scipy.ndimage's default)."""

UPSAMPLE_MODES = ("nearest", "bilinear", "bicubic")


def fwhm_to_sigma(fwhm: float) -> float:
    """Standard deviation of a Gaussian with full width at half maximum ``fwhm``."""
    return float(fwhm) / FWHM_PER_SIGMA


def sigma_to_fwhm(sigma: float) -> float:
    """Full width at half maximum of a Gaussian with standard deviation ``sigma``."""
    return float(sigma) * FWHM_PER_SIGMA


def default_fwhm(factor: int) -> float:
    """Default anti-aliasing width for downsampling by ``factor``: ``FWHM = factor`` input pixels.

    The low-resolution voxel is modelled as a Gaussian point-spread function whose FWHM equals
    its own size (the usual slice-profile / detector-pixel model of a coarser acquisition),
    i.e. ``σ = factor / (2√(2 ln 2)) ≈ 0.4247·factor``. Its transfer function at the new
    Nyquist frequency ``1/(2·factor)`` cycles per input pixel is
    ``exp(−2π²σ²f²) = exp(−π²/(16 ln 2)) ≈ 0.41`` whatever the factor, a stronger
    anti-aliasing than scikit-image's ``σ = (factor − 1)/2`` (≈ 0.73 at factor 2).
    """
    return float(factor)


def _check_spatial(x: torch.Tensor, spatial_ndim: int) -> None:
    if spatial_ndim not in (1, 2, 3):
        raise ConfigError(f"spatial_ndim must be 1, 2 or 3, got {spatial_ndim}")
    if x.ndim < spatial_ndim:
        raise InputError(None, f"tensor of shape {tuple(x.shape)} has fewer than {spatial_ndim} spatial axes")
    if not (x.is_floating_point() or x.is_complex()):
        raise InputError(None, f"expected a floating-point or complex tensor, got dtype {x.dtype}")


def _width_sigma(fwhm: float | None, sigma: float | None) -> float:
    if (fwhm is None) == (sigma is None):
        raise ConfigError("give exactly one of fwhm or sigma")
    value = fwhm_to_sigma(fwhm) if fwhm is not None else float(sigma)  # type: ignore[arg-type]
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"blur width must be a finite number >= 0, got fwhm={fwhm!r}, sigma={sigma!r}")
    return value


def reflect_indices(length: int, before: int, after: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices into an axis of ``length`` that pad it half-sample symmetrically by any amount."""
    positions = torch.arange(-before, length + after, device=device)
    folded = torch.remainder(positions, 2 * length)
    return torch.where(folded >= length, 2 * length - 1 - folded, folded)


def gaussian_taps(sigma: float, centre_offset: float, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """Normalised Gaussian weights at offsets ``o = m − centre_offset`` and the first index ``m``.

    ``centre_offset`` is 0 (taps at integers) or ½ (taps at half-integers); the taps cover
    ``|o| ≤ round(4σ) + centre_offset``. Returns ``(weights, first_m)``.
    """
    radius = int(TRUNCATE * sigma + 0.5)
    first = -radius
    last = radius + (1 if centre_offset else 0)
    offsets = torch.arange(first, last + 1, dtype=torch.float64) - centre_offset
    if sigma == 0:
        weights = (offsets == 0).to(torch.float64)
    else:
        weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).to(dtype), first


def _filter_last_axis(x: torch.Tensor, sigma: float, factor: int) -> torch.Tensor:
    """Blur the last axis with a Gaussian and keep block centres ``k·i + (k−1)/2`` (``k = factor``)."""
    if x.is_complex():
        return torch.complex(_filter_last_axis(x.real, sigma, factor), _filter_last_axis(x.imag, sigma, factor))
    length = x.shape[-1]
    outputs = length // factor
    half_block = (factor - 1) / 2
    weights, first = gaussian_taps(sigma, half_block - math.floor(half_block), x.dtype)
    first += math.floor(half_block)
    before = max(0, -first)
    after = max(0, factor * (outputs - 1) + first + weights.numel() - length)
    index = reflect_indices(length, before, after, x.device)
    rows = x.reshape(-1, 1, length).index_select(-1, index)
    start = first + before
    filtered = functional.conv1d(rows[..., start:], weights.to(x.device).view(1, 1, -1), stride=factor)
    return filtered[..., :outputs].reshape(*x.shape[:-1], outputs)


def _separable(x: torch.Tensor, spatial_ndim: int, sigma: float, factor: int) -> torch.Tensor:
    result = x
    for axis in range(-spatial_ndim, 0):
        moved = result.movedim(axis, -1)
        result = _filter_last_axis(moved, sigma, factor).movedim(-1, axis)
    return result.contiguous()


def gaussian_blur(
    x: torch.Tensor, fwhm: float | None = None, sigma: float | None = None, spatial_ndim: int = 2
) -> torch.Tensor:
    """Separable Gaussian blur of the last ``spatial_ndim`` axes (reflect padding).

    ``y = x ⊛ g_σ`` with ``g_σ(o) ∝ exp(−o²/2σ²)`` sampled on the pixel grid and normalised,
    so the mean of an image is kept away from its edges and a constant stays constant.

    Args:
        x: float32/float64/complex tensor ``(*batch, *spatial)``.
        fwhm: full width at half maximum in pixels (give this or ``sigma``).
        sigma: standard deviation in pixels; ``0`` returns a copy.
        spatial_ndim: number of trailing spatial axes (1–3).

    Returns:
        A new tensor, same shape and dtype as ``x``.

    Example:
        >>> delta = torch.zeros(1, 33, dtype=torch.float64); delta[0, 16] = 1
        >>> blurred = gaussian_blur(delta, sigma=2.0, spatial_ndim=1)
        >>> blurred.shape, round(float(blurred.sum()), 12)
        (torch.Size([1, 33]), 1.0)
    """
    _check_spatial(x, spatial_ndim)
    return _separable(x, spatial_ndim, _width_sigma(fwhm, sigma), 1)


def _check_factor(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ConfigError(f"factor must be an integer >= 1, got {factor!r}")
    return int(factor)


def blur_downsample(x: torch.Tensor, factor: int, fwhm: float | None = None, spatial_ndim: int = 2) -> torch.Tensor:
    """Anti-aliased downsampling: Gaussian blur, then keep one sample per ``factor``-wide block.

    ``y[i] = Σ_n w(n − (k·i + (k−1)/2)) x[n]`` along each spatial axis (``k = factor``), the
    Gaussian blur evaluated at block centres (see the module docstring).

    Args:
        x: float32/float64/complex tensor ``(*batch, *spatial)``.
        factor: integer downsampling factor ``k >= 1`` (same on every spatial axis).
        fwhm: blur FWHM in input pixels, ``> 0``; default :func:`default_fwhm` (= ``k``).
        spatial_ndim: number of trailing spatial axes (1–3).

    Returns:
        Tensor ``(*batch, *⌊spatial/k⌋)`` of the input dtype.
    """
    _check_spatial(x, spatial_ndim)
    factor = _check_factor(factor)
    fwhm = default_fwhm(factor) if fwhm is None else float(fwhm)
    if not math.isfinite(fwhm) or fwhm <= 0:
        raise ConfigError(f"fwhm must be a finite number > 0, got {fwhm!r}")
    too_small = [n for n in x.shape[-spatial_ndim:] if n < factor]
    if too_small:
        raise InputError(None, f"spatial shape {tuple(x.shape[-spatial_ndim:])} is smaller than the factor {factor}")
    return _separable(x, spatial_ndim, fwhm_to_sigma(fwhm), factor)


def _upsample_last_axis(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    if x.is_complex():
        return torch.complex(_upsample_last_axis(x.real, factor, mode), _upsample_last_axis(x.imag, factor, mode))
    length = x.shape[-1]
    rows = x.reshape(-1, 1, 1, length)
    torch_mode = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}[mode]
    corners = None if mode == "nearest" else False
    result = functional.interpolate(rows, size=(1, length * factor), mode=torch_mode, align_corners=corners)
    return result.reshape(*x.shape[:-1], length * factor)


def upsample(x: torch.Tensor, factor: int, mode: str = "bicubic", spatial_ndim: int = 2) -> torch.Tensor:
    """Interpolate the last ``spatial_ndim`` axes onto a grid ``factor`` times finer.

    Separable 1-D passes of torch's interpolation with ``align_corners=False`` (new sample
    ``j`` at old index ``(j + ½)/k − ½``), which for these tensor-product kernels equals the
    2-D/3-D interpolation; ``"bicubic"`` is Keys' cubic convolution (a = −0.75, may overshoot
    near edges) and works in 1–3 dimensions, ``"bilinear"`` is (bi/tri)linear, ``"nearest"``
    repeats each sample ``factor`` times.

    Returns:
        Tensor ``(*batch, *(spatial·k))`` of the input dtype.
    """
    _check_spatial(x, spatial_ndim)
    factor = _check_factor(factor)
    if mode not in UPSAMPLE_MODES:
        raise ConfigError(f"upsampling mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    result = x
    for axis in range(-spatial_ndim, 0):
        result = _upsample_last_axis(result.movedim(axis, -1), factor, mode).movedim(-1, axis)
    return result.contiguous()


def _scaled_affine(
    affine: np.ndarray, spatial_ndim: int, column_scale: float, origin_shift: float, axes: Sequence[int] | None = None
) -> np.ndarray:
    matrix = np.array(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise InputError(None, f"affine must be 4x4, got shape {matrix.shape}")
    scaled = list(range(spatial_ndim)) if axes is None else list(axes)
    columns = matrix[:3, scaled].copy()
    result = matrix.copy()
    result[:3, 3] = matrix[:3, 3] + columns.sum(axis=1) * origin_shift
    result[:3, scaled] = columns * column_scale
    return result


def downsample_affine(affine: np.ndarray, factor: int, spatial_ndim: int, axes: Sequence[int] | None = None) -> np.ndarray:
    """Voxel→world matrix after :func:`blur_downsample` by ``factor``.

    Spatial columns (or only those of ``axes``, e.g. the in-plane axes of a stack of planar frames) scale by
    ``k``; the origin moves to the first block's centre, input index ``(k − 1)/2`` on every scaled axis, so each
    output voxel keeps its world position.
    """
    factor = _check_factor(factor)
    return _scaled_affine(affine, spatial_ndim, float(factor), (factor - 1) / 2, axes)


def upsample_affine(affine: np.ndarray, factor: int, spatial_ndim: int, axes: Sequence[int] | None = None) -> np.ndarray:
    """Voxel→world matrix after :func:`upsample` by ``factor`` (inverse of :func:`downsample_affine`)."""
    factor = _check_factor(factor)
    return _scaled_affine(affine, spatial_ndim, 1.0 / factor, (1 - factor) / (2 * factor), axes)

