"""Regularisation weights that follow the data's scale, so one default serves every image.

k-space from different scanners, coils and receiver gains differs in scale by orders of
magnitude, and ``λ`` in ``½‖Ax − y‖² + λ R(x)`` scales with it (``R`` is 1-homogeneous). The
rule here fixes ``λ`` relative to the largest magnitude of the coil-combined zero-filled
image::

    λ = relative · max_r |(Aᴴ y)_r|

which is invariant to a global gain (``y → c y`` gives ``λ → c λ`` and ``x → c x``). The defaults
below were chosen on the 16-coil in-vivo brain slice (pulseq tutorial data) at 4× and 8× with
random, equispaced and Poisson-disc masks (reference: RSS of the fully sampled data, PSNR after
a least-squares intensity fit).

The scale rule fits one noise level. The noise-referenced rule uses the noise of the k-space
periphery when there is one (:func:`~medrestore.physics.mri.kspace_noise.kspace_noise_std`)::

    λ = c · σ̂,   c = NOISE_WEIGHTS[method],   and at least MIN_RELATIVE_WEIGHT · max|Aᴴy|

which is also gain-invariant, because the best scale-relative weight shrinks with the noise. It does
not transfer across sources by itself, so Cartesian and radial reconstruction use it only as the
starting weight of a hold-out cross-validation (:mod:`medrestore.solvers.holdout`; comparisons in
``benchmarks/recon-sources.md`` and ``benchmarks/radial-recon-sources.md``). ``DEFAULT_RELATIVE_WEIGHTS`` stay the
weights of the fallback and of the same-objective comparisons with sigpy and BART.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from medrestore.physics.mri.operators import LinearOperator

DEFAULT_RELATIVE_WEIGHTS = {"cs-wavelet": 1e-3, "cs-tv": 5e-4}
NOISE_WEIGHTS = {"cs-wavelet": 0.045, "cs-tv": 0.0225}
"""``λ / σ̂`` of the noise-referenced rule (chosen on the measured slice: ``c · σ̂/max|Aᴴy|`` ≈ the scale-rule default there)."""
RADIAL_NOISE_WEIGHTS = {"cs-wavelet": 0.3, "cs-tv": 0.3, "sense": 2.0}
"""``λ / (σ̂ √mean(w))`` on the density-weighted radial operator ``√w ⊙ F_nu S`` (chosen on ANTs r16/r30 slices:
128²–256², 48–160 golden-angle spokes, noise 0.0005–0.004 of ``max|y|``; scores in ``benchmarks/history.md``).
``sense``: the CG-SENSE Tikhonov weight per ``σ̂ √mean(w) / max|Aᴴ√w y|`` and per 128² pixels."""
MIN_RELATIVE_WEIGHT = 5e-5
"""Floor of ``λ / max|Aᴴy|`` for (nearly) noise-free data."""


def data_scale(operator: LinearOperator, kspace: torch.Tensor) -> float:
    """``max_r |(Aᴴ y)_r|`` (a positive float; 1 for all-zero data)."""
    scale = float(operator.adjoint(kspace).abs().max())
    return scale if scale > 0 else 1.0


def relative_weight(
    method: str, scale: float, noise: float | None, noise_weights: Mapping[str, float] = NOISE_WEIGHTS
) -> float:
    """``λ / max|Aᴴy|`` for ``method``: ``max(c σ̂ / scale, MIN_RELATIVE_WEIGHT)``, the scale rule without ``σ̂``.

    Args:
        method: ``cs-wavelet`` or ``cs-tv``.
        scale: ``max|Aᴴy|`` (:func:`data_scale`).
        noise: ``σ̂`` of the noise of ``y`` (``None``: unknown).
        noise_weights: ``c`` per method (:data:`NOISE_WEIGHTS`; radial data: :data:`RADIAL_NOISE_WEIGHTS`).
    """
    if noise is None or not noise > 0:
        return DEFAULT_RELATIVE_WEIGHTS[method]
    return max(noise_weights[method] * noise / scale, MIN_RELATIVE_WEIGHT)


def scaled_weight(operator: LinearOperator, kspace: torch.Tensor, relative: float) -> float:
    """``λ = relative · max|Aᴴ y|``."""
    return relative * data_scale(operator, kspace)
