"""Coil sensitivities from a body-coil reference scan (Pruessmann et al., "SENSE: sensitivity
encoding for fast MRI", MRM 42(5), 1999, §"Sensitivity assessment").

A body coil sees the object with a nearly uniform receive profile, so dividing each array coil's
image by the body coil's image of the same slice leaves the array coil's sensitivity relative to
the body coil (the object cancels)::

    S_c(r) = G ∗ (c_c conj(b)) (r) / (G ∗ |b|² (r) + ε²),   ε = regularisation · max|b|

with ``c_c`` the array coil images and ``b`` the combined body-coil image, both at low
resolution — from the fully sampled k-space centre, tapered by a Hann window — since
sensitivities are smooth and the body coil's image is noisy (the ratio would otherwise divide
noise by noise). ``G`` is a Gaussian of ``smoothing`` pixels (normalised convolution,
Knutsson & Westin, CVPR 1993): where the object is dark (cerebrospinal fluid, the gap between
brain and scalp) the plain ratio ``c/b`` divides noise by noise, while the weighted average
borrows the sensitivity from the bright neighbourhood; ``smoothing = 0`` is the plain ratio. The body coil's channels (a quadrature pair, say) are combined linearly with
the first principal component ``v`` of its calibration data, ``b = Σ_j conj(v_j) b_j``, which
keeps a smooth phase. Where the body coil sees no signal — outside ``|b| > threshold · max|b|``
widened by ``margin`` pixels, since the low-resolution image fades at the object's edge before
the anatomy does — the maps are zero (no object: the reconstruction puts no image there, as
ESPIRiT's eigenvalue crop).

Unlike ESPIRiT's maps (``Σ_c |S_c|² = 1``), these keep the array's intensity profile relative
to the body coil, so a SENSE reconstruction with them is free of the array's receive
inhomogeneity. The maps are scaled to ``max_r Σ_c |S_c(r)|² = 1``, which keeps ``‖A‖ ≤ 1``.

Shapes: array k-space ``(coils, *grid)`` and body-coil k-space ``(body_coils, *grid)`` of the
same slice and grid; maps ``(coils, *grid)``.
"""

from __future__ import annotations

import dataclasses

import torch

from medrestore.core.fft import ifftc
from medrestore.physics.mri.espirit import calibration_region, principal_component


@dataclasses.dataclass(frozen=True)
class BodyCoilOptions:
    """Body-coil referenced sensitivities.

    Attributes:
        calibration_width: side of the central k-space block the low-resolution images come from
            (limited to the fully sampled centre of both scans).
        threshold: fraction of the body-coil image's maximum below which the maps are zero.
        regularisation: ``ε / max|b|`` of the regularised division.
        margin: pixels by which the thresholded support is widened (a square neighbourhood).
        smoothing: standard deviation in pixels of the normalised convolution's Gaussian (0: none).
    """

    calibration_width: int = 24
    threshold: float = 0.02
    regularisation: float = 0.05
    margin: int = 3
    smoothing: float = 2.0

    def __post_init__(self) -> None:
        if self.calibration_width < 2:
            raise ValueError(f"the calibration region needs at least 2 samples per axis, got {self.calibration_width}")
        if not 0 <= self.threshold < 1 or not self.regularisation >= 0 or self.margin < 0 or not self.smoothing >= 0:
            raise ValueError("the body-coil threshold must lie in [0, 1), the regularisation, margin and smoothing be non-negative")


