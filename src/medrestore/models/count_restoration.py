"""The classical gamma-camera super-resolution methods as named methods: ML-EM, optionally on DCT-denoised counts.

A planar acquisition ``y`` (coarse counts ``(h, w)``) is modelled as ``y ~ Poisson(B H x)``: ``x`` the fine
activity ``(k·h, k·w)``, ``H`` the camera's system response (a Gaussian of ``fwhm_pixels`` fine pixels) and
``B`` the ×``k`` binning. :class:`CountRestoration` estimates ``x`` by

1. (``denoise``) DCT denoising of the Anscombe-transformed counts at noise level ``σ``
   (:func:`~medrestore.solvers.dct_denoise.denoise_counts`; Poisson counts give ``σ = 1``);
2. ML-EM for the binned, blurred model (Shepp & Vardi, IEEE TMI 1(2), 1982;
   :func:`~medrestore.solvers.mlem.mlem_super_resolution`);
3. a Gaussian post-filter of ``post_filter_fwhm`` fine pixels (0: none);

and :func:`keep_total_counts` gives the estimate the acquisition's total. ``dct-mlem`` and ``mlem`` of
``medrestore superres`` are :data:`DCT_MLEM` and :data:`MLEM`; their settings were chosen with
``benchmarks/nm_mlem_grid.py`` and the default by worst case in ``benchmarks/nm-real.md``.

ML-EM recovers a frequency the response damps by ``H(f)`` only after many iterations when ``H(f)`` is small, and
``H(f) = exp(−(π f FWHM)² / (4 ln 2))`` falls faster the wider the response is in fine pixels: the same iteration
count leaves fine-pixel images (a response of 15 pixels at 0.6 mm) blurrier than 1-mm ones (9 pixels).
:func:`response_iterations` scales the count with the response's squared width beyond
:data:`REFERENCE_RESPONSE_FWHM` pixels, as ``dct-mlem`` does when no iteration count is given.
"""

from __future__ import annotations

import dataclasses

import torch

from medrestore.physics.blur import gaussian_blur
from medrestore.solvers.dct_denoise import denoise_counts
from medrestore.solvers.mlem import mlem_super_resolution

__all__ = [
    "CLASSICAL_COUNT_METHODS", "CountRestoration", "DCT_MLEM", "MLEM", "REFERENCE_RESPONSE_FWHM", "keep_total_counts",
    "response_iterations",
]  # fmt: skip

REFERENCE_RESPONSE_FWHM = 9.0
"""The response FWHM (fine pixels) up to which :func:`response_iterations` keeps the given count: the default LEGP
at 10 cm on 1-mm pixels (8.9), where ``dct-mlem``'s 40 iterations were chosen."""


def response_iterations(iterations: int, fwhm_pixels: float) -> int:
    """``round(iterations · (fwhm_pixels / 9)²)`` within ``[iterations, 4 · iterations]``: ML-EM iterations for a
    response of ``fwhm_pixels`` fine pixels that reach about the detail ``iterations`` reach at
    :data:`REFERENCE_RESPONSE_FWHM` (module docstring; the bound keeps responses wider than 18 pixels, finer pixels
    than any camera image measured, at four times the cost).

    >>> response_iterations(40, 8.9), response_iterations(40, 15.1), response_iterations(40, 29.7)
    (40, 113, 160)
    """
    return min(4 * iterations, max(iterations, round(iterations * (fwhm_pixels / REFERENCE_RESPONSE_FWHM) ** 2)))


def keep_total_counts(restored: torch.Tensor, total: float) -> torch.Tensor:
    """``max(y, 0) · total / Σ max(y, 0)`` (float64): non-negative counts summing to ``total``.

    A restoration with no positive value keeps ``total`` as a uniform image; ``total = 0`` gives zeros.
    """
    positive = restored.clamp(min=0.0).to(torch.float64)
    mass = float(positive.sum())
    if total <= 0:
        return torch.zeros_like(positive)
    if mass <= 0:
        return torch.full_like(positive, total / positive.numel())
    return positive * (total / mass)


@dataclasses.dataclass(frozen=True)
class CountRestoration:
    """ML-EM super-resolution of planar counts, optionally on DCT-denoised counts (module docstring).

    Attributes:
        denoise: DCT-denoise the Anscombe-transformed counts first.
        iterations: ML-EM iterations.
        post_filter_fwhm: Gaussian post-filter of the ML-EM estimate, FWHM in fine pixels (0: none).
    """

    denoise: bool
    iterations: int
    post_filter_fwhm: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, got {self.iterations!r}")
        if self.post_filter_fwhm < 0:
            raise ValueError(f"the post-filter FWHM must be >= 0, got {self.post_filter_fwhm}")

    def density(self, counts: torch.Tensor, fwhm_pixels: float, scale: int, sigma: float = 1.0) -> torch.Tensor:
        """The fine estimate ``(k·h, k·w)`` of coarse ``counts (h, w)`` before the total is restored.

        Args:
            counts: coarse counts ``(h, w)``.
            fwhm_pixels: the system response's FWHM in fine pixels.
            scale: ``k``.
            sigma: the noise level of the Anscombe-transformed counts (``denoise`` only).
        """
        counts = denoise_counts(counts, sigma=sigma) if self.denoise else counts
        fine, _ = mlem_super_resolution(counts.to(torch.float32), fwhm_pixels, scale, self.iterations)
        return gaussian_blur(fine, fwhm=self.post_filter_fwhm) if self.post_filter_fwhm > 0 else fine

    def __call__(self, counts: torch.Tensor, fwhm_pixels: float, scale: int, sigma: float = 1.0) -> torch.Tensor:
        """Fine counts ``(k·h, k·w)`` float64 with the total of ``counts``."""
        return keep_total_counts(self.density(counts, fwhm_pixels, scale, sigma), float(counts.sum(dtype=torch.float64)))


DCT_MLEM = CountRestoration(denoise=True, iterations=40, post_filter_fwhm=1.0)
"""``dct-mlem``: DCT denoising, 40 ML-EM iterations, a 1-pixel post-filter."""
MLEM = CountRestoration(denoise=False, iterations=20, post_filter_fwhm=2.0)
"""``mlem``: 20 ML-EM iterations, a 2-pixel post-filter."""
CLASSICAL_COUNT_METHODS = {"dct-mlem": DCT_MLEM, "mlem": MLEM}
"""The classical methods of ``medrestore superres`` by name."""
