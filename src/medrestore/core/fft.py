"""Centred, orthonormal FFTs over the last ``ndim`` axes.

``fftc(x) = fftshift(fft(ifftshift(x), norm="ortho"))`` — the convention of fastMRI: the DC
sample sits at index ``N // 2`` in both domains and ``‖fftc(x)‖ = ‖x‖`` (Parseval), so the
adjoint of ``fftc`` is ``ifftc``.
"""

from __future__ import annotations

import torch


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def fftc(image: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred orthonormal FFT of the last ``ndim`` axes (complex in, complex out)."""
    axes = _axes(ndim)
    shifted = torch.fft.ifftshift(image, dim=axes)
    return torch.fft.fftshift(torch.fft.fftn(shifted, dim=axes, norm="ortho"), dim=axes)


def ifftc(kspace: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred orthonormal inverse FFT of the last ``ndim`` axes; the adjoint (and inverse) of :func:`fftc`."""
    axes = _axes(ndim)
    shifted = torch.fft.ifftshift(kspace, dim=axes)
    return torch.fft.fftshift(torch.fft.ifftn(shifted, dim=axes, norm="ortho"), dim=axes)


def rss(coil_images: torch.Tensor, coil_axis: int = 0) -> torch.Tensor:
    """Root-sum-of-squares coil combination: ``sqrt(Σ_c |x_c|²)`` along ``coil_axis``."""
    return torch.sqrt((coil_images.abs() ** 2).sum(dim=coil_axis))