def _common_region(
    grid: tuple[int, ...], mask: torch.Tensor | None, body_mask: torch.Tensor | None, width: int
) -> tuple[slice, ...]:
    """The central block fully sampled in both scans (the smaller of the two regions per axis, centred)."""
    regions = [calibration_region(m, grid, width) for m in (mask, body_mask)]
    common = []
    for size, (first, second) in zip(grid, zip(*regions)):
        side = min(first.stop - first.start, second.stop - second.start)
        common.append(slice(size // 2 - side // 2, size // 2 - side // 2 + side))
    if any(part.stop - part.start < 2 for part in common):
        raise ValueError("body-coil sensitivities need a fully sampled k-space centre in both scans")
    return tuple(common)


def low_resolution_images(kspace: torch.Tensor, region: tuple[slice, ...]) -> torch.Tensor:
    """``ifftc`` of the ``region`` block of ``kspace (coils, *grid)`` tapered by a separable Hann window, zero elsewhere."""
    window = torch.ones((), dtype=torch.float64)
    for part in region:
        taper = torch.hann_window(part.stop - part.start + 2, periodic=False, dtype=torch.float64)[1:-1]
        window = window.unsqueeze(-1) * taper
    block = torch.zeros_like(kspace, dtype=torch.complex128)
    block[(slice(None), *region)] = kspace[(slice(None), *region)].to(torch.complex128) * window
    return ifftc(block, kspace.ndim - 1)


def gaussian_smooth(image: torch.Tensor, sigma: float, n_grid: int) -> torch.Tensor:
    """Circular convolution of ``image (..., *grid)`` with a Gaussian of ``sigma`` pixels over the last ``n_grid`` axes (complex)."""
    axes = tuple(range(-n_grid, 0))
    response = torch.ones((), dtype=torch.float64)
    for size in image.shape[-n_grid:]:
        frequency = torch.fft.fftfreq(size, dtype=torch.float64)
        response = response.unsqueeze(-1) * torch.exp(-2 * (torch.pi * sigma * frequency) ** 2)
    return torch.fft.ifftn(torch.fft.fftn(image, dim=axes) * response, dim=axes)


def widen(support: torch.Tensor, margin: int) -> torch.Tensor:
    """``support (*grid)`` (2-D or 3-D, bool) dilated by ``margin`` pixels along every axis (square neighbourhood)."""
    if margin == 0:
        return support
    pool = (torch.nn.functional.max_pool2d, torch.nn.functional.max_pool3d)[support.ndim - 2]
    widened = pool(support[None, None].to(torch.float32), 2 * margin + 1, stride=1, padding=margin)
    return widened[0, 0] > 0


def body_coil_maps(
    kspace: torch.Tensor,
    body_kspace: torch.Tensor,
    mask: torch.Tensor | None = None,
    body_mask: torch.Tensor | None = None,
    options: BodyCoilOptions = BodyCoilOptions(),
) -> torch.Tensor:
    """Array-coil sensitivities ``(coils, *grid)`` complex64 relative to a body-coil scan of the same slice.

    Args:
        kspace: array-coil k-space ``(coils, *grid)`` (unsampled samples zero).
        body_kspace: body-coil k-space ``(body_coils, *grid)`` on the same grid.
        mask, body_mask: their sampling masks (``None``: fully sampled).
        options: :class:`BodyCoilOptions`.

    Raises:
        ValueError: grids differ, or a scan has no fully sampled centre.
    """
    grid = tuple(kspace.shape[1:])
    if tuple(body_kspace.shape[1:]) != grid:
        raise ValueError(f"the body-coil scan's grid {tuple(body_kspace.shape[1:])} differs from the array's {grid}")
    region = _common_region(grid, mask, body_mask, options.calibration_width)
    coil_images = low_resolution_images(kspace, region)
    reference = principal_component(body_kspace, region)
    body = torch.einsum("j,j...->...", reference.conj(), low_resolution_images(body_kspace, region))
    peak = float(body.abs().max())
    if peak == 0:
        raise ValueError("the body-coil scan holds no signal in its k-space centre")
    weighted, energy = coil_images * body.conj(), body.abs() ** 2
    if options.smoothing > 0:
        weighted = gaussian_smooth(weighted, options.smoothing, len(grid))
        energy = gaussian_smooth(energy, options.smoothing, len(grid)).real
    maps = weighted / (energy + (options.regularisation * peak) ** 2)
    maps = maps * widen(body.abs() > options.threshold * peak, options.margin)
    norm = float((maps.abs() ** 2).sum(0).max()) ** 0.5
    return (maps / max(norm, 1e-30)).to(torch.complex64)
