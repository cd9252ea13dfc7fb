"""Measures of a harmonisation: anatomy preservation and the residual local hyperintensity.

* :func:`tissue_classes` — three-class (CSF, grey matter, white matter) labels of a brain slice
  by multi-Otsu thresholds inside the brain mask (Liao, Chen & Chung, J. Inf. Sci. Eng. 17,
  2001), label 0 = background.
* :func:`anatomy_jaccard` — mean over the three classes of the Jaccard index between the labels
  of the harmonised slice and of its input (anatomy kept ⇔ tissue boundaries kept). The output
  is classified at the same *quantile levels* as the input's Otsu thresholds, so a global
  monotone change of contrast (the point of harmonisation) does not count as a change of
  anatomy, while moved, blurred or invented structures do; smooth intensity fields (bias) are
  divided out of both first. Optionally both are first brought to a common resolution (a
  Gaussian blur of the sharper one) and a region is left out — the region a harmoniser is *asked*
  to change (the simulated hyperintensity): without both, even the ideal b → a harmoniser, the
  noise-free scanner-a rendering of the same anatomy, scores only 0.885 against its input on the
  simulated pair, 0.930 with them (``benchmarks/harmonize.py``, ``oracle`` row).
* :func:`hyperintensity_contrast` — the relative excess of an image over a reference image in
  the hyperintense region of interest, corrected by the same ratio in a control band of
  cortex elsewhere::

      C(x) = [mean_R(x) / mean_R(t)] / [mean_K(x) / mean_K(t)] − 1

  with ``R`` the region where the simulated bump exceeds half its peak and ``K`` the outer
  cortical band (within ``2w`` of the brain edge) where the bump is below 5 % of its peak.
  ``C = 0`` means no local excess left; removal = ``1 − |C(after)| / |C(before)|``.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import skimage.filters
import torch

from medrestore.core.errors import InputError
from medrestore.metrics.overlap import jaccard
from medrestore.physics.blur import gaussian_blur
from medrestore.physics.scanner import brain_mask, hyperintensity_map


def tissue_classes(
    image: torch.Tensor, mask: torch.Tensor | None = None, levels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` slice → ``(labels, levels)``: 0 outside ``mask``, 1 < 2 < 3 by intensity inside.

    Thresholds are the multi-Otsu thresholds (3 classes) of the masked values, or — when
    ``levels`` (two quantile levels in [0, 1]) are given — those quantiles of the masked values.
    ``levels`` returned are the quantile levels of the thresholds used.
    """
    mask = brain_mask(image) if mask is None else mask
    values = image.double().numpy()
    inside = mask.numpy()
    labels = np.zeros(values.shape, dtype=np.int64)
    if inside.sum() < 3:
        return labels, np.array([1 / 3, 2 / 3])
    masked = values[inside]
    if levels is None:
        thresholds = skimage.filters.threshold_multiotsu(masked, classes=3)
        levels = np.array([np.mean(masked <= threshold) for threshold in thresholds])
    else:
        thresholds = np.quantile(masked, levels)
    labels[inside] = 1 + np.digitize(masked, thresholds)
    return labels, levels


