"""Denoising of 4-D series ``(x, y, z, t)`` that uses the volume axis: MP-PCA and Patch2Self (dipy).

Per-volume filters (non-local means, networks) see one time point at a time. A series of ``T``
repetitions of one anatomy holds far more information: the signal of a small patch across the
``T`` volumes lives in a few principal components, the noise in all of them.

* **MP-PCA** (Veraart et al., *NeuroImage* 142, 2016; ``mppca``): the ``N = (2r + 1)³`` voxels of a
  patch by ``T`` volumes form a matrix ``X`` (``N × T``); the eigenvalues ``λ`` of its covariance
  that fit the Marchenko–Pastur law of pure noise (support ``σ²(1 ± √(T/N))²``) are removed and
  ``X`` is rebuilt from the rest, ``X̂ = U_k U_kᵀ X``; overlapping patches are averaged. ``σ`` is
  estimated from the discarded eigenvalues, so no noise level is given.
* **Patch2Self** (Fadnavis et al., *NeurIPS* 2020; ``patch2self``): each volume ``j`` is
  predicted from the others by one linear regression per volume, fitted over all voxels,
  ``x̂_j = Σ_{i≠j} β_i x_i`` (ordinary least squares, J-invariance: the noise of volume ``j`` is
  independent of the regressors, so it cannot be reproduced).

Both come from dipy (``dipy.denoise``), whose implementations the papers' authors wrote; this
module is the thin, typed layer between them and medrestore's ``(x, y, z, t)`` float arrays.
dipy (and scikit-learn, which Patch2Self fits with) is imported only when one of them runs (extra
``medrestore[bench]``).

A time course that differs between volumes in a few voxels only (a BOLD response) is a
low-rank signal too, so it survives MP-PCA where it is above the noise edge. Patch2Self keeps only
what one linear combination of the other volumes, shared by all voxels, predicts: a response
confined to a few voxels is largely removed with the noise, so its tSNR gain on fMRI says nothing
about kept activation. It suits series whose volumes differ globally, as diffusion series do
(``benchmarks/mri_series_denoise.py`` measures both on a simulated block design).
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from types import ModuleType

import numpy as np
from scipy import ndimage

from medrestore.core.errors import InputError, MedrestoreError

SERIES_METHODS = ("mppca", "patch2self")
"""The 4-D methods of this module, as ``medrestore denoise --method`` names them."""
MIN_VOLUMES = 3
"""Fewest volumes a series method takes (Patch2Self regresses each on the others; MP-PCA needs ``T`` ≥ 3)."""


@dataclasses.dataclass(frozen=True)
class MPPCASettings:
    """``mppca``: patches of ``(2·patch_radius + 1)³`` voxels (2: 125 voxels, more than the 75
    volumes of a typical fMRI run, as the Marchenko–Pastur fit wants ``N > T``)."""

    patch_radius: int = 2


@dataclasses.dataclass(frozen=True)
class Patch2SelfSettings:
    """``patch2self``: regressors from ``(2·patch_radius + 1)³`` neighbours of each voxel in the other volumes
    (0: the voxel itself, the paper's default), ordinary least squares (``model="ols"``), dipy's ``version`` 3
    (regressions fitted on a count-sketch of the voxels, Fadnavis et al. 2024; dipy's default). Its version 1
    returns time courses scaled down by about a third on a series of identical volumes plus noise, where a plain
    least-squares fit (and version 3) keeps their mean (``tests/test_mri_series_denoise.py``)."""

    patch_radius: int = 0
    model: str = "ols"
    version: int = 3
    seed: int = 0
    """Seed of the count-sketch's random hashes (dipy draws them from NumPy's global generator, which is seeded for
    the call and restored after it, so one input gives one output)."""


def _optional(module: str) -> ModuleType:
    """The module ``module`` (dipy's, or scikit-learn's that dipy's Patch2Self uses), or a clear error naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MedrestoreError(f"MP-PCA and Patch2Self need dipy and scikit-learn: pip install 'medrestore[bench]' ({error})") from None


def _checked(series: np.ndarray) -> np.ndarray:
    """``series`` as C-contiguous float32 ``(x, y, z, t)``; refuses other shapes with a clear message."""
    array = np.asarray(series)
    if array.ndim != 4:
        raise InputError(None, f"MP-PCA and Patch2Self denoise a 4-D series (x, y, z, t); got shape {array.shape}")
    if array.shape[-1] < MIN_VOLUMES:
        raise InputError(None, f"MP-PCA and Patch2Self need at least {MIN_VOLUMES} volumes; got {array.shape[-1]}")
    return np.ascontiguousarray(array, dtype=np.float32)


def mppca_series(
    series: np.ndarray, settings: MPPCASettings = MPPCASettings(), mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MP-PCA of ``series`` ``(x, y, z, t)``: the denoised series (same shape, float32) and the noise σ map
    ``(x, y, z)`` that the Marchenko–Pastur fit estimated (image units, 0 where no patch was fitted).

    ``mask`` ``(x, y, z)``: only patches centred in it are fitted (the cost is one eigendecomposition per patch, so
    an empty background is worth leaving out); voxels no fitted patch covers keep their input values."""
    array = _checked(series)
    if mask is not None and np.asarray(mask).shape != array.shape[:3]:
        raise InputError(None, f"the mask {np.asarray(mask).shape} differs from the series' volumes {array.shape[:3]}")
    with warnings.catch_warnings():  # dipy averages empty slices in all-zero background patches
        warnings.simplefilter("ignore", RuntimeWarning)
        denoised, sigma = _optional("dipy.denoise.localpca").mppca(
            array, mask=None if mask is None else np.asarray(mask, bool), patch_radius=settings.patch_radius, return_sigma=True,
            out_dtype=np.float32, suppress_warning=True,
        )  # fmt: skip
    denoised = np.nan_to_num(np.asarray(denoised, dtype=np.float32))
    sigma = np.nan_to_num(np.asarray(sigma, dtype=np.float32))
    if mask is not None:
        cube = np.ones((2 * settings.patch_radius + 1,) * 3, bool)  # the voxels of the patches centred in the mask
        covered = ndimage.binary_dilation(np.asarray(mask, bool), structure=cube)
        denoised[~covered] = array[~covered]
    return denoised, sigma


def patch2self_series(series: np.ndarray, settings: Patch2SelfSettings = Patch2SelfSettings()) -> np.ndarray:
    """Patch2Self of ``series`` ``(x, y, z, t)``: every volume regressed on the others (same shape, float32,
    negative predictions clipped to 0 as magnitudes are ``>= 0``).

    dipy's Patch2Self is written for diffusion series and treats volumes with ``b <= 50`` apart; every volume
    is given ``b = 1000`` here, so all are denoised alike."""
    array = _checked(series)
    bvals = np.full(array.shape[-1], 1000.0)
    _optional("sklearn.linear_model")  # dipy imports it only when Patch2Self runs
    state = np.random.get_state()
    np.random.seed(settings.seed)
    try:
        denoised = _patch2self(array, bvals, settings)
    finally:
        np.random.set_state(state)
    return np.asarray(denoised, dtype=np.float32)


def _patch2self(array: np.ndarray, bvals: np.ndarray, settings: Patch2SelfSettings) -> np.ndarray:
    """dipy's ``patch2self`` call with ``settings``."""
    return _optional("dipy.denoise.patch2self").patch2self(
        array,
        bvals,
        patch_radius=(settings.patch_radius,) * 3,
        model=settings.model,
        out_dtype=np.float32,
        clip_negative_vals=True,
        shift_intensity=False,
        version=settings.version,
    )
