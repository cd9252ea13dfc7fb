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


GEMM_MIN_ELEMENTS = 1 << 22
"""Fine-grid arrays of at least this many samples take both passes as matrix products (:func:`_banded_windows`,
:func:`_banded_windows_adjoint`); smaller ones a strided ``conv1d`` and its transpose, faster there
(``benchmarks/nm_mlem_operators.py``)."""
GEMM_BLOCK = 32
"""Coarse samples per window of the matrix-product passes (at least the taps' overhang, :func:`_block`)."""


def _block(taps: torch.Tensor, scale: int) -> int:
    """Coarse outputs per window: :data:`GEMM_BLOCK`, or more where the taps overhang a window by more than one."""
    return max(GEMM_BLOCK, -(-(taps.numel() - scale) // scale))


def _band(taps: torch.Tensor, scale: int, block: int) -> torch.Tensor:
    """``M (k·b + T − k, b)``: column ``j`` holds the taps from row ``k·j``, so ``window @ M`` is ``b`` binned outputs."""
    length = taps.numel()
    band = torch.zeros(scale * block + length - scale, block, dtype=taps.dtype, device=taps.device)
    for column in range(block):
        band[scale * column : scale * column + length, column] = taps
    return band


def _banded_windows(rows: torch.Tensor, taps: torch.Tensor, scale: int, outputs: int) -> torch.Tensor:
    """``y[i] = Σ_u c[u] x̃[k·i + u]`` of padded rows ``(R, L)`` as one matrix product: ``b`` outputs at a time from
    overlapping windows of ``k·b + T − k`` samples (a GEMM, where a one-channel ``conv1d`` is bound by memory)."""
    block = _block(taps, scale)
    blocks = -(-outputs // block)
    width = scale * block + taps.numel() - scale
    needed = scale * block * (blocks - 1) + width
    if rows.shape[-1] < needed:
        rows = functional.pad(rows, (0, needed - rows.shape[-1]))
    windows = rows.unfold(-1, width, scale * block)  # (R, blocks, width), strided
    return (windows @ _band(taps, scale, block)).reshape(rows.shape[0], -1)[:, :outputs]


def _binned_blur_last_axis(x: torch.Tensor, taps: torch.Tensor, radius: int, scale: int) -> torch.Tensor:
    """``B_k H`` along the last axis: ``(..., k·n) → (..., n)``, one strided correlation (a matrix product on large
    arrays, :data:`GEMM_MIN_ELEMENTS`)."""
    length = x.shape[-1]
    index = reflect_indices(length, radius, radius, x.device)
    rows = x.reshape(-1, length).index_select(-1, index)
    taps = taps.to(device=x.device, dtype=x.dtype)
    if x.numel() >= GEMM_MIN_ELEMENTS:
        binned = _banded_windows(rows, taps, scale, length // scale)
    else:
        binned = functional.conv1d(rows[:, None], taps.view(1, 1, -1), stride=scale)[:, 0]
    return binned.reshape(*x.shape[:-1], length // scale)


def _binned_blur_last_axis_adjoint(r: torch.Tensor, taps: torch.Tensor, radius: int, scale: int) -> torch.Tensor:
    """``(B_k H)ᵀ`` along the last axis: the strided transposed correlation (a full convolution with the taps),
    scatter-added back onto the reflected indices the forward pass gathered its padding from; on large arrays
    (:data:`GEMM_MIN_ELEMENTS`) as :func:`_banded_windows_adjoint`."""
    length = r.shape[-1] * scale
    taps = taps.to(device=r.device, dtype=r.dtype)
    if r.numel() * scale >= GEMM_MIN_ELEMENTS:
        return _banded_windows_adjoint(r, taps, radius, scale)
    index = reflect_indices(length, radius, radius, r.device)
    spread = functional.conv_transpose1d(r.reshape(-1, 1, r.shape[-1]), taps.view(1, 1, -1), stride=scale)
    folded = torch.zeros(spread.shape[0], length, dtype=r.dtype, device=r.device)
    folded.index_add_(1, index, spread[:, 0])
    return folded.reshape(*r.shape[:-1], length)


def _banded_windows_adjoint(r: torch.Tensor, taps: torch.Tensor, radius: int, scale: int) -> torch.Tensor:
    """The transpose of :func:`_banded_windows` and the padding: each window's outputs spread back by the transposed
    band (one matrix product), the windows' overlaps added, and the padding folded back onto the reflected indices
    the forward pass gathered it from."""
    outputs = r.shape[-1]
    length = outputs * scale
    block = _block(taps, scale)
    blocks, step = -(-outputs // block), scale * block
    coarse = functional.pad(r.reshape(-1, outputs), (0, blocks * block - outputs)).reshape(-1, blocks, block)
    spread = coarse @ _band(taps, scale, block).T  # (R, blocks, width): width − step ≤ step samples overhang
    padded = torch.zeros(coarse.shape[0], blocks + 1, step, dtype=r.dtype, device=r.device)
    padded[:, :blocks] = spread[..., :step]
    padded[:, 1:, : spread.shape[-1] - step] += spread[..., step:]
    padded = padded.reshape(coarse.shape[0], -1)
    index = reflect_indices(length, radius, radius, r.device)  # index[radius + i] = i inside
    folded = padded[:, radius : radius + length].clone()
    edges = torch.cat([torch.arange(radius, device=r.device), torch.arange(radius + length, length + 2 * radius, device=r.device)])
    folded.index_add_(1, index[edges], padded[:, edges])
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
