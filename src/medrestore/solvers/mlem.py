"""Maximum-likelihood expectation maximisation (ML-EM) super-resolution of Poisson counts.

Model: coarse counts ``y ~ Poisson(A x)`` with ``A = B_k ∘ H``: ``H`` the Gaussian system
response on the fine grid (FWHM in fine pixels, half-sample symmetric edges,
:func:`~medrestore.physics.blur.gaussian_blur`) and ``B_k`` the detector binning (sum of each
``k × k`` block, :func:`~medrestore.physics.gamma_camera.bin_counts`) — the forward model of
:class:`~medrestore.physics.degradations.GammaCamera`. The ML-EM update (Richardson, JOSA 1972;
Lucy, AJ 1974; Shepp & Vardi, IEEE TMI 1982)::

    x ← x / (Aᵀ1) · Aᵀ( y / (A x) )

keeps ``x ≥ 0``, increases the Poisson likelihood at every step and keeps the total of the
modelled counts: ``Σ A x = Σ y`` after every iteration. Run to convergence it fits the noise;
stopping early (a few to a few tens of iterations) is the regularisation. ``Aᵀ`` is the exact
adjoint of ``A`` (transposed convolutions folded back onto the reflected indices, so the
edges are handled exactly: ``⟨A x, r⟩ = ⟨x, Aᵀ r⟩``). The start is the count-preserving bicubic interpolation, clipped at a small
positive floor so no pixel is frozen at zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as functional

from medrestore.core.errors import ConfigError, InputError
from medrestore.physics.blur import fwhm_to_sigma, gaussian_taps, reflect_indices, upsample

FLOOR = 1e-6
"""Relative floor of the start (× the mean) and of the modelled counts in the ratio."""


@dataclasses.dataclass(frozen=True)
class MLEMInfo:
    """What :func:`mlem_super_resolution` did: iterations and (when tracked) the Poisson log-likelihood after each."""

    iterations: int
    log_likelihood: tuple[float, ...]


def _binned_taps(fwhm: float, scale: int, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """Taps ``c = g ⊛ 1_k`` of blur-then-bin along one axis (length ``2r + k``) and the blur's radius ``r``.

    Binning ``k`` blurred samples is one correlation with the Gaussian taps ``g`` (of
    :func:`~medrestore.physics.blur.gaussian_taps`) summed over ``k`` shifts, evaluated every ``k``-th
    sample: ``y[i] = Σ_u c[u] x̃[k·i + u]`` on the half-sample-symmetric padding ``x̃`` of the blur.
    """
    weights, first = gaussian_taps(fwhm_to_sigma(fwhm), 0.0, dtype)
    combined = functional.conv_transpose1d(weights.view(1, 1, -1), torch.ones(1, 1, scale, dtype=dtype))[0, 0]
    return combined, -first


def _binned_blur_last_axis(x: torch.Tensor, taps: torch.Tensor, radius: int, scale: int) -> torch.Tensor:
    """``B_k H`` along the last axis: ``(..., k·n) → (..., n)``, one strided correlation."""
    length = x.shape[-1]
    index = reflect_indices(length, radius, radius, x.device)
    rows = x.reshape(-1, 1, length).index_select(-1, index)
    binned = functional.conv1d(rows, taps.to(x.device).view(1, 1, -1), stride=scale)
    return binned.reshape(*x.shape[:-1], length // scale)


def _binned_blur_last_axis_adjoint(r: torch.Tensor, taps: torch.Tensor, radius: int, scale: int) -> torch.Tensor:
    """``(B_k H)ᵀ`` along the last axis: the strided transposed correlation (a full convolution with the taps),
    scatter-added back onto the reflected indices the forward pass gathered its padding from."""
    length = r.shape[-1] * scale
    index = reflect_indices(length, radius, radius, r.device)
    spread = functional.conv_transpose1d(r.reshape(-1, 1, r.shape[-1]), taps.to(r.device).view(1, 1, -1), stride=scale)
    folded = torch.zeros(spread.shape[0], length, dtype=r.dtype, device=r.device)
    folded.index_add_(1, index, spread[:, 0])
    return folded.reshape(*r.shape[:-1], length)


def binned_blur(fwhm: float, scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``A = B_k ∘ H``: ``(kh, kw) → (h, w)`` (module docstring).

    Equal to ``bin_counts(gaussian_blur(x, fwhm), k)`` on sides that are multiples of ``k``, computed
    as one strided correlation per axis (:func:`_binned_taps`): the blur is evaluated only where the
    binning keeps it, ``k`` times fewer outputs per axis.
    """

    def forward(x: torch.Tensor) -> torch.Tensor:
        taps, radius = _binned_taps(fwhm, scale, x.dtype)
        rows = _binned_blur_last_axis(x, taps, radius, scale)
        return _binned_blur_last_axis(rows.movedim(-2, -1), taps, radius, scale).movedim(-1, -2).contiguous()

    return forward


