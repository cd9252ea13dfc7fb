"""Solvers: pure functions returning ``(x, info)``, and the transforms they regularise with.

* :func:`~medrestore.solvers.cg.conjugate_gradient`, :func:`~medrestore.solvers.fista.fista`,
  :func:`~medrestore.solvers.primal_dual.primal_dual_hybrid_gradient` — generic algorithms;
* :mod:`~medrestore.solvers.proximal` — soft thresholding and ball projections;
* :class:`~medrestore.solvers.wavelet.WaveletTransform`, :class:`~medrestore.solvers.finite_difference.FiniteDifference`
  — sparsifying operators (torch, CPU/GPU, exact adjoints);
* :func:`~medrestore.solvers.total_variation.tv_proximal` — the TV prox (FGP);
* :mod:`~medrestore.solvers.reconstruction` — CG-SENSE, L1-wavelet and TV reconstructions on any operator;
* :mod:`~medrestore.solvers.regularisation` — data-scaled regularisation weights;
* :mod:`~medrestore.solvers.holdout` — the weight chosen by k-space hold-out cross-validation;
* :mod:`~medrestore.solvers.mlem` — ML-EM super-resolution of Poisson counts (nuclear medicine).
"""

from medrestore.solvers.cg import CGInfo, conjugate_gradient
from medrestore.solvers.finite_difference import FiniteDifference
from medrestore.solvers.fista import FistaInfo, fista
from medrestore.solvers.primal_dual import DualTerm, PrimalDualInfo, primal_dual_hybrid_gradient
from medrestore.solvers.proximal import group_soft_threshold, project_group_ball, project_linf_ball, soft_threshold
from medrestore.solvers.reconstruction import (
    WaveletOptions,
    cg_sense,
    data_fidelity,
    l1_wavelet_objective,
    l1_wavelet_reconstruction,
    total_variation,
    tv_objective,
    tv_primal_dual,
    tv_reconstruction,
)
from medrestore.solvers.regularisation import DEFAULT_RELATIVE_WEIGHTS, data_scale, scaled_weight
from medrestore.solvers.total_variation import tv_proximal
from medrestore.solvers.wavelet import WaveletTransform

__all__ = [
    "DEFAULT_RELATIVE_WEIGHTS",
    "CGInfo",
    "DualTerm",
    "FiniteDifference",
    "FistaInfo",
    "PrimalDualInfo",
    "WaveletOptions",
    "WaveletTransform",
    "cg_sense",
    "conjugate_gradient",
    "data_fidelity",
    "data_scale",
    "fista",
    "group_soft_threshold",
    "l1_wavelet_objective",
    "l1_wavelet_reconstruction",
    "primal_dual_hybrid_gradient",
    "project_group_ball",
    "project_linf_ball",
    "scaled_weight",
    "soft_threshold",
    "total_variation",
    "tv_objective",
    "tv_primal_dual",
    "tv_reconstruction",
    "tv_proximal",
]
