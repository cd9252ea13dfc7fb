"""Image-quality and overlap metrics, tested against skimage and fastMRI's formulas.

* :mod:`~medrestore.metrics.basic` — MSE, MAE, NMSE, PSNR.
* :mod:`~medrestore.metrics.ssim` — SSIM (2-D/3-D, Gaussian or uniform window), one torch
  implementation shared with :mod:`medrestore.losses`.
* :mod:`~medrestore.metrics.overlap` — Dice and Jaccard for segmentations.
* :mod:`~medrestore.metrics.nema` — the gamma-camera measures of NEMA NU 1: line-source FWHM/FWTM,
  bar contrast, flood integral/differential uniformity.
* :mod:`~medrestore.metrics.conventions` — named conventions (``default``, ``fastmri``, ``oct``)
  and :func:`evaluate`, which scores a pair of images under one of them.

All metrics take NumPy arrays or torch tensors, compute in float64 and return Python floats.
"""

from medrestore.metrics.basic import mae, mse, nmse, psnr
from medrestore.metrics.conventions import CONVENTION_NAMES, CONVENTIONS, Convention, evaluate, get_convention
from medrestore.metrics.overlap import LabelOverlap, dice, jaccard
from medrestore.metrics.ssim import SSIMOptions, interior_mean, ssim, ssim_map, structural_similarity_map

__all__ = [
    "CONVENTIONS",
    "CONVENTION_NAMES",
    "Convention",
    "LabelOverlap",
    "SSIMOptions",
    "dice",
    "evaluate",
    "get_convention",
    "interior_mean",
    "jaccard",
    "mae",
    "mse",
    "nmse",
    "psnr",
    "ssim",
    "ssim_map",
    "structural_similarity_map",
]
