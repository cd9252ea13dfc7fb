"""Thermal noise level of multi-coil Cartesian k-space, from its own outer samples.

Far from the k-space centre the object's signal has decayed and the sampled values are
dominated by the receiver's complex Gaussian noise ``n ~ CN(0, σ²)`` (real and imaginary parts
each ``N(0, σ²/2)``). With the orthonormal FFT of :mod:`medrestore.core.fft` the same ``σ``
is the noise per pixel of each coil image, so it sets the scale of what a reconstruction must
not fit. Robust estimate on the sampled samples whose Chebyshev radius
``max(|k_y|/(N_y/2), |k_x|/(N_x/2))`` exceeds ``outer``, over all coils::

    σ̂ = √2 · 1.4826 · median(|v − median(v)|),   v = real and imaginary parts

(the median absolute deviation, consistent for Gaussians; residual signal in the periphery
only raises ``σ̂``). :func:`radial_noise_std` does the same for non-Cartesian samples, on those
beyond ``outer`` of the largest ``|k|``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["kspace_noise_std", "radial_noise_std"]

MAD_TO_STD = 1.4826


def kspace_noise_std(kspace: torch.Tensor, mask: torch.Tensor | None = None, outer: float = 0.6) -> float | None:
    """``σ̂`` of the complex noise of ``kspace`` ``(*coils, H, W)`` (see the module docstring).

    Args:
        kspace: complex k-space, zeros where not sampled.
        mask: sampled positions, broadcastable to ``(H, W)`` (``None``: every sample).
        outer: the periphery starts at this fraction of the half-width.

    Returns:
        ``σ̂`` in the units of ``kspace``, or ``None`` when fewer than 64 values lie in the periphery.
    """
    height, width = kspace.shape[-2:]
    ky = (torch.arange(height, device=kspace.device) - height // 2).abs()[:, None] / (height / 2)
    kx = (torch.arange(width, device=kspace.device) - width // 2).abs()[None, :] / (width / 2)
    periphery = torch.maximum(ky, kx) > outer
    if mask is not None:
        periphery = periphery & torch.broadcast_to(mask.to(device=kspace.device, dtype=torch.bool), (height, width))
    return _complex_mad_std(kspace[..., periphery])


def radial_noise_std(kspace: torch.Tensor, trajectory: torch.Tensor, outer: float = 0.8) -> float | None:
    """``σ̂`` of non-Cartesian k-space ``(*coils, *samples)`` from the samples with ``|k| > outer · max|k|``.

    ``trajectory`` is ``(*samples, ndim)`` (grid units); ``None`` when fewer than 64 values qualify.
    """
    radius = torch.linalg.vector_norm(trajectory.to(torch.float64), dim=-1).to(kspace.device)
    periphery = radius > outer * float(radius.max())
    ndim = periphery.ndim
    return _complex_mad_std(kspace[..., periphery] if ndim == 1 else kspace.flatten(-ndim)[..., periphery.flatten()])


def _complex_mad_std(values: torch.Tensor) -> float | None:
    """``√2 · 1.4826 · MAD`` of the real and imaginary parts of complex ``values`` (``None`` below 64 of them)."""
    parts = torch.cat([values.real.flatten(), values.imag.flatten()]).to(torch.float64)
    if parts.numel() < 64:
        return None
    return float(math.sqrt(2.0) * MAD_TO_STD * (parts - parts.median()).abs().median())
