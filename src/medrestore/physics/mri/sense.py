"""Multi-coil SENSE forward model and coil combination.

``A x = P F (S ⊙ x)`` (Pruessmann et al., MRM 42(5), 1999): the image ``x`` (shape
``(*grid)``) is weighted by each coil's sensitivity ``S_c`` (``coil_maps``, shape
``(coils, *grid)``), transformed and sampled by a per-coil operator ``P F`` — Cartesian
sampling (:class:`~medrestore.physics.mri.fourier.CartesianSampling`) or, for non-Cartesian
data, a NUFFT with the same interface (input ``(*grid)``, coils as a leading axis). The
adjoint is ``Aᴴ y = Σ_c conj(S_c) ⊙ (P F)ᴴ y_c``.

ESPIRiT maps are normalised so that ``Σ_c |S_c|² = 1`` inside the object, which makes
``‖A‖ ≤ 1`` for Cartesian sampling and keeps step sizes and regularisation weights
independent of the coil array.

Several map sets (ESPIRiT's soft-SENSE, Uecker et al., MRM 71(3), 2014, §"Relation to
SENSE"): the unknown is one image per set, ``x`` of shape ``(sets, *grid)``, and
``A x = P F (Σ_m S_m ⊙ x_m)`` with ``coil_maps`` of shape ``(sets, coils, *grid)``
(:class:`MapSetExpansion`); the displayed image is ``sqrt(Σ_m |x_m|²)`` (BART's ``pics`` with
``ecalib -m 2`` maps, followed by ``rss`` over the maps dimension).
"""

from __future__ import annotations

import torch

from medrestore.core.fft import ifftc, rss
from medrestore.physics.mri.fourier import CartesianSampling
from medrestore.physics.mri.operators import LinearOperator


class CoilExpansion(LinearOperator):
    """``x ↦ S ⊙ x``: one image to ``coils`` coil images; adjoint ``Σ_c conj(S_c) y_c``.

    Args:
        coil_maps: complex64 ``(coils, *grid)`` (or with leading batch axes matching the input's).
    """

    def __init__(self, coil_maps: torch.Tensor) -> None:
        grid = tuple(coil_maps.shape[1:])
        super().__init__(grid, tuple(coil_maps.shape))
        self.coil_maps = coil_maps.detach().to(torch.complex64).clone()
        # Multiplying by a lazily conjugated tensor materialises it on every call: keep one copy.
        self.conjugate_maps = self.coil_maps.conj().resolve_conj()
        self.grid_ndim = len(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-self.grid_ndim - 1) * self.coil_maps.to(x.device)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sum(y * self.conjugate_maps.to(y.device), dim=-self.grid_ndim - 1)

    def squared_norm_bound(self) -> float:
        """``max_r Σ_c |S_c(r)|²`` (exact)."""
        return float((self.coil_maps.abs() ** 2).sum(dim=-self.grid_ndim - 1).max())


class MapSetExpansion(LinearOperator):
    """``x ↦ Σ_m S_m ⊙ x_m``: one image per map set to ``coils`` coil images; adjoint ``(Σ_c conj(S_mc) y_c)_m``.

    Args:
        coil_maps: complex64 ``(sets, coils, *grid)``.
    """

    def __init__(self, coil_maps: torch.Tensor) -> None:
        grid = tuple(coil_maps.shape[2:])
        super().__init__((int(coil_maps.shape[0]), *grid), tuple(coil_maps.shape[1:]))
        self.coil_maps = coil_maps.detach().to(torch.complex64).clone()
        self.conjugate_maps = self.coil_maps.conj().resolve_conj()
        self.grid_ndim = len(grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x.unsqueeze(-self.grid_ndim - 1) * self.coil_maps.to(x.device), dim=-self.grid_ndim - 2)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sum(y.unsqueeze(-self.grid_ndim - 2) * self.conjugate_maps.to(y.device), dim=-self.grid_ndim - 1)

    def squared_norm_bound(self) -> float:
        """``max_r λ_max(S(r)ᴴ S(r))`` with ``S(r)`` the ``coils × sets`` matrix of a pixel (exact)."""
        per_pixel = self.coil_maps.movedim(0, -1).movedim(0, -2).to(torch.complex128)  # (*grid, coils, sets)
        gram = per_pixel.conj().transpose(-1, -2) @ per_pixel
        return float(torch.linalg.eigvalsh(gram)[..., -1].max())


