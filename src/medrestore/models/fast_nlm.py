"""Fast non-local means in torch, 2-D or 3-D, Rician-aware, vectorised over voxels (CPU or GPU).

For every voxel ``i`` of an image ``u`` (2-D or 3-D) and every offset ``δ`` of the search cube
``|δ|∞ <= search_radius``:

    d(i, δ) = mean_{|p|∞ <= patch_radius} (u(i + p) − u(i + δ + p))²          (patch distance)
    w(i, δ) = exp(−max(d(i, δ) − 2σ², 0) / h²),   h = h_factor · σ              (weight)
    NLM(v)(i) = Σ_δ w(i, δ) v(i + δ) / Σ_δ w(i, δ)                              (weighted mean)

with the voxel itself at weight 1 (its distance is 0, as in scikit-image; ``centre_weight="max"``
gives it the largest weight of its other neighbours instead, as Coupé et al. 2008; compared in
``benchmarks/history.md``). Subtracting ``2σ²`` — the expected distance of two
noisy copies of the same patch — keeps similar patches at weight 1.

Rician-aware (Manjón et al. 2008): weights come from the magnitude ``M``, the average is taken
of ``v = M²`` (an unbiased estimate of ``ν² + 2σ²``), and the result is
``√max(NLM(M²) − 2σ², 0)`` (:func:`~medrestore.physics.noise_estimation.rician_bias_correct`).

Implementation: one loop over half of the offsets (``δ`` and ``−δ`` share ``d`` since
``d(i, −δ) = d(i − δ, δ)``); for each, the squared difference of the image and its shifted copy
is box-filtered by sums of shifted slices (separable, ``O(patch_radius)`` adds per axis), so
every step is a whole-volume tensor operation. Memory: a few copies of the padded volume.

Pre-filtered NLM (Manjón et al. 2012, "PRI-NLM"): the weights come from a first estimate ``ũ``
instead of the noisy image — the oracle DCT filter :func:`odct_denoise` — compared voxel by voxel
(patch radius 0; the pre-filtered value already summarises its neighbourhood, and a single value
is invariant to rotations of the local pattern), with no ``2σ²`` offset (``ũ`` is nearly
noise-free)::

    w(i, δ) = exp(−(ũ(i) − ũ(i + δ))² / h²),   h = 0.7 σ,   search 7 × 7 × 7

then the same Rician-aware average of ``M²``. The oracle DCT filter: every overlapping
``3 × 3 (× 3)`` block's orthonormal DCT coefficients below ``2.7σ`` (all but the mean) are set
to 0 and the blocks are put back, each weighted by ``1 / (1 + kept coefficients)`` (sparser
blocks are more trustworthy), averaged where they overlap.

Network-guided NLM (:func:`guided_non_local_means`): the same voxel-wise weights, taken from any
first estimate ``ũ`` the caller supplies — in ``medrestore denoise`` the 3-D network's output — so the
structure comes from the learned prior while every output value is still an average of measured
voxels (which keeps it unbiased where the network's prior does not fit the image).

References:
    Buades A, Coll B, Morel JM. A non-local algorithm for image denoising. CVPR 2005.
    Coupé P, Yger P, Prima S, Hellier P, Kervrann C, Barillot C. An optimized blockwise
        nonlocal means denoising filter for 3-D magnetic resonance images. IEEE TMI 27, 2008.
    Manjón JV, Carbonell-Caballero J, Lull JJ, García-Martí G, Martí-Bonmatí L, Robles M.
        MRI denoising using non-local means. Medical Image Analysis 12:514–523, 2008.
    Manjón JV, Coupé P, Buades A, Collins DL, Robles M. New methods for MRI denoising based on
        sparseness and self-similarity. Medical Image Analysis 16:18–27, 2012.
    Guleryuz OG. Weighted averaging for denoising with overcomplete dictionaries. IEEE TIP 16, 2007.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from medrestore.core.errors import InputError
from medrestore.core.progress import track
from medrestore.models.blocks import require
from medrestore.models.classical import ClassicalMethod
from medrestore.physics.noise_estimation import estimate_sigma, rician_bias_correct
from medrestore.solvers.dct_denoise import ODCT_THRESHOLD, mirror_pad, odct_denoise


@dataclasses.dataclass(frozen=True)
class FastNLMConfig:
    """Options of :func:`fast_non_local_means`.

    Attributes:
        patch_radius: patches are ``(2r + 1)`` voxels wide on each axis.
        search_radius: neighbours within ``±search_radius`` voxels on each axis.
        h_factor: filtering strength ``h = h_factor · σ``.
        sigma: noise standard deviation (image units); ``None`` estimates it per image
            (:func:`~medrestore.physics.noise_estimation.estimate_sigma`).
        rician: average ``M²`` and remove the Rician bias (magnitude MR images).
    """

    patch_radius: int = 1
    search_radius: int = 3
    h_factor: float = 1.0
    sigma: float | None = None
    rician: bool = True

    def __post_init__(self) -> None:
        require(self.patch_radius >= 0, "fast-nlm", f"patch_radius must be >= 0, got {self.patch_radius}")
        require(self.search_radius >= 1, "fast-nlm", f"search_radius must be >= 1, got {self.search_radius}")
        require(self.h_factor > 0.0, "fast-nlm", f"h_factor must be positive, got {self.h_factor}")
        require(self.sigma is None or self.sigma >= 0.0, "fast-nlm", f"sigma must be >= 0, got {self.sigma}")


def _half_offsets(ndim: int, radius: int) -> list[tuple[int, ...]]:
    """Offsets ``δ ≠ 0`` with ``|δ|∞ <= radius`` that are lexicographically positive (one of each ``±δ``)."""
    offsets = itertools.product(range(-radius, radius + 1), repeat=ndim)
    return [delta for delta in offsets if delta > (0,) * ndim]


def _box_sum(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum over ``(2r + 1)``-wide windows along every axis (valid part: each axis shrinks by ``2r``)."""
    width = 2 * radius + 1
    for axis in range(values.ndim):
        length = values.shape[axis] - 2 * radius
        total = values.narrow(axis, 0, length)
        for start in range(1, width):
            total = total + values.narrow(axis, start, length)
        values = total
    return values


