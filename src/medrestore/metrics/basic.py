"""Voxel-wise error metrics: MSE, MAE, NMSE and PSNR (float64), optionally inside a mask.

With ``x`` the prediction, ``y`` the reference and ``M`` the set of voxels considered (all of
them, or the nonzero voxels of ``mask``)::

    MSE  = (1/|M|) Σ_M (y − x)²
    MAE  = (1/|M|) Σ_M |y − x|
    NMSE = Σ_M (y − x)² / Σ_M y²                       (fastMRI; = NRMSE² of skimage, 'euclidean')
    PSNR = 10 log10(L² / MSE)  dB                      (skimage ``peak_signal_noise_ratio``)

``L`` is the data range, chosen by the caller (see :mod:`medrestore.metrics.conventions`).
Identical images give ``PSNR = inf``.
"""

from __future__ import annotations

import math

import torch

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike, prepare_mask, prepare_pair


def _masked_pair(pred: ArrayLike, ref: ArrayLike, mask: ArrayLike | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and reference as float64, flattened to the masked voxels when a mask is given."""
    prediction, reference = prepare_pair(pred, ref)
    mask_tensor = prepare_mask(mask, reference.shape, reference.device)
    if mask_tensor is None:
        return prediction, reference
    return prediction[mask_tensor], reference[mask_tensor]


def mse(pred: ArrayLike, ref: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean squared error ``(1/|M|) Σ_M (ref − pred)²``."""
    prediction, reference = _masked_pair(pred, ref, mask)
    return float(torch.mean((reference - prediction) ** 2))


def mae(pred: ArrayLike, ref: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute error ``(1/|M|) Σ_M |ref − pred|``."""
    prediction, reference = _masked_pair(pred, ref, mask)
    return float(torch.mean(torch.abs(reference - prediction)))


def nmse(pred: ArrayLike, ref: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Normalised MSE ``‖ref − pred‖² / ‖ref‖²`` (fastMRI's ``nmse``).

    Raises:
        InputError: the reference is zero everywhere (inside the mask).
    """
    prediction, reference = _masked_pair(pred, ref, mask)
    energy = float(torch.sum(reference**2))
    if energy == 0.0:
        raise InputError(None, "NMSE is undefined: the reference is zero everywhere")
    return float(torch.sum((reference - prediction) ** 2)) / energy


def psnr(pred: ArrayLike, ref: ArrayLike, data_range: float, mask: ArrayLike | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB (``inf`` when MSE = 0).

    Equals ``skimage.metrics.peak_signal_noise_ratio(ref, pred, data_range=data_range)``.
    """
    if not data_range > 0:
        raise InputError(None, f"PSNR needs a positive data range, got {data_range}")
    error = mse(pred, ref, mask)
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(float(data_range) ** 2 / error)