def _expansion(coil_maps: torch.Tensor, grid: tuple[int, ...]) -> CoilExpansion | MapSetExpansion:
    """:class:`CoilExpansion` for ``(coils, *grid)`` maps, :class:`MapSetExpansion` for ``(sets, coils, *grid)``."""
    return MapSetExpansion(coil_maps) if coil_maps.ndim == len(grid) + 2 else CoilExpansion(coil_maps)


class SenseOperator(LinearOperator):
    """``A = (P F) ∘ S``: image ``(*grid)`` → multi-coil samples ``(coils, *samples)``.

    Args:
        coil_maps: complex ``(coils, *grid)``, or ``(sets, coils, *grid)`` for several map sets
            (the image is then ``(sets, *grid)``: :class:`MapSetExpansion`).
        sampling: per-coil acquisition operator with ``input_shape == grid`` (Cartesian
            sampling, or a NUFFT for non-Cartesian trajectories).
    """

    def __init__(self, coil_maps: torch.Tensor, sampling: LinearOperator) -> None:
        grid = tuple(sampling.input_shape)
        if tuple(coil_maps.shape[-len(grid):]) != grid or coil_maps.ndim not in (len(grid) + 1, len(grid) + 2):
            raise ValueError(f"sampling operator expects images of shape {grid}, coil maps are {tuple(coil_maps.shape)}")
        self.coils = _expansion(coil_maps, grid)
        super().__init__(self.coils.input_shape, (int(coil_maps.shape[-len(grid) - 1]), *sampling.output_shape))
        self.sampling = sampling
        # Cartesian fast path on even grids: fold fftc's sign modulation into the maps, so that
        # A x = w ⊙ fft(S̃ ⊙ x) with S̃ = C ⊙ S and w = s·C·M (see CartesianSampling).
        self._modulated = None
        if isinstance(sampling, CartesianSampling) and sampling.input_modulation is not None:
            modulated_maps = self.coils.coil_maps * sampling.input_modulation
            self._modulated = _expansion(modulated_maps, grid)
            # AᴴA only transforms the axes along which the mask varies. A line mask varying along
            # one axis other than the last (ky lines of a (ny, nx) grid) would make a strided FFT
            # plus a copy, about twice an FFT over contiguous memory: AᴴA then keeps the maps and
            # the mask with that axis swapped to the last place and swaps the image in and out
            # (an image-sized copy each way instead of a coil-sized one). 0: no swap.
            axes = sampling.normal_axes
            self._normal_axis = axes[0] if len(axes) == 1 and axes[0] != -1 else 0
            swap = self._normal_axis
            self._normal_maps = _expansion(modulated_maps.transpose(swap, -1).contiguous(), grid) if swap else self._modulated
            self._normal_mask = sampling.mask.transpose(swap, -1).contiguous() if swap else sampling.mask

    @property
    def coil_maps(self) -> torch.Tensor:
        return self.coils.coil_maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._modulated is not None:
            axes = self.sampling.axes  # type: ignore[attr-defined]
            spectrum = torch.fft.fftn(self._modulated.forward(x), dim=axes, norm="ortho")
            return spectrum * self.sampling.output_weights.to(x.device)  # type: ignore[attr-defined]
        return self.sampling.forward(self.coils.forward(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self._modulated is not None:
            axes = self.sampling.axes  # type: ignore[attr-defined]
            weighted = y * self.sampling.output_weights.to(y.device)  # type: ignore[attr-defined]
            return self._modulated.adjoint(torch.fft.ifftn(weighted, dim=axes, norm="ortho"))
        return self.coils.adjoint(self.sampling.adjoint(y))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        if self._modulated is not None:
            swap = self._normal_axis
            axes = (-1,) if swap else self.sampling.normal_axes  # type: ignore[attr-defined]
            image = x.transpose(swap, -1).contiguous() if swap else x
            spectrum = torch.fft.fftn(self._normal_maps.forward(image), dim=axes, norm="ortho")
            spectrum.mul_(self._normal_mask.to(x.device))
            # A transform along a leading axis returns transposed strides; the coil sum is far
            # faster on a contiguous tensor.
            combined = self._normal_maps.adjoint(torch.fft.ifftn(spectrum, dim=axes, norm="ortho").contiguous())
            return combined.transpose(swap, -1).contiguous() if swap else combined
        return self.coils.adjoint(self.sampling.normal(self.coils.forward(x)))

    def squared_norm_bound(self) -> float | None:
        """``‖P F‖² · max_r Σ_c |S_c(r)|²`` when the sampling operator has a bound."""
        sampling = self.sampling.squared_norm_bound()
        return None if sampling is None else sampling * self.coils.squared_norm_bound()


def cartesian_sense(coil_maps: torch.Tensor, mask: torch.Tensor, map_sets: bool = False) -> SenseOperator:
    """SENSE operator for Cartesian data: ``mask`` broadcastable to the grid of ``coil_maps``.

    ``map_sets``: ``coil_maps`` is ``(sets, coils, *grid)`` (images ``(sets, *grid)``), else ``(coils, *grid)``.
    """
    grid = tuple(coil_maps.shape[2:] if map_sets else coil_maps.shape[1:])
    return SenseOperator(coil_maps, CartesianSampling(mask, grid))


def coil_combine(coil_images: torch.Tensor, coil_maps: torch.Tensor) -> torch.Tensor:
    """Sensitivity-weighted combination ``Σ_c conj(S_c) x_c`` (the adjoint of :class:`CoilExpansion`).

    Args:
        coil_images: complex ``(*batch, coils, *grid)``.
        coil_maps: complex ``(coils, *grid)``.
    """
    grid_ndim = coil_maps.ndim - 1
    return torch.sum(coil_images * coil_maps.to(coil_images.device).conj(), dim=-grid_ndim - 1)


def split_intensity(coil_maps: torch.Tensor, tolerance: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``S = w · Ŝ`` with ``Σ_c |Ŝ_c|² = 1``: unit-norm maps ``(coils, *grid)`` and ``w = sqrt(Σ_c |S_c|²)`` ``(*grid)``.

    Maps that keep an intensity profile (body-coil referenced ones) make ``AᴴA`` far from the
    identity, so CG and FISTA converge slowly where ``w`` is small; with ``Ŝ`` the unknown is
    ``u = w ρ`` (the image in ESPIRiT's and the root-sum-of-squares' intensity convention) and
    ``AᴴA`` is the identity on the support for full sampling. ``w`` is ``None`` when the maps
    are unit-norm already (within ``tolerance`` wherever they are non-zero).
    """
    weight = (coil_maps.abs() ** 2).sum(0).sqrt()
    support = weight > 0
    if not bool(support.any()) or float((weight[support] - 1).abs().max()) <= tolerance:
        return coil_maps, None
    return coil_maps / torch.where(support, weight, torch.ones_like(weight)), weight


def zero_filled_rss(kspace: torch.Tensor, grid_ndim: int = 2) -> torch.Tensor:
    """Root-sum-of-squares of the inverse FFT of zero-filled k-space ``(*batch, coils, *grid)``.

    The fastMRI baseline image: ``sqrt(Σ_c |ifftc(y_c)|²)``, real ``(*batch, *grid)``.
    """
    return rss(ifftc(kspace, grid_ndim), coil_axis=-grid_ndim - 1)