def gaussian_blur_adjoint(x: torch.Tensor, fwhm: float) -> torch.Tensor:
    """``Hᵀ x`` for ``H`` = :func:`~medrestore.physics.blur.gaussian_blur` of the last two axes (exact, edges included):
    :func:`binned_blur_adjoint` without binning (``k = 1``)."""
    return binned_blur_adjoint(fwhm, 1)(x)


def binned_blur_adjoint(fwhm: float, scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``Aᵀ = Hᵀ ∘ B_kᵀ``: ``(h, w) → (kh, kw)`` (``B_kᵀ`` copies each coarse value into its ``k × k`` block),
    the exact adjoint of :func:`binned_blur`'s strided correlations."""

    def transpose(residual: torch.Tensor) -> torch.Tensor:
        taps, radius = _binned_taps(fwhm, scale, residual.dtype)
        columns = _binned_blur_last_axis_adjoint(residual.movedim(-2, -1), taps, radius, scale).movedim(-1, -2)
        return _binned_blur_last_axis_adjoint(columns.contiguous(), taps, radius, scale)

    return transpose


def poisson_log_likelihood(counts: torch.Tensor, expected: torch.Tensor) -> float:
    """``Σ y log(A x) − A x`` (the constant ``−log y!`` left out)."""
    positive = expected.clamp(min=1e-12)
    return float((counts * torch.log(positive) - positive).sum())


def mlem_super_resolution(
    counts: torch.Tensor, fwhm: float, scale: int, iterations: int, track_likelihood: bool = False
) -> tuple[torch.Tensor, MLEMInfo]:
    """ML-EM estimate of the fine-grid counts behind coarse counts (module docstring).

    Args:
        counts: coarse counts ``(h, w)``, non-negative.
        fwhm: system response FWHM in *fine* pixels (``R_s / fine pixel size``), ``>= 0``.
        scale: binning factor ``k``.
        iterations: ML-EM iterations (``>= 0``; 0 returns the start).
        track_likelihood: record the log-likelihood after every iteration (one more forward each).

    Returns:
        ``(x (k·h, k·w) counts per fine pixel, info)``, float64 for float64 counts, else float32;
        ``Σ B_k H x = Σ counts`` up to rounding.

    Example:
        >>> y = torch.poisson(torch.full((8, 8), 100.0), generator=torch.Generator().manual_seed(0))
        >>> x, info = mlem_super_resolution(y, fwhm=3.0, scale=4, iterations=5)
        >>> x.shape, info.iterations
        (torch.Size([32, 32]), 5)
    """
    if counts.ndim != 2 or not bool(torch.isfinite(counts).all()) or float(counts.min()) < 0:
        raise InputError(None, f"ML-EM needs finite non-negative 2-D counts, got shape {tuple(counts.shape)}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1 or iterations < 0 or not fwhm >= 0:
        raise ConfigError(f"ML-EM needs scale >= 1, iterations >= 0 and fwhm >= 0; got {scale}, {iterations}, {fwhm}")
    y = counts.to(torch.float64 if counts.dtype == torch.float64 else torch.float32)
    total = float(y.sum())
    start = upsample(y / scale**2, scale, "bicubic", spatial_ndim=2)
    mean = max(total / start.numel(), 1e-12)
    x = start.clamp(min=FLOOR * mean)
    if total <= 0:
        return torch.zeros_like(x), MLEMInfo(0, ())
    x = x * (total / float(x.sum()))
    forward, transpose = binned_blur(float(fwhm), scale), binned_blur_adjoint(float(fwhm), scale)
    sensitivity = transpose(torch.ones_like(y)).clamp(min=1e-12)
    likelihood = []
    for _ in range(iterations):
        modelled = forward(x)
        x = x * transpose(y / modelled.clamp(min=FLOOR * mean)) / sensitivity
        if track_likelihood:
            likelihood.append(poisson_log_likelihood(y, forward(x)))
    return x, MLEMInfo(iterations, tuple(likelihood))
