"""Three-class brain tissue segmentation by a Gaussian mixture, and its agreement with a reference.

The denoising studies judge a denoiser by what it does to a downstream analysis: segment
cerebrospinal fluid (CSF), grey matter (GM) and white matter (WM) of the denoised, the noisy and
the clean volume, and compare each with the clean volume's segmentation by the Jaccard index
``J = |A ∩ B| / |A ∪ B|`` per class.

:func:`gaussian_mixture_segmentation` fits ``p(x) = Σ_k π_k N(x; μ_k, s_k²)`` to the
intensities inside a brain mask by expectation–maximisation (Dempster, Laird & Rubin 1977):

    E: r_ik = π_k N(x_i; μ_k, s_k²) / Σ_j π_j N(x_i; μ_j, s_j²)
    M: π_k = mean_i r_ik,  μ_k = Σ_i r_ik x_i / Σ_i r_ik,  s_k² = Σ_i r_ik (x_i − μ_k)² / Σ_i r_ik

started from the ``(k + ½)/K`` quantiles, and labels each voxel by its most probable class,
ordered by mean (T1: 1 = CSF, 2 = GM, 3 = WM; 0 outside the mask) — the intensity model of
FAST/SPM without their spatial priors (Zhang, Brady & Smith, IEEE TMI 20, 2001).

:func:`hmrf_segmentation` adds that spatial prior: a hidden Markov random field whose Potts
energy ``β Σ_{j∈N(i)} [l_i ≠ l_j]`` over the 6 neighbours favours labels that agree with their
neighbours, fitted by expectation–maximisation with iterated conditional modes (Zhang, Brady &
Smith 2001, FAST's model), as dipy's ``TissueClassifierHMRF`` implements it. Noise flips isolated
voxels between classes in a mixture; the prior keeps them with their neighbours, as the
segmentations a denoiser is judged by downstream do.
"""

from __future__ import annotations

import dataclasses

import importlib
import warnings

import numpy as np

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.metrics.arrays import ArrayLike, to_float64
from medrestore.metrics.overlap import jaccard


@dataclasses.dataclass(frozen=True)
class MixtureFit:
    """A fitted 1-D Gaussian mixture, components sorted by mean.

    Attributes:
        weights, means, stds: ``(K,)`` each.
        iterations: EM iterations run.
        log_likelihood: mean log-likelihood per voxel at the end.
    """

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    iterations: int
    log_likelihood: float


