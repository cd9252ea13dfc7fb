"""Sparse analysis of what differs between two scanners' images of the same anatomy.

Given ``N`` aligned slice pairs ``(a_i, b_i)`` (same anatomy on scanners a and b):

1. the global contrast difference is taken out first by histogram matching ``b`` to ``a``
   (brain-masked, :class:`~medrestore.models.harmonizers.HistogramMatching`), so what remains
   are *spatial* differences;
2. **low-rank + sparse**: the matrix ``M = [a_1 … a_N, b̃_1 … b̃_N]`` (one column per slice)
   is split by robust PCA, ``M = L + S`` (:func:`~medrestore.solvers.sparse.robust_pca`): the
   anatomy shared by each pair is low rank, scanner-specific local differences are sparse; the
   difference map is the mean of ``S`` over the ``b`` columns minus that over the ``a`` columns;
3. **L1-regularised estimate**: ``d̂ = argmin_d ½‖mean_i(b̃_i − a_i) − d‖² + λ‖d‖₁`` (soft
   thresholding, :func:`~medrestore.solvers.sparse.l1_difference`) with ``λ`` three times the
   noise level of the mean difference (MAD estimate), so noise is zeroed and real local
   differences survive.
"""

from __future__ import annotations

import dataclasses

import torch

from medrestore.core.errors import InputError
from medrestore.models.harmonizers import HistogramMatching, check_slices
from medrestore.solvers.sparse import RobustPCAInfo, l1_difference, robust_pca


@dataclasses.dataclass(frozen=True)
class DifferenceMaps:
    """``(H, W)`` maps of what scanner b adds over a, and the robust-PCA record."""

    sparse_difference: torch.Tensor
    l1_difference: torch.Tensor
    mean_difference: torch.Tensor
    low_rank_rank: int
    info: RobustPCAInfo


def scanner_difference_maps(slices_a: torch.Tensor, slices_b: torch.Tensor, weight: float | None = None) -> DifferenceMaps:
    """Difference maps of paired ``(N, H, W)`` stacks (module docstring); ``weight`` = robust-PCA ``λ``."""
    slices_a, slices_b = check_slices(slices_a, "scanner a"), check_slices(slices_b, "scanner b")
    if slices_a.shape != slices_b.shape:
        raise InputError(None, f"paired stacks must have one shape, got {tuple(slices_a.shape)} and {tuple(slices_b.shape)}")
    matcher = HistogramMatching()
    matcher.fit(slices_a, slices_b)
    matched_b = matcher.harmonize(slices_b, "b2a")
    count, height, width = slices_a.shape
    matrix = torch.cat([slices_a, matched_b]).reshape(2 * count, height * width).T.double()
    low_rank, sparse, info = robust_pca(matrix, weight)
    sparse_maps = sparse.T.reshape(2 * count, height, width)
    sparse_difference = (sparse_maps[count:] - sparse_maps[:count]).mean(dim=0)
    mean_difference = (matched_b - slices_a).double().mean(dim=0)
    noise = float((mean_difference - mean_difference.median()).abs().median()) / 0.6745
    return DifferenceMaps(
        sparse_difference=sparse_difference.float(),
        l1_difference=l1_difference(mean_difference, torch.zeros_like(mean_difference), 3.0 * noise).float(),
        mean_difference=mean_difference.float(),
        low_rank_rank=info.rank,
        info=info,
    )


def region_contrast(difference: torch.Tensor, region: torch.Tensor, control: torch.Tensor) -> float:
    """Mean of ``difference`` in ``region`` minus its mean in ``control`` (both ``(H, W)`` boolean)."""
    return float(difference[region].mean() - difference[control].mean())
