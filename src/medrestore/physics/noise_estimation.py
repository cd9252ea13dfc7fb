"""Noise level from the image itself, and the Rician bias of magnitude MR images.

Two estimators of the standard deviation ``σ`` of the Gaussian noise in each channel of a
magnitude MR image ``M = |ν + σ n₁ + iσ n₂|`` (Rician; Rayleigh where ``ν = 0``):

* :func:`background_sigma` — statistics of the signal-free background, found automatically
  (voxels whose local mean stays near the Rayleigh mean of the lowest histogram mode).
  In the background ``M ~ Rayleigh(σ)``: mode ``σ``, mean ``σ √(π/2)``, ``E[M²] = 2σ²``;
  the maximum-likelihood estimate is ``σ̂ = √(Σ M² / 2N)`` (Sijbers et al. 2007).
* :func:`wavelet_sigma` — Donoho's robust estimator ``σ̂ = median(|d|) / 0.6745`` on the
  finest diagonal wavelet sub-band ``d`` (``HH`` in 2-D, ``HHH`` in 3-D, Daubechies-2),
  restricted to the object where the Rician noise is close to Gaussian (Coupé et al. 2010).

:func:`estimate_sigma` picks the background estimate when the image has enough background
and falls back to the wavelet one otherwise (e.g. a zero-filled background).

For a series of volumes, :func:`temporal_sigma` bounds σ from above by the voxels' time courses (second differences in
time, where anatomy and drift cancel; the successive-difference idea of von Neumann 1941), which exposes spatial
estimates that read structure as noise.

Rician bias (the magnitude is biased upward at low SNR):

* :func:`rician_bias_correct` — ``ν̂ = √max(M² − 2σ², 0)`` (Gudbjartsson & Patz 1995), applied
  to an image or to a local mean of ``M²`` (the unbiased second moment).
* :func:`rician_mean` — ``E[M] = σ √(π/2) L½(−ν²/2σ²)``; :func:`rician_mean_inverse` inverts it
  (method of moments on the first moment, ``σ`` known).
* :func:`koay_basser` — ``σ`` and ``ν`` from the sample mean and standard deviation of a Rician
  sample by the fixed point of Koay & Basser (2006).

References:
    Gudbjartsson H, Patz S. The Rician distribution of noisy MRI data. MRM 34:910–914, 1995.
    Donoho DL, Johnstone IM. Ideal spatial adaptation by wavelet shrinkage. Biometrika 81, 1994.
    Koay CG, Basser PJ. Analytically exact correction scheme for signal extraction from noisy
        magnitude MR signals. JMR 179:317–322, 2006.
    Sijbers J, Poot D, den Dekker AJ, Pintjens W. Automatic estimation of the noise variance
        from the histogram of a magnitude MR image. Phys Med Biol 52:1335–1348, 2007.
    Coupé P, Manjón JV, Gedamu E, Arnold D, Robles M, Collins DL. Robust Rician noise
        estimation for MR images. Medical Image Analysis 14:483–493, 2010.
    von Neumann J, Kent RH, Bellinson HR, Hart BI. The mean square successive difference. Ann Math Stat 12:153–162,
        1941.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pywt
import scipy.ndimage
import scipy.special
import torch

from medrestore.core.errors import InputError

MAD_TO_SIGMA = 0.6744897501960817
"""``Φ⁻¹(3/4)``: the median of ``|N(0, 1)|``."""
MIN_BACKGROUND_FRACTION = 0.02
"""Below this fraction of background voxels :func:`estimate_sigma` uses the wavelet estimator."""
MIN_BACKGROUND_VOXELS = 500
RAYLEIGH_RATIO_LIMIT = 0.85
"""A Rayleigh sample has ``mean(M)² / mean(M²) = π/4 ≈ 0.785``; above this limit it is not background."""
MIN_SIDE = 4
"""Shortest side of a 2-D image or 3-D volume the estimators take whole. :func:`estimate_sigma` and
:func:`foreground_mask` take a 3-D stack of a few 2-D slices (one side shorter, e.g. a 3-slice fMRI run) slice by
slice along that side."""


@dataclasses.dataclass(frozen=True)
class BackgroundEstimate:
    """Background statistics of a magnitude image.

    Attributes:
        sigma: maximum-likelihood Rayleigh estimate ``√(mean(M²)/2)`` over the background.
        sigma_mean: ``mean(M) / √(π/2)`` over the background.
        sigma_mode: mode of the background histogram (``= σ`` for a Rayleigh law).
        mask: boolean background mask, the input's shape.
        fraction: background voxels / all voxels.
    """

    sigma: float
    sigma_mean: float
    sigma_mode: float
    mask: np.ndarray
    fraction: float


def _numpy(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``image`` as a NumPy array (a view where it can be)."""
    return image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)


