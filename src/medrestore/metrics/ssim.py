"""Structural similarity (SSIM), written once in torch for metrics (float64) and losses (autograd).

For images ``x`` (prediction) and ``y`` (reference) and a normalised window ``w``
(Wang et al. 2004, Eq. 13; as ``skimage.metrics.structural_similarity``)::

    μx = w ⋆ x,  μy = w ⋆ y
    σx² = c·(w ⋆ x² − μx²),  σy² = c·(w ⋆ y² − μy²),  σxy = c·(w ⋆ xy − μx μy)
    SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))
    C1 = (K1 L)²,  C2 = (K2 L)²

with ``L`` the data range and ``c = n/(n−1)`` (``n`` = voxels in the window) when the sample
covariance is asked for, else ``c = 1`` (Wang et al.). ``⋆`` is a separable correlation with
``'reflect'`` borders exactly as SciPy's ``ndimage`` filters (``d c b a | a b c d | d c b a``).
The window is either a Gaussian of standard deviation ``σ`` truncated at ``3.5 σ`` (radius
``int(3.5 σ + 0.5)``, 11 taps for σ = 1.5) or a uniform box of ``win_size`` taps. The mean SSIM
averages the map over the interior, dropping ``(window_size − 1) // 2`` voxels at each border,
as skimage does; the result matches skimage 0.26 to floating-point rounding.

Speed: along an axis of at most :data:`BANDED_MAX_LENGTH` voxels, a tensor without gradients
(the metrics) is filtered as one matrix product with the axis's banded correlation matrix
(:func:`reflect_band_matrix`, borders folded in), which BLAS runs far closer to the memory's speed
than one pass per tap, and the formula above is evaluated in buffers it owns (:func:`_ssim_in_place`,
the same operations in the same order); tensors carrying gradients (the losses) keep the tap sums
and fresh tensors. Both give the same values to floating-point rounding
(``benchmarks/viewer-metrics.md`` times them against skimage).

References:
    Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 13(4):600–612, 2004.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike, check_same_shape, prepare_mask, prepare_pair

GAUSSIAN_TRUNCATE = 3.5
"""Gaussian windows stop at ``GAUSSIAN_TRUNCATE · σ`` (skimage's choice: 11 taps for σ = 1.5)."""
BANDED_MAX_LENGTH = 512
"""Longest axis filtered as a banded matrix product (its ``length²`` entries stay small)."""


@dataclasses.dataclass(frozen=True)
class SSIMOptions:
    """How SSIM is computed (the window and the constants).

    Attributes:
        window: ``"gaussian"`` (σ = ``sigma``, truncated at 3.5 σ) or ``"uniform"`` (``win_size`` taps).
        sigma: standard deviation of the Gaussian window, in voxels.
        win_size: side of the uniform window (odd); ignored for the Gaussian window.
        k1: constant of the luminance term, ``C1 = (k1·L)²``.
        k2: constant of the contrast–structure term, ``C2 = (k2·L)²``.
        use_sample_covariance: normalise (co)variances by ``n − 1`` instead of ``n``.
    """

    window: Literal["gaussian", "uniform"] = "gaussian"
    sigma: float = 1.5
    win_size: int = 7
    k1: float = 0.01
    k2: float = 0.03
    use_sample_covariance: bool = False

    def __post_init__(self) -> None:
        if self.window not in ("gaussian", "uniform"):
            raise InputError(None, f"unknown SSIM window {self.window!r}; expected 'gaussian' or 'uniform'")
        if self.window == "gaussian" and not self.sigma > 0:
            raise InputError(None, f"SSIM sigma must be positive, got {self.sigma}")
        if self.window == "uniform" and (self.win_size < 1 or self.win_size % 2 == 0):
            raise InputError(None, f"SSIM win_size must be a positive odd number, got {self.win_size}")
        if self.k1 < 0 or self.k2 < 0:
            raise InputError(None, f"SSIM constants must not be negative, got k1={self.k1}, k2={self.k2}")

    @property
    def window_size(self) -> int:
        """Taps of the window along each axis (``2·int(3.5σ + 0.5) + 1`` for the Gaussian)."""
        if self.window == "gaussian":
            return 2 * int(GAUSSIAN_TRUNCATE * self.sigma + 0.5) + 1
        return self.win_size

    def kernel(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The normalised 1-D window, shape ``(window_size,)``; the N-D window is its outer product."""
        size = self.window_size
        if self.window == "uniform":
            return torch.full((size,), 1.0 / size, dtype=dtype, device=device)
        radius = (size - 1) // 2
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
        weights = torch.exp(-0.5 * (offsets / self.sigma) ** 2)
        return (weights / weights.sum()).to(dtype=dtype, device=device)


def _reflect_indices(length: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices ``[-radius, length + radius)`` folded back with SciPy's ``'reflect'`` rule."""
    positions = torch.arange(-radius, length + radius, device=device)
    period = 2 * length
    folded = positions.remainder(period)
    return torch.where(folded >= length, period - 1 - folded, folded)


def reflect_band_matrix(length: int, kernel: torch.Tensor) -> torch.Tensor:
    """The correlation of a line of ``length`` samples with the odd 1-D ``kernel`` under SciPy's ``'reflect'``
    borders, as a ``(length, length)`` matrix ``M``: ``filtered = M @ line``. Row ``i`` holds the taps at the
    (folded) columns ``i − r … i + r``; taps folding onto the same column add up."""
    radius = (kernel.numel() - 1) // 2
    columns = _reflect_indices(length, radius, kernel.device)
    rows = torch.arange(length, device=kernel.device)
    matrix = torch.zeros(length, length, dtype=kernel.dtype, device=kernel.device)
    for tap in range(kernel.numel()):
        matrix.index_put_((rows, columns[tap : tap + length]), kernel[tap].expand(length), accumulate=True)
    return matrix


def separable_filter(volume: torch.Tensor, kernel: torch.Tensor, spatial_ndim: int) -> torch.Tensor:
    """Correlate the last ``spatial_ndim`` axes of ``volume`` with the 1-D ``kernel`` (odd length).

    Borders use SciPy's ``'reflect'`` mode, so this equals ``scipy.ndimage.correlate1d`` applied
    along each axis in turn. Differentiable; keeps dtype, device and shape. Without gradients an
    axis of at most :data:`BANDED_MAX_LENGTH` voxels is one product with :func:`reflect_band_matrix`
    (module docstring, Speed); otherwise the taps are accumulated in place (no temporary per tap).
    """
    weights = kernel.tolist()
    filtered = volume
    banded = not (volume.requires_grad and torch.is_grad_enabled())
    for axis in range(volume.ndim - spatial_ndim, volume.ndim):
        length = filtered.shape[axis]
        if banded and length <= BANDED_MAX_LENGTH:
            matrix = reflect_band_matrix(length, kernel)
            lead, rest = filtered.shape[:axis], filtered.shape[axis + 1 :]
            if rest:  # (…, length, rest) → M @ (…, length, Π rest): the axis becomes the matrix's rows, no copy
                filtered = torch.matmul(matrix, filtered.reshape(*lead, length, -1)).reshape(filtered.shape)
            else:
                filtered = torch.matmul(filtered, matrix.T)
            continue
        padded = filtered.index_select(axis, _reflect_indices(length, (len(weights) - 1) // 2, filtered.device))
        total = padded.narrow(axis, 0, length) * weights[0]
        for tap in range(1, len(weights)):
            total.add_(padded.narrow(axis, tap, length), alpha=weights[tap])
        filtered = total
    return filtered


def ssim_slice_axis(shape: tuple[int, ...], window_size: int) -> int | None:
    """Where 3-D SSIM does not fit a volume ``(*batch, a, b, c)`` (a side shorter than ``window_size``): the axis of
    its shortest side, across which it is scored as 2-D slices (move that axis before the other two, e.g. with
    ``movedim(axis, -3)``); ``None`` when every side fits or ``shape`` has fewer than 3 axes. A stack of a few
    thick slices is thus scored slice by slice in its own plane, not across the slices."""
    if len(shape) < 3 or min(shape[-3:]) >= window_size:
        return None
    return len(shape) - 3 + min(range(3), key=lambda index: shape[-3 + index])


def structural_similarity_map(
    prediction: torch.Tensor,
    reference: torch.Tensor,
    data_range: float | torch.Tensor,
    options: SSIMOptions = SSIMOptions(),
    spatial_ndim: int = 2,
) -> torch.Tensor:
    """Per-voxel SSIM of two tensors, shape ``(*batch, *spatial)`` → same shape.

    The last ``spatial_ndim`` axes are filtered; leading axes are independent images. Keeps the
    inputs' floating dtype and autograd graph (the building block of :mod:`medrestore.losses`).

    Raises:
        InputError: mismatched shapes, too few axes, or a spatial axis shorter than the window.
    """
    check_same_shape(prediction, reference)
    if spatial_ndim < 1 or prediction.ndim < spatial_ndim:
        shape = tuple(prediction.shape)
        raise InputError(None, f"SSIM over {spatial_ndim} spatial axes needs as many axes, got shape {shape}")
    size = options.window_size
    spatial_shape = tuple(prediction.shape[-spatial_ndim:])
    if min(spatial_shape) < size:
        raise InputError(None, f"image of spatial shape {spatial_shape} is smaller than the {size}-voxel SSIM window")
    kernel = options.kernel(prediction.dtype, prediction.device)
    window_voxels = size**spatial_ndim
    covariance_norm = window_voxels / (window_voxels - 1) if options.use_sample_covariance else 1.0
    c1 = (options.k1 * data_range) ** 2
    c2 = (options.k2 * data_range) ** 2
    if torch.is_grad_enabled() and (prediction.requires_grad or reference.requires_grad):
        products = [prediction * prediction, reference * reference, prediction * reference]
        stacked = torch.stack([prediction, reference, *products])
        mean_x, mean_y, mean_xx, mean_yy, mean_xy = separable_filter(stacked, kernel, spatial_ndim).unbind(0)
        square_x, square_y, product = mean_x * mean_x, mean_y * mean_y, mean_x * mean_y
        variance_x = covariance_norm * (mean_xx - square_x)
        variance_y = covariance_norm * (mean_yy - square_y)
        covariance = covariance_norm * (mean_xy - product)
        numerator = (2 * product + c1) * (2 * covariance + c2)
        denominator = (square_x + square_y + c1) * (variance_x + variance_y + c2)
        return numerator / denominator
    return _ssim_in_place(prediction, reference, kernel, spatial_ndim, covariance_norm, c1, c2)


def _ssim_in_place(
    prediction: torch.Tensor, reference: torch.Tensor, kernel: torch.Tensor, spatial_ndim: int, covariance_norm: float,
    c1: float | torch.Tensor, c2: float | torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """:func:`structural_similarity_map`'s formula without gradients: the same operations in the same order (the
    same values to the last bit), each written into a buffer it owns instead of a new temporary per term, which
    halves the memory traffic of a whole volume."""
    stacked = torch.empty((5, *prediction.shape), dtype=prediction.dtype, device=prediction.device)
    stacked[0].copy_(prediction)
    stacked[1].copy_(reference)
    torch.mul(prediction, prediction, out=stacked[2])
    torch.mul(reference, reference, out=stacked[3])
    torch.mul(prediction, reference, out=stacked[4])
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = separable_filter(stacked, kernel, spatial_ndim).unbind(0)  # a new tensor
    product = mean_x * mean_y
    square_x, square_y = mean_x.mul_(mean_x), mean_y.mul_(mean_y)
    variance_sum = mean_xx.sub_(square_x).mul_(covariance_norm).add_(mean_yy.sub_(square_y).mul_(covariance_norm)).add_(c2)
    denominator = square_x.add_(square_y).add_(c1).mul_(variance_sum)
    covariance_term = mean_xy.sub_(product).mul_(covariance_norm).mul_(2).add_(c2)
    return product.mul_(2).add_(c1).mul_(covariance_term).div_(denominator)


def crop_interior(values: torch.Tensor, border: int, spatial_ndim: int) -> torch.Tensor:
    """Drop ``border`` voxels at both ends of each of the last ``spatial_ndim`` axes."""
    if border == 0:
        return values
    for axis in range(values.ndim - spatial_ndim, values.ndim):
        values = values.narrow(axis, border, values.shape[axis] - 2 * border)
    return values


def interior_mean(
    ssim_values: torch.Tensor, options: SSIMOptions, spatial_ndim: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of an SSIM map over its interior (skimage's crop), optionally only inside ``mask``.

    ``mask`` is boolean with the map's shape. With an all-true mask the result equals the
    unmasked mean. Differentiable.

    Raises:
        InputError: the mask selects no voxel of the interior.
    """
    border = (options.window_size - 1) // 2
    interior = crop_interior(ssim_values, border, spatial_ndim)
    if mask is None:
        return interior.mean()
    inside = crop_interior(mask, border, spatial_ndim)
    if not bool(inside.any()):
        raise InputError(None, f"mask selects no voxel farther than {border} voxels from the image border")
    return interior[inside].mean()


def ssim_map(
    pred: ArrayLike,
    ref: ArrayLike,
    data_range: float,
    window: Literal["gaussian", "uniform"] = "gaussian",
    sigma: float = 1.5,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = False,
    spatial_ndim: int = 2,
) -> torch.Tensor:
    """Full SSIM map (float64, the inputs' shape, borders included) as skimage's ``full=True``.

    Args:
        pred: the image to score ``(*batch, *spatial)``, NumPy or torch, any real dtype.
        ref: the reference, of ``pred``'s shape.
        data_range: ``L`` in ``C1 = (k1 L)²``, ``C2 = (k2 L)²`` (e.g. 255 for 8-bit images).
        window: ``"gaussian"`` or ``"uniform"``, as :class:`SSIMOptions`.
        sigma: the Gaussian window's standard deviation in pixels (:class:`SSIMOptions`).
        win_size: the uniform window's side in pixels (:class:`SSIMOptions`).
        k1: the constant of ``C1`` (:class:`SSIMOptions`).
        k2: the constant of ``C2`` (:class:`SSIMOptions`).
        use_sample_covariance: divide the local covariances by ``N − 1`` instead of ``N`` (:class:`SSIMOptions`).
        spatial_ndim: number of trailing spatial axes (2 or 3); leading axes are separate images.
    """
    prediction, reference = prepare_pair(pred, ref)
    options = SSIMOptions(window, sigma, win_size, k1, k2, use_sample_covariance)
    return structural_similarity_map(prediction, reference, float(data_range), options, spatial_ndim)


def ssim(
    pred: ArrayLike,
    ref: ArrayLike,
    data_range: float,
    window: Literal["gaussian", "uniform"] = "gaussian",
    sigma: float = 1.5,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = False,
    spatial_ndim: int = 2,
    mask: ArrayLike | None = None,
) -> float:
    """Mean SSIM of ``pred`` against ``ref`` (float64), matching ``skimage.metrics.structural_similarity``.

    ``skimage.metrics.structural_similarity(ref, pred, data_range=L, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` equals ``ssim(pred, ref, L)``; the skimage
    defaults (7×7 uniform window, sample covariance) are ``window="uniform",
    use_sample_covariance=True``. With leading batch axes (e.g. a stack of 2-D slices and
    ``spatial_ndim=2``) the result is the mean of the per-slice SSIMs. With ``mask`` it is the mean
    of the SSIM map over the masked voxels of the interior (see :func:`interior_mean`).

    Example:
        >>> import numpy as np
        >>> image = np.arange(144.0).reshape(12, 12)
        >>> ssim(image, image, data_range=143.0)
        1.0
    """
    prediction, reference = prepare_pair(pred, ref)
    options = SSIMOptions(window, sigma, win_size, k1, k2, use_sample_covariance)
    mask_tensor = prepare_mask(mask, reference.shape, reference.device)
    values = structural_similarity_map(prediction, reference, float(data_range), options, spatial_ndim)
    return float(interior_mean(values, options, spatial_ndim, mask_tensor))