def remove_smooth_field(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """``x / b`` with ``b = (g_σ ⊛ (x·m)) / (g_σ ⊛ m)`` the masked low-pass (normalised convolution) of ``x``.

    A homomorphic bias correction (the smooth-field model of Sled et al., IEEE TMI 17, 1998): it
    takes out intensity variations smoother than ``σ`` pixels, such as a receive-coil bias field,
    so tissue classes are compared on the local contrast. Outside ``mask`` the result is 0.
    """
    weights = scipy.ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    field = scipy.ndimage.gaussian_filter(np.where(mask, image, 0.0), sigma) / np.maximum(weights, 1e-12)
    return np.where(mask, image / np.maximum(field, 1e-12), 0.0)


def anatomy_jaccard(
    output: torch.Tensor,
    reference: torch.Tensor,
    smooth_sigma: float = 1.0,
    bias_sigma: float | None = 16.0,
    exclude: torch.Tensor | None = None,
    output_fwhm: float = 0.0,
    reference_fwhm: float = 0.0,
) -> float:
    """Mean tissue-class Jaccard between ``output`` and ``reference`` slices ``(N, H, W)``.

    Both are smoothed by a Gaussian of ``smooth_sigma`` pixels first (noise is not anatomy),
    bias-corrected with :func:`remove_smooth_field` (``bias_sigma`` pixels; ``None`` = no
    correction) and classified within the *reference's* brain mask, so only tissue boundaries
    are compared — not smooth intensity fields that a harmoniser is meant to change.

    ``output_fwhm`` / ``reference_fwhm``: extra Gaussian blur (FWHM, pixels) of each before
    that, to compare them at a common resolution; ``exclude``: boolean ``(N, H, W)`` voxels
    left out of both label maps (they count for neither class).
    """
    if output.shape != reference.shape or output.ndim != 3:
        raise InputError(None, f"anatomy_jaccard needs two (N, H, W) stacks of one shape, got {tuple(output.shape)}, {tuple(reference.shape)}")
    if exclude is not None and exclude.shape != output.shape:
        raise InputError(None, f"anatomy_jaccard: exclude has shape {tuple(exclude.shape)}, the slices {tuple(output.shape)}")
    output = gaussian_blur(output.double(), fwhm=output_fwhm, spatial_ndim=2) if output_fwhm > 0 else output
    reference = gaussian_blur(reference.double(), fwhm=reference_fwhm, spatial_ndim=2) if reference_fwhm > 0 else reference
    scores = []
    for index, (out, ref) in enumerate(zip(output, reference)):
        mask = brain_mask(ref)
        smooth_out = scipy.ndimage.gaussian_filter(out.double().numpy(), smooth_sigma)
        smooth_ref = scipy.ndimage.gaussian_filter(ref.double().numpy(), smooth_sigma)
        if bias_sigma is not None:
            smooth_out = remove_smooth_field(smooth_out, mask.numpy(), bias_sigma)
            smooth_ref = remove_smooth_field(smooth_ref, mask.numpy(), bias_sigma)
        smooth_out, smooth_ref = torch.from_numpy(smooth_out), torch.from_numpy(smooth_ref)
        labels_ref, levels = tissue_classes(smooth_ref, mask)
        labels_out, _ = tissue_classes(smooth_out, mask, levels)
        if exclude is not None:
            kept = ~exclude[index].numpy()
            labels_ref, labels_out = labels_ref * kept, labels_out * kept
        scores.append(np.mean([float(jaccard(labels_out, labels_ref, label)) for label in (1, 2, 3)]))
    return float(np.mean(scores))


def hyperintensity_regions(clean: torch.Tensor, width_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean ``(N, H, W)`` region ``R`` and control band ``K`` for clean anatomy slices (module docstring)."""
    mask = brain_mask(clean)
    bump = hyperintensity_map(mask, 1.0, width_fraction)
    width = width_fraction * max(clean.shape[-2:])
    controls = []
    for slice_mask in mask.numpy():
        depth = scipy.ndimage.distance_transform_edt(slice_mask)
        controls.append(torch.from_numpy((depth > 0) & (depth <= 2 * width)))
    control = torch.stack(controls) & (bump < 0.05) & mask
    return (bump > 0.5) & mask, control


def hyperintensity_contrast(
    image: torch.Tensor, reference: torch.Tensor, region: torch.Tensor, control: torch.Tensor
) -> float:
    """``C`` of the module docstring for ``(N, H, W)`` stacks, pooled over all slices."""
    image, reference = image.double(), reference.double()
    if not bool(region.any()) or not bool(control.any()):
        raise InputError(None, "the hyperintensity region or its control band is empty")
    ratio_region = image[region].mean() / reference[region].mean()
    ratio_control = image[control].mean() / reference[control].mean()
    return float(ratio_region / ratio_control - 1.0)