def _as_array(image: torch.Tensor | np.ndarray, what: str = "image", keep_float32: bool = False) -> np.ndarray:
    """``image`` as a finite 2-D or 3-D float64 array (float32 kept as it is when ``keep_float32``)."""
    array = _numpy(image)
    if array.ndim not in (2, 3) or min(array.shape) < MIN_SIDE:
        raise InputError(None, f"{what} must be 2-D or 3-D with every side >= {MIN_SIDE}, got shape {array.shape}")
    if not (keep_float32 and array.dtype == np.float32):
        array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InputError(None, f"{what} holds NaN or infinite values")
    return array


def _histogram_mode(values: np.ndarray, upper: float, bins: int = 128) -> float:
    """Centre of the tallest bin of a lightly smoothed histogram of ``values`` in ``(0, upper]``."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, upper))
    smooth = scipy.ndimage.gaussian_filter1d(counts.astype(np.float64), 1.5)
    peak = int(np.argmax(smooth[1:])) + 1  # the first bin also holds exact zeros of masked scanners
    return float(0.5 * (edges[peak] + edges[peak + 1]))


def background_sigma(image: torch.Tensor | np.ndarray, smoothing: float = 2.0) -> BackgroundEstimate:
    """σ from the Rayleigh background of a magnitude image ``(*spatial)`` (2-D or 3-D).

    1. ``σ₀`` = mode of the histogram of the lower half of the non-zero values (the background
       peak of a head image; the Rayleigh mode is ``σ``), refined once on ``(0, 4σ₀]``.
    2. Background = voxels whose Gaussian-smoothed value (``smoothing`` voxels) is below
       ``σ₀(√(π/2) + 1)`` (the Rayleigh mean plus a margin far above its local spread),
       eroded by one voxel, excluding exact zeros (masked or padded regions).
    3. Check that it is noise: ``mean(M)² / mean(M²)`` must be near ``π/4`` (at most
       :data:`RAYLEIGH_RATIO_LIMIT`; signal pushes it towards 1).
    4. ``σ̂ = √(Σ M² / 2N)`` over the background (maximum likelihood for Rayleigh).

    Float32 images are not copied to float64 as a whole (only the values each step keeps), and
    a Fortran-ordered array (as nibabel reads NIfTI) is handled as its C-ordered transpose: every
    step is symmetric in the axes.

    Raises:
        InputError: no background (fewer than :data:`MIN_BACKGROUND_VOXELS` voxels, or not Rayleigh).
    """
    array, transposed = _c_ordered(_as_array(image, keep_float32=True))
    flat = array.ravel()
    positive = flat[flat > 0]
    if positive.size < MIN_BACKGROUND_VOXELS:
        raise InputError(None, "the image has too few non-zero voxels to find a noise background")
    lower = positive[positive <= _median(positive)].astype(np.float64)
    sigma0 = _histogram_mode(lower, float(lower.max()))
    sigma0 = _histogram_mode(positive[positive <= np.float64(4 * sigma0)].astype(np.float64), 4 * sigma0)  # float64 test
    local_mean = scipy.ndimage.gaussian_filter(array, smoothing, output=np.float64)  # as filtering a float64 copy
    mask = local_mean < sigma0 * (math.sqrt(math.pi / 2) + 1.0)
    del local_mean
    mask = scipy.ndimage.binary_erosion(mask, iterations=1) & (array > 0)
    count = int(mask.sum())
    if count < MIN_BACKGROUND_VOXELS:
        raise InputError(None, f"only {count} background voxels found; the noise cannot be estimated from the background")
    values = array[mask].astype(np.float64)
    ratio = float(values.mean() ** 2 / np.mean(values**2))
    if ratio > RAYLEIGH_RATIO_LIMIT:
        raise InputError(None, f"the darkest region is not Rayleigh noise (mean²/E[M²] = {ratio:.3f}, π/4 for pure noise)")
    sigma = float(np.sqrt(np.mean(values**2) / 2.0))
    sigma_mean = float(values.mean() / math.sqrt(math.pi / 2.0))
    sigma_mode = _histogram_mode(values, float(np.quantile(values, 0.99)))
    return BackgroundEstimate(sigma, sigma_mean, sigma_mode, mask.T if transposed else mask, count / array.size)


def _c_ordered(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """A Fortran-ordered array as its C-ordered transpose (a view), and whether it was transposed."""
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        return array.T, True
    return array, False


def _median(values: np.ndarray) -> float:
    """A threshold ``q`` with ``{v <= q} = {v <= np.quantile(values, 0.5)}``, for 1-D ``values``.

    For float32 values the lower middle order statistic: NumPy's median of an even count lies
    between the two middle values, and (computed in float64) never rounds onto the upper one, so
    the same values lie at or below it. Found by partition, without sorting or a float64 copy.
    """
    if values.dtype != np.float32:
        return float(np.quantile(values, 0.5))
    middle = (values.size - 1) // 2
    return float(np.partition(values, middle)[middle])


def wavelet_sigma(image: torch.Tensor | np.ndarray, mask: np.ndarray | None = None, wavelet: str = "db2") -> float:
    """Donoho's MAD estimator on the finest diagonal sub-band: ``σ̂ = median(|d|) / 0.6745``.

    Args:
        image: ``(*spatial)`` 2-D or 3-D.
        mask: optional boolean mask of the input's shape; only coefficients whose support
            centre lies in it are used (e.g. the object, where Rician ≈ Gaussian). Without a
            mask every coefficient counts (biased low by the Rayleigh background, whose
            standard deviation is ``σ √(2 − π/2) ≈ 0.655σ``).
        wavelet: PyWavelets name.

    Returns:
        The estimate in image units.
    """
    array = _as_array(image)
    key = "d" * array.ndim
    detail = pywt.dwtn(array, wavelet, mode="symmetric")[key]
    if mask is not None:
        if mask.shape != array.shape:
            raise InputError(None, f"mask shape {mask.shape} differs from the image shape {array.shape}")
        zoom = [d / s for d, s in zip(detail.shape, array.shape, strict=True)]
        small = scipy.ndimage.zoom(mask.astype(np.float32), zoom, order=0) > 0.5
        detail = detail[small]
        if detail.size < 64:
            raise InputError(None, "the mask holds too few voxels for a wavelet noise estimate")
    return float(np.median(np.abs(detail)) / MAD_TO_SIGMA)


def slice_axis(shape: tuple[int, ...]) -> int | None:
    """The axis of a 3-D ``shape`` that stacks a few 2-D slices: the one side shorter than :data:`MIN_SIDE` while
    the others are not; ``None`` for any other shape."""
    short = [axis for axis, side in enumerate(shape) if side < MIN_SIDE]
    return short[0] if len(shape) == 3 and len(short) == 1 else None


def _slices(image: torch.Tensor | np.ndarray, axis: int) -> list[np.ndarray]:
    """The 2-D slices of ``image`` along ``axis``, as arrays."""
    array = _numpy(image)
    return [np.take(array, index, axis=axis) for index in range(array.shape[axis])]


def foreground_mask(image: torch.Tensor | np.ndarray, sigma: float, snr: float = 5.0, smoothing: float = 1.0) -> np.ndarray:
    """Voxels whose smoothed magnitude exceeds ``snr · σ`` (where Rician ≈ Gaussian), filled and eroded; a stack of a
    few 2-D slices (:func:`slice_axis`) slice by slice."""
    axis = slice_axis(tuple(image.shape))
    if axis is not None:
        return np.stack([foreground_mask(plane, sigma, snr, smoothing) for plane in _slices(image, axis)], axis=axis)
    array, transposed = _c_ordered(_as_array(image, keep_float32=True))
    mask = scipy.ndimage.gaussian_filter(array, smoothing, output=np.float64) > snr * sigma
    mask = scipy.ndimage.binary_erosion(mask, iterations=2)
    return mask.T if transposed else mask


def estimate_sigma(image: torch.Tensor | np.ndarray, method: str = "auto") -> float:
    """σ of a magnitude image ``(*spatial)``: ``background``, ``wavelet`` or ``auto``.

    ``auto``: the background estimate when at least :data:`MIN_BACKGROUND_FRACTION` of the
    image is background, else the wavelet estimate on the object (the foreground found with
    a first, unmasked wavelet estimate).

    A 3-D stack of a few 2-D slices (:func:`slice_axis`, e.g. a 3-slice fMRI run, whose slices are too far apart for a
    3-D estimate) gets the median of its slices' estimates.
    """
    if method not in ("auto", "background", "wavelet"):
        raise InputError(None, f"unknown noise estimator {method!r}; use auto, background or wavelet")
    axis = slice_axis(tuple(image.shape))
    if axis is not None:
        return float(np.median([estimate_sigma(plane, method) for plane in _slices(image, axis)]))
    if method in ("auto", "background"):
        try:
            estimate = background_sigma(image)
            if method == "background" or estimate.fraction >= MIN_BACKGROUND_FRACTION:
                return estimate.sigma
        except InputError:
            if method == "background":
                raise
    first = wavelet_sigma(image)
    mask = foreground_mask(image, first)
    return wavelet_sigma(image, mask) if mask.sum() >= 1024 else first


TEMPORAL_MIN_VOLUMES = 3
"""Volumes a series needs for :func:`temporal_sigma` (one second difference)."""
TEMPORAL_MIN_SNR = 5.0
""":func:`temporal_sigma` pools the voxels whose temporal mean is at least this many σ: below it a Rician magnitude
varies less than σ (``(2 − π/2)σ²`` at no signal), which would pull the bound below the thermal σ."""


def temporal_sigma(series: torch.Tensor | np.ndarray, mask: np.ndarray, min_snr: float = TEMPORAL_MIN_SNR) -> float:
    """σ bound from the time courses of a series ``(T, *spatial)`` inside ``mask`` ``(*spatial)``, ``T >= 3``.

    The noise of each volume is independent of the others, so the second differences
    ``e_t = y_{t+2} − 2 y_{t+1} + y_t`` of a voxel hold noise of variance ``6σ²`` (Gaussian where the Rician SNR is high),
    while the anatomy and any linear drift cancel exactly (nothing is fitted, so short series are not biased low).
    Pooled over the voxels of ``mask``::

        σ̂_t = median |e_t| / (Φ⁻¹(3/4) · √6)

    then again over the voxels of ``mask`` whose temporal mean is at least ``min_snr · σ̂_t`` (twice; the first pass
    when fewer than 100 voxels are that bright), where the Rician noise is close to Gaussian of deviation σ.
    Every other change between volumes (physiology, motion, signal of interest) adds to ``e_t``, so ``σ̂_t`` bounds the
    thermal σ from above. It exposes spatial estimates that read structure as noise (:func:`wavelet_sigma` on small,
    coarse slices with no background).

    Raises:
        InputError: fewer than :data:`TEMPORAL_MIN_VOLUMES` volumes, or a mask of another shape or empty.
    """
    array = _numpy(series)
    if array.ndim < 2 or array.shape[0] < TEMPORAL_MIN_VOLUMES:
        raise InputError(None, f"a temporal noise estimate needs a series (T, *spatial) with T >= {TEMPORAL_MIN_VOLUMES}, got {array.shape}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != array.shape[1:] or not mask.any():
        raise InputError(None, f"temporal noise estimate: the mask {mask.shape} must be non-empty and of the volumes' shape {array.shape[1:]}")
    courses = array[:, mask].astype(np.float64)  # (T, voxels)
    second = np.abs(np.diff(courses, n=2, axis=0))
    mean = courses.mean(axis=0)
    sigma = float(np.median(second) / (MAD_TO_SIGMA * math.sqrt(6.0)))
    for _ in range(2):
        bright = mean >= min_snr * sigma
        if int(bright.sum()) < 100:
            break
        sigma = float(np.median(second[:, bright]) / (MAD_TO_SIGMA * math.sqrt(6.0)))
    return sigma


# -- Rician bias ------------------------------------------------------------------------------
def rician_bias_correct(second_moment: torch.Tensor, sigma: float) -> torch.Tensor:
    """``ν̂ = √max(S − 2σ², 0)`` where ``S`` is ``M²`` or a (local) mean of ``M²``.

    ``E[M²] = ν² + 2σ²`` holds exactly for the Rice law, so with an unbiased ``S`` this is the
    moment estimate of the noise-free magnitude (Gudbjartsson & Patz 1995).

    Args:
        second_moment: ``M²`` (or its local mean), any shape, float.
        sigma: noise standard deviation per channel.
    """
    return (second_moment - 2.0 * float(sigma) ** 2).clamp_min(0.0).sqrt()


def _laguerre_half(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``L½(x)`` for ``x <= 0``: ``e^{x/2}[(1 − x) I₀(−x/2) − x I₁(−x/2)]`` with scaled Bessel functions."""
    half = -x / 2.0
    if isinstance(x, torch.Tensor):
        return (1.0 - x) * torch.special.i0e(half) - x * torch.special.i1e(half)
    return (1.0 - x) * scipy.special.i0e(half) - x * scipy.special.i1e(half)


