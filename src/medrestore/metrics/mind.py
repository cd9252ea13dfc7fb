"""MIND, the modality-independent neighbourhood descriptor, and a structure distance built on it.

For an image ``I`` and each offset ``r`` of a neighbourhood ``N`` (the 2·d axis-aligned offsets
at distance ``radius`` in ``d`` dimensions):

    D(x, r)   = Σ_p G_σ(p) (I(x + p) − I(x + r + p))²        (Gaussian-weighted patch distance)
    V(x)      = mean_{r ∈ N} D(x, r)                          (local variance estimate)
    MIND(x, r) = exp(−D(x, r) / V(x)) / max_{r'} exp(−D(x, r') / V(x))

``MIND`` describes *where the edges are* around each voxel, not how bright they are: it is
unchanged by a gain or offset of ``I`` and nearly unchanged by a smooth multiplicative field or
a monotone contrast curve, so the mean absolute difference of the descriptors of two images
(:func:`mind_distance`) measures whether they show the same structures even when they come from
different scanners. As a loss it keeps a harmoniser from moving, removing or inventing anatomy
while leaving it free to change contrast and smooth intensity fields (the structure constraint
of Yang et al. 2018).

References:
    Heinrich MP, Jenkinson M, Bhushan M, et al. MIND: modality independent neighbourhood
        descriptor for multi-modal deformable registration. Medical Image Analysis 16:1423–1435, 2012.
    Yang H, Sun J, Carass A, et al. Unpaired brain MR-to-CT synthesis using a structure-constrained
        CycleGAN. DLMIA 2018, LNCS 11045:174–182.
"""

from __future__ import annotations

import torch

from medrestore.core.errors import InputError
from medrestore.physics.blur import gaussian_blur

VARIANCE_FLOOR = 1e-3
"""``V`` is clipped below at this fraction of its image mean (flat regions, as the reference code)."""


def _shift(image: torch.Tensor, axis: int, step: int) -> torch.Tensor:
    """``I(x + step·e_axis)`` with edge replication (same shape)."""
    length = image.shape[axis]
    index = torch.arange(length, device=image.device) + step
    return image.index_select(axis, index.clamp_(0, length - 1))


def mind_descriptor(image: torch.Tensor, spatial_ndim: int = 2, radius: int = 1, patch_sigma: float = 1.0) -> torch.Tensor:
    """MIND of ``image`` ``(*batch, *spatial)`` → ``(*batch, 2·spatial_ndim, *spatial)``, values in (0, 1].

    Differentiable (a training loss may use it). ``radius``: distance of the neighbourhood
    offsets; ``patch_sigma``: standard deviation of the patch weighting ``G_σ`` in pixels.
    """
    if spatial_ndim not in (2, 3) or image.ndim < spatial_ndim or image.is_complex():
        raise InputError(None, f"MIND needs a real image with {spatial_ndim} spatial axes, got {tuple(image.shape)}")
    if radius < 1 or patch_sigma <= 0:
        raise InputError(None, f"MIND needs radius >= 1 and patch_sigma > 0, got {radius}, {patch_sigma}")
    first = image.ndim - spatial_ndim
    distances = []
    for axis in range(first, image.ndim):
        for step in (-radius, radius):
            difference = (image - _shift(image, axis, step)).square()
            distances.append(gaussian_blur(difference, sigma=patch_sigma, spatial_ndim=spatial_ndim))
    distance = torch.stack(distances, dim=first)
    variance = distance.mean(dim=first, keepdim=True)
    spatial_dims = tuple(range(first + 1, image.ndim + 1))
    floor = VARIANCE_FLOOR * variance.mean(dim=spatial_dims, keepdim=True) + torch.finfo(image.dtype).tiny
    descriptor = torch.exp(-distance / torch.maximum(variance, floor))
    return descriptor / descriptor.amax(dim=first, keepdim=True)


def mind_distance(
    first: torch.Tensor, second: torch.Tensor, spatial_ndim: int = 2, radius: int = 1, patch_sigma: float = 1.0
) -> torch.Tensor:
    """``mean |MIND(first) − MIND(second)|`` over offsets and voxels (a 0-d tensor; 0 = same structures)."""
    if first.shape != second.shape:
        raise InputError(None, f"MIND distance needs images of one shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    return (mind_descriptor(first, spatial_ndim, radius, patch_sigma) - mind_descriptor(second, spatial_ndim, radius, patch_sigma)).abs().mean()
