"""Regularisation weights that follow the data's scale, so one default serves every image.

k-space from different scanners, coils and receiver gains differs in scale by orders of
magnitude, and ``λ`` in ``½‖Ax − y‖² + λ R(x)`` scales with it (``R`` is 1-homogeneous). The
rule here fixes ``λ`` relative to the largest magnitude of the coil-combined zero-filled
image::

    λ = relative · max_r |(Aᴴ y)_r|

which is invariant to a global gain (``y → c y`` gives ``λ → c λ`` and ``x → c x``). The defaults
below were chosen on the 16-coil in-vivo brain slice (pulseq tutorial data) at 4× and 8× with
random, equispaced and Poisson-disc masks (reference: RSS of the fully sampled data, PSNR after
a least-squares intensity fit). Over a sweep of 0.25×–4× the default, the default was the best
weight in 10 of the 12 (method, mask, acceleration) cases and within 0.25 dB of the best in the
other two (see ``benchmarks/README.md``). A noise-referenced rule (``λ ∝`` the noise level of
the outer k-space) was measured too: on these data the noise level and ``max|Aᴴy|`` differ by an
almost constant factor (44–56) across masks, so it gave no better single default.
"""

from __future__ import annotations

import torch

from medrestore.physics.mri.operators import LinearOperator

DEFAULT_RELATIVE_WEIGHTS = {"cs-wavelet": 1e-3, "cs-tv": 5e-4}


def data_scale(operator: LinearOperator, kspace: torch.Tensor) -> float:
    """``max_r |(Aᴴ y)_r|`` (a positive float; 1 for all-zero data)."""
    scale = float(operator.adjoint(kspace).abs().max())
    return scale if scale > 0 else 1.0


def scaled_weight(operator: LinearOperator, kspace: torch.Tensor, relative: float) -> float:
    """``λ = relative · max|Aᴴ y|``."""
    return relative * data_scale(operator, kspace)