def rician_mean(nu: np.ndarray | float | torch.Tensor, sigma: float) -> np.ndarray | torch.Tensor:
    """``E[M] = σ √(π/2) L½(−ν²/2σ²)`` of a Rice law (``σ √(π/2)`` for Rayleigh, ``→ ν`` at high SNR).

    NumPy arrays and numbers give float64 arrays; a torch tensor gives a tensor of its own dtype and device.
    """
    if not isinstance(nu, torch.Tensor):
        nu = np.asarray(nu, dtype=np.float64)
    return sigma * math.sqrt(math.pi / 2.0) * _laguerre_half(-(nu**2) / (2.0 * sigma**2))


def rician_mean_inverse(mean: np.ndarray | float, sigma: float) -> np.ndarray:
    """The ``ν >= 0`` with ``rician_mean(ν, σ) = mean`` (0 below the Rayleigh mean ``σ √(π/2)``).

    ``rician_mean`` is increasing in ``ν``; it is inverted by monotone interpolation on a fine
    grid of SNRs (relative error < 1e-6) and by ``ν ≈ √(m² − σ²)`` beyond SNR 40, where
    ``E[M] = ν + σ²/2ν + O(ν⁻³)``.
    """
    mean = np.asarray(mean, dtype=np.float64) / sigma
    snr = np.concatenate([np.linspace(0.0, 2.0, 2001), np.linspace(2.0, 40.0, 8001)[1:]])
    table = rician_mean(snr, 1.0)
    high = np.sqrt(np.maximum(mean**2 - 1.0, 0.0))
    result = np.where(mean > table[-1], high, np.interp(mean, table, snr, left=0.0))
    return result * sigma