def _window(padded: torch.Tensor, start: tuple[int, ...], shape: tuple[int, ...]) -> torch.Tensor:
    """``padded[start : start + shape]`` (a view)."""
    return padded[tuple(slice(s, s + n) for s, n in zip(start, shape, strict=True))]


CHUNK_VOXELS = 4_000_000
"""Volumes above this many voxels are averaged in slabs along their first axis (each with a halo of
``search_radius + patch_radius`` real voxels, so the result is the same): every temporary then stays
below glibc's 32-MB ``mmap`` threshold. Whole-volume temporaries above it would be mapped and unmapped at
every search offset, a page fault per touched page each time (timings in ``benchmarks/history.md``)."""


def nlm_weighted_mean(
    guide: torch.Tensor,
    values: torch.Tensor,
    sigma: float,
    h: float,
    patch_radius: int,
    search_radius: int,
    centre_weight: str = "one",
) -> torch.Tensor:
    """``NLM(values)`` with weights from patches of ``guide`` (both ``(*spatial)``, 2-D or 3-D, same shape).

    Returns the weighted mean of ``values`` over the search window, ``(*spatial)``, in the
    dtype of ``guide`` (see the module docstring for the equations; ``centre_weight``: ``"one"``
    or ``"max"``). Volumes above :data:`CHUNK_VOXELS` go slab by slab, with the same result.
    """
    halo = search_radius + patch_radius  # voxel i reads patches of i ± δ: guide voxels within rs + rp
    length, plane = guide.shape[0], guide[0].numel()
    step = CHUNK_VOXELS // plane - 2 * halo
    if guide.ndim != 3 or guide.numel() <= CHUNK_VOXELS or step < 2 * search_radius + patch_radius + 1:
        return _nlm_block(guide, values, sigma, h, patch_radius, search_radius, centre_weight)
    output = torch.empty_like(guide)
    count = -(-length // step)  # slabs of near-equal thickness >= step / 2: none too thin to mirror-pad
    edges = [round(i * length / count) for i in range(count + 1)]
    for start, stop in track(list(zip(edges[:-1], edges[1:], strict=True)), "non-local means"):
        low, high = max(0, start - halo), min(length, stop + halo)
        block = _nlm_block(guide[low:high], values[low:high], sigma, h, patch_radius, search_radius, centre_weight)
        output[start:stop] = block[start - low : stop - low]
    return output


def _nlm_block(
    guide: torch.Tensor, values: torch.Tensor, sigma: float, h: float, patch_radius: int, search_radius: int, centre_weight: str
) -> torch.Tensor:
    """:func:`nlm_weighted_mean` of one block, mirror-padded at its borders."""
    ndim, shape = guide.ndim, tuple(guide.shape)
    rs, rp = search_radius, patch_radius
    pad = 2 * rs + rp
    guide_padded, values_padded = mirror_pad(guide, pad), mirror_pad(values, pad)
    extended = tuple(n + 2 * rs for n in shape)  # voxels k whose weights are needed
    patch_region = tuple(n + 2 * rp for n in extended)
    base = (rs,) * ndim  # start of the patch region of the extended voxels in the padded volume
    inverse_h2, offset = 1.0 / (h * h), 2.0 * sigma * sigma
    norm = float((2 * rp + 1) ** ndim)
    numerator = torch.zeros(shape, dtype=guide.dtype, device=guide.device)
    denominator = torch.zeros_like(numerator)
    max_weight = torch.zeros_like(numerator)
    centre = (pad,) * ndim
    guide_region = _window(guide_padded, base, patch_region)
    for delta in _half_offsets(ndim, rs):
        shifted = _window(guide_padded, tuple(b + d for b, d in zip(base, delta, strict=True)), patch_region)
        distance = _box_sum((guide_region - shifted).square_(), rp)
        if norm != 1.0:  # voxel-wise weights (rp = 0) skip the trivial passes
            distance.div_(norm)
        if offset != 0.0:
            distance.sub_(offset).clamp_min_(0.0)
        weight = distance.mul_(-inverse_h2).exp_()  # over the extended voxels
        forward = _window(weight, (rs,) * ndim, shape)  # w(i, δ)
        backward = _window(weight, tuple(rs - d for d in delta), shape)  # w(i − δ, δ)
        numerator.addcmul_(forward, _window(values_padded, tuple(c + d for c, d in zip(centre, delta, strict=True)), shape))
        numerator.addcmul_(backward, _window(values_padded, tuple(c - d for c, d in zip(centre, delta, strict=True)), shape))
        denominator.add_(forward).add_(backward)
        if centre_weight != "one":
            torch.maximum(max_weight, torch.maximum(forward, backward), out=max_weight)
    if centre_weight == "one":
        max_weight.fill_(1.0)
    else:
        max_weight = torch.where(max_weight > 0, max_weight, torch.ones_like(max_weight))
    numerator.addcmul_(max_weight, values)
    denominator.add_(max_weight)
    return numerator / denominator


def fast_non_local_means(
    image: torch.Tensor,
    sigma: float,
    patch_radius: int = 1,
    search_radius: int = 3,
    h_factor: float = 1.0,
    rician: bool = True,
) -> torch.Tensor:
    """Non-local means of one image or volume ``(*spatial)`` (2-D or 3-D), on its device.

    Args:
        image: real tensor ``(H, W)`` or ``(D, H, W)``; computed in float32 (float64 kept).
        sigma: noise standard deviation per Gaussian channel (image units); 0 returns a copy.
        patch_radius: patch half-width.
        search_radius: search half-width.
        h_factor: ``h = h_factor · σ``.
        rician: Rician-aware averaging of ``M²`` with bias removal (Manjón et al. 2008).

    Returns:
        The denoised tensor, same shape, dtype and device.

    Example:
        >>> noisy = torch.rand(16, 16, 16)
        >>> fast_non_local_means(noisy, sigma=0.1, search_radius=2).shape
        torch.Size([16, 16, 16])
    """
    return _guided_average(image, sigma, None, sigma, h_factor * sigma, patch_radius, search_radius, rician, "fast NLM")


def _guided_average(
    image: torch.Tensor,
    sigma: float,
    prefilter: Callable[[torch.Tensor], torch.Tensor] | None,
    offset_sigma: float,
    h: float,
    patch_radius: int,
    search_radius: int,
    rician: bool,
    what: str,
) -> torch.Tensor:
    """Checks, then the NLM average of ``image`` (``M²`` with bias removal if ``rician``) with weights
    from ``prefilter(image)`` (``None``: the image itself) and the ``2·offset_sigma²`` distance offset."""
    if image.ndim not in (2, 3) or image.is_complex() or not image.is_floating_point():
        raise InputError(None, f"{what} expects a real 2-D or 3-D float tensor, got {tuple(image.shape)} {image.dtype}")
    if sigma < 0:
        raise InputError(None, f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return image.clone()
    work = image.detach() if image.dtype == torch.float64 else image.detach().to(torch.float32)
    guide = work if prefilter is None else prefilter(work)
    values = work.square() if rician else work
    average = nlm_weighted_mean(guide, values, offset_sigma, h, patch_radius, search_radius)
    return (rician_bias_correct(average, sigma) if rician else average).to(image.dtype)


PRI_SEARCH_RADIUS = 3
PRI_H_FACTOR = 0.7
"""``h = 0.7 σ`` and a 7³ search for :func:`prefiltered_non_local_means`: chosen on a Colin27 slab
(z = 50–81, noise seed 1) apart from the one ``benchmarks/mri_denoise.py`` reports, at σ = 3, 5 and 7 % among
h = 0.5/0.7/1.0 σ, search 5³/7³, threshold 2.2/2.7/3.2 σ (scores in ``benchmarks/history.md``)."""


def prefiltered_non_local_means(
    image: torch.Tensor,
    sigma: float,
    search_radius: int = PRI_SEARCH_RADIUS,
    h_factor: float = PRI_H_FACTOR,
    threshold: float = ODCT_THRESHOLD,
    rician: bool = True,
) -> torch.Tensor:
    """Pre-filtered non-local means (PRI-NLM) of one image or volume ``(*spatial)``, on its device.

    Weights from the voxel values of :func:`odct_denoise` ``(image)``, averaging ``image`` (or
    ``image²`` with Rician bias removal, ``rician=True``) — see the module docstring. Same shape,
    dtype and device; ``sigma = 0`` returns a copy.

    Example:
        >>> noisy = torch.rand(12, 12, 12)
        >>> prefiltered_non_local_means(noisy, sigma=0.1).shape
        torch.Size([12, 12, 12])
    """
    return _guided_average(
        image, sigma, lambda work: odct_denoise(work, sigma, threshold), 0.0, h_factor * sigma, 0, search_radius, rician, "PRI-NLM"
    )


GUIDED_SEARCH_RADIUS = 3
GUIDED_H_FACTOR = 0.7
"""7³ search and ``h = 0.7σ`` for :func:`guided_non_local_means` with the 3-D network as the guide: chosen
among h = 0.6/0.7/0.8 σ and 5³/7³/9³ searches on the held-out Colin27 slab and its variants at σ = 3, 5 and 7 %
(``benchmarks/mri_guided_ablation.py``; scores in ``benchmarks/history.md``)."""


def guided_non_local_means(
    image: torch.Tensor,
    guide: torch.Tensor,
    sigma: float,
    search_radius: int = GUIDED_SEARCH_RADIUS,
    h_factor: float = GUIDED_H_FACTOR,
    rician: bool = True,
) -> torch.Tensor:
    """Non-local means of ``image`` with voxel-wise weights from ``guide``, a first estimate (same shape).

    ``w(i, δ) = exp(−(ũ(i) − ũ(i + δ))² / h²)``, ``h = h_factor · σ``, over the ``(2·search_radius + 1)^d``
    cube; the average of ``image`` (``image²`` with Rician bias removal when ``rician``), as
    :func:`prefiltered_non_local_means` with ``guide`` in place of the oracle DCT estimate.

    Raises:
        InputError: ``guide`` and ``image`` differ in shape, or the checks of :func:`fast_non_local_means`.

    Example:
        >>> noisy = torch.rand(12, 12, 12)
        >>> guided_non_local_means(noisy, torch.full((12, 12, 12), 0.5), sigma=0.1).shape
        torch.Size([12, 12, 12])
    """
    if tuple(guide.shape) != tuple(image.shape):
        raise InputError(None, f"guided NLM: the guide {tuple(guide.shape)} and the image {tuple(image.shape)} differ in shape")
    guide = guide.detach().to(device=image.device, dtype=torch.float64 if image.dtype == torch.float64 else torch.float32)
    return _guided_average(image, sigma, lambda work: guide, 0.0, h_factor * sigma, 0, search_radius, rician, "guided NLM")


def fast_nlm_method(image: torch.Tensor, config: FastNLMConfig) -> torch.Tensor:
    """:func:`fast_non_local_means` of every ``(n, c)`` image of ``(N, C, *spatial)`` (σ estimated per image if not given)."""
    if image.ndim not in (4, 5):
        raise InputError(None, f"fast-nlm expects (N, C, *spatial) input with 2 or 3 spatial axes, got {tuple(image.shape)}")
    if image.is_complex() or not image.is_floating_point():
        raise InputError(None, f"fast-nlm expects a real floating-point tensor, got {image.dtype}")
    output = torch.empty_like(image)
    for index in itertools.product(range(image.shape[0]), range(image.shape[1])):
        single = image[index]
        sigma = config.sigma if config.sigma is not None else estimate_sigma(single)
        output[index] = fast_non_local_means(
            single, sigma, config.patch_radius, config.search_radius, config.h_factor, config.rician
        )
    return output


def make_fast_nlm(config: FastNLMConfig) -> ClassicalMethod[FastNLMConfig]:
    return ClassicalMethod("fast-nlm", fast_nlm_method, config)