def _log_densities(values: np.ndarray, fit_weights: np.ndarray, means: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """``(N, K)``: ``log π_k + log N(x_i; μ_k, s_k²)``."""
    z = (values[:, None] - means[None, :]) / stds[None, :]
    return np.log(fit_weights)[None, :] - np.log(stds)[None, :] - 0.5 * np.log(2 * np.pi) - 0.5 * z**2


def fit_gaussian_mixture(values: np.ndarray, classes: int = 3, iterations: int = 200, tolerance: float = 1e-7) -> MixtureFit:
    """EM fit of a ``classes``-component 1-D Gaussian mixture to ``values`` ``(N,)`` (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size < 10 * classes:
        raise InputError(None, f"a {classes}-class mixture needs at least {10 * classes} voxels, got {values.size}")
    spread = float(values.std()) or 1.0
    means = np.quantile(values, (np.arange(classes) + 0.5) / classes)
    stds = np.full(classes, spread / classes)
    weights = np.full(classes, 1.0 / classes)
    floor = 1e-3 * spread
    previous = -np.inf
    log_likelihood = previous
    iteration = 0
    for iteration in range(1, iterations + 1):
        log_joint = _log_densities(values, weights, means, stds)
        peak = log_joint.max(axis=1, keepdims=True)
        normaliser = peak[:, 0] + np.log(np.exp(log_joint - peak).sum(axis=1))
        responsibilities = np.exp(log_joint - normaliser[:, None])
        totals = responsibilities.sum(axis=0) + 1e-12
        weights = totals / values.size
        means = (responsibilities * values[:, None]).sum(axis=0) / totals
        stds = np.sqrt((responsibilities * (values[:, None] - means) ** 2).sum(axis=0) / totals).clip(min=floor)
        log_likelihood = float(normaliser.mean())
        if abs(log_likelihood - previous) < tolerance:
            break
        previous = log_likelihood
    order = np.argsort(means)
    return MixtureFit(weights[order], means[order], stds[order], iteration, log_likelihood)


def gaussian_mixture_segmentation(image: ArrayLike, mask: ArrayLike, classes: int = 3) -> tuple[np.ndarray, MixtureFit]:
    """Labels ``(*spatial)`` int64: 0 outside ``mask``, ``1…classes`` by increasing class mean inside.

    Args:
        image: intensities ``(*spatial)``.
        mask: boolean brain mask of the same shape.
        classes: mixture components (3: CSF, GM, WM of a T1-weighted image).
    """
    values = to_float64(image, "image").cpu().numpy()
    inside = np.asarray(to_float64(mask, "mask").cpu().numpy() > 0)
    if inside.shape != values.shape:
        raise InputError(None, f"mask shape {inside.shape} differs from the image shape {values.shape}")
    fit = fit_gaussian_mixture(values[inside], classes)
    labels = np.zeros(values.shape, dtype=np.int64)
    log_joint = _log_densities(values[inside], fit.weights, fit.means, fit.stds)
    labels[inside] = 1 + np.argmax(log_joint, axis=1)
    return labels, fit


HMRF_BETA = 0.1
"""Weight ``β`` of the Potts prior of :func:`hmrf_segmentation` (dipy's tissue-classification example uses 0.1)."""
HMRF_ITERATIONS = 20


def hmrf_segmentation(
    image: ArrayLike, mask: ArrayLike, classes: int = 3, beta: float = HMRF_BETA, iterations: int = HMRF_ITERATIONS
) -> np.ndarray:
    """Labels ``(*spatial)`` int64 of a 3-D ``image`` by dipy's HMRF (module docstring): 0 outside ``mask``,
    ``1…classes`` by increasing class mean inside (T1: 1 = CSF, 2 = GM, 3 = WM).

    Raises:
        InputError: not 3-D, or a mask of another shape.
        MedrestoreError: dipy missing, or a fit that failed (e.g. a class without any intensity spread).
    """
    values = to_float64(image, "image").cpu().numpy()
    inside = np.asarray(to_float64(mask, "mask").cpu().numpy() > 0)
    if values.ndim != 3 or inside.shape != values.shape:
        raise InputError(None, f"HMRF segmentation takes a 3-D image and a mask of its shape, got {values.shape} and {inside.shape}")
    try:
        tissue = importlib.import_module("dipy.segment.tissue")
    except ImportError as error:
        raise MedrestoreError(f"the HMRF tissue segmentation needs dipy: pip install 'medrestore[bench]' ({error})") from None
    shifted = np.where(inside, values - values[inside].min() + 1e-3 * (np.ptp(values[inside]) or 1.0), 0.0)  # dipy: 0 = background
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, final, _ = tissue.TissueClassifierHMRF(verbose=False).classify(shifted, classes, beta, max_iter=iterations)
    labels = np.where(inside, np.asarray(final, dtype=np.int64), 0)
    if labels.min() < 0 or labels.max() > classes:
        raise MedrestoreError("the HMRF tissue segmentation did not converge (a class without intensity spread?)")
    return labels


def class_jaccard(labels: np.ndarray, reference_labels: np.ndarray, classes: int = 3) -> dict[str, float]:
    """Jaccard per class (``"1"…``) of ``labels`` against ``reference_labels`` and their ``"mean"``."""
    scores = {str(label): float(jaccard(labels, reference_labels, label)) for label in range(1, classes + 1)}
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def tissue_jaccard(image: ArrayLike, reference_labels: np.ndarray, mask: ArrayLike, classes: int = 3) -> dict[str, float]:
    """Jaccard per class (``"1"…``) and ``"mean"`` of ``image``'s mixture labels against ``reference_labels``."""
    labels, _ = gaussian_mixture_segmentation(image, mask, classes)
    return class_jaccard(labels, reference_labels, classes)
