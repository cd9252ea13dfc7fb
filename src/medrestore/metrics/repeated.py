"""The repeated-acquisition protocol: score a denoised repetition against the mean of the others.

With ``R`` repetitions ``y_1…y_R`` of one scan, a denoiser is applied to ``y_r`` and compared
with ``ȳ_{−r} = mean of the other R − 1`` (an independent, less noisy estimate of the same
anatomy): MSE, PSNR (peak = max of the reference) and SSIM (Gaussian window σ = 1.5, 3-D for
volumes), optionally inside a mask. The same scores of the noisy ``y_r`` itself are the
baseline. The reference still holds noise of variance ``σ²/(R − 1)``, so the MSE has that floor.

For a series of many repetitions (an fMRI run), :func:`temporal_snr_map` gives the temporal SNR of
every voxel, ``tSNR = mean_t / std_t`` (Triantafyllou et al., *NeuroImage* 26, 2005).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.metrics.basic import mse, psnr
from medrestore.metrics.ssim import SSIMOptions, ssim, ssim_slice_axis


def leave_one_out_reference(repetitions: Sequence[torch.Tensor], index: int) -> torch.Tensor:
    """Mean of every repetition but ``index`` (``(*spatial)`` float64)."""
    if len(repetitions) < 2 or not 0 <= index < len(repetitions):
        raise InputError(None, f"need >= 2 repetitions and 0 <= index < {len(repetitions)}, got index {index}")
    others = [r.to(torch.float64) for i, r in enumerate(repetitions) if i != index]
    if any(o.shape != others[0].shape for o in others) or repetitions[index].shape != others[0].shape:
        raise InputError(None, "all repetitions must have one shape")
    return torch.stack(others).mean(dim=0)


def repeated_acquisition_scores(
    estimate: torch.Tensor, repetitions: Sequence[torch.Tensor], index: int, mask: torch.Tensor | np.ndarray | None = None
) -> dict[str, float | None]:
    """``{"mse", "psnr", "ssim"}`` of ``estimate`` (e.g. denoised ``repetitions[index]``) against the others' mean.

    SSIM is 3-D on a volume whose every side holds the window (11 voxels), else 2-D on its slices across its
    shortest side (a thin stack, such as a few fMRI slices); ``None`` where even the slices are smaller than the window.
    """
    reference = leave_one_out_reference(repetitions, index)
    data_range = float(reference.max() - min(float(reference.min()), 0.0)) or 1.0
    scores: dict[str, float | None] = {"mse": mse(estimate, reference, mask), "psnr": psnr(estimate, reference, data_range, mask)}
    window, spatial_ndim = SSIMOptions().window_size, reference.ndim
    axis = ssim_slice_axis(tuple(reference.shape), window)
    if axis is not None:  # a stack of slices: the short side becomes a batch axis
        spatial_ndim = 2
        estimate, reference = estimate.movedim(axis, 0), reference.movedim(axis, 0)
        mask = None if mask is None else torch.as_tensor(np.asarray(mask)).movedim(axis, 0)
    fits = min(reference.shape[-spatial_ndim:]) >= window
    scores["ssim"] = ssim(estimate, reference, data_range, spatial_ndim=spatial_ndim, mask=mask) if fits else None
    return scores


def temporal_snr_map(series: torch.Tensor | np.ndarray) -> np.ndarray:
    """``mean_t / std_t`` (ddof = 1) per voxel of a ``(*spatial, T)`` series (``T >= 2``): ``(*spatial)`` float32,
    0 where the time course is constant."""
    array = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series)
    if array.ndim < 2 or array.shape[-1] < 2:
        raise InputError(None, f"a temporal SNR map needs a series (*spatial, T) with T >= 2, got shape {array.shape}")
    values = array.astype(np.float64)
    mean, std = values.mean(axis=-1), values.std(axis=-1, ddof=1)
    ratio = np.divide(mean, std, out=np.zeros_like(mean), where=std > 0)
    return ratio.astype(np.float32)


def design_response(series: torch.Tensor | np.ndarray, design: np.ndarray, mask: np.ndarray) -> float:
    """Mean over ``mask`` of the relative response ``β₁ / β₀`` of the least-squares fit ``x(t) = β₀ + β₁·d(t)`` of each
    voxel's time course in a ``(*spatial, T)`` series to the regressor ``design`` ``(T,)`` (a general linear model with
    one regressor and a constant, as fMRI analysis fits a task; Friston et al., *Hum. Brain Mapp.* 2, 1995)."""
    array = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series)
    regressors = np.c_[np.ones(len(design)), np.asarray(design, dtype=np.float64)]
    courses = array[np.asarray(mask, bool)].astype(np.float64)
    if courses.size == 0 or courses.shape[-1] != len(design):
        raise InputError(None, f"need a non-empty mask and series of {len(design)} time points, got courses of shape {courses.shape}")
    beta = np.linalg.lstsq(regressors, courses.T, rcond=None)[0]
    return float(np.mean(beta[1] / beta[0]))