def _koay_xi(theta: np.ndarray) -> np.ndarray:
    """Koay–Basser correction factor ``ξ(θ) = Var[M]/σ²`` of a Rice law with SNR ``θ = ν/σ``."""
    quarter = theta**2 / 4.0
    bessel = (2.0 + theta**2) * scipy.special.i0e(quarter) + theta**2 * scipy.special.i1e(quarter)
    return 2.0 + theta**2 - (math.pi / 8.0) * bessel**2


def koay_basser(mean: float, std: float, iterations: int = 500, tolerance: float = 1e-10) -> tuple[float, float]:
    """``(ν, σ)`` of a Rice law from the sample mean and standard deviation of its magnitudes.

    Fixed point ``θ = g(θ) = √(ξ(θ)(1 + r²) − 2)``, ``r = mean/std``, started at
    ``θ = √(r² − 0.4292...)``-like values (here ``r``); then ``σ = std/√ξ(θ)``, ``ν = θσ``.
    Below the Rayleigh ratio ``r < √(π/(4 − π)) ≈ 1.913`` the signal is 0 and ``σ`` is the
    Rayleigh estimate ``mean/√(π/2)`` (Koay & Basser 2006).
    """
    if std <= 0 or mean <= 0:
        raise InputError(None, f"Koay–Basser needs a positive mean and standard deviation, got {mean}, {std}")
    ratio = mean / std
    if ratio <= math.sqrt(math.pi / (4.0 - math.pi)):
        return 0.0, mean / math.sqrt(math.pi / 2.0)
    theta = ratio
    for _ in range(iterations):
        updated = math.sqrt(max(float(_koay_xi(np.asarray(theta))) * (1.0 + ratio**2) - 2.0, 0.0))
        if abs(updated - theta) < tolerance:
            theta = updated
            break
        theta = updated
    sigma = std / math.sqrt(float(_koay_xi(np.asarray(theta))))
    return theta * sigma, sigma
