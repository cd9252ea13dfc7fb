"""Centred orthonormal Fourier transforms as operators, and Cartesian sampling.

``F = fftc`` over the last ``ndim`` axes (fastMRI's convention: DC at index ``N // 2``,
``norm="ortho"`` so ``Fᴴ = F⁻¹ = ifftc``). Cartesian sampling is ``P F`` with ``P`` the
diagonal 0/1 mask: unsampled locations are returned as zeros on the full grid, the layout of
:class:`~medrestore.core.kspace.KSpace`.
"""

from __future__ import annotations

import torch

from medrestore.core.fft import fftc, ifftc
from medrestore.physics.mri.operators import LinearOperator


class FFTOperator(LinearOperator):
    """Centred orthonormal FFT over the trailing ``len(grid_shape)`` axes (unitary).

    Args:
        grid_shape: ``(ny, nx)`` or ``(nz, ny, nx)``; any leading axes (coils, batch) pass through.
    """

    def __init__(self, grid_shape: tuple[int, ...]) -> None:
        super().__init__(grid_shape, grid_shape)
        self.ndim = len(grid_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fftc(x, self.ndim)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return ifftc(y, self.ndim)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def squared_norm_bound(self) -> float:
        return 1.0


def _checkerboard(grid_shape: tuple[int, ...], device: torch.device | None = None) -> tuple[torch.Tensor, float] | None:
    """``(C, s)`` with ``fftc(x) = s · C ⊙ fft(C ⊙ x)`` for even sizes (``C = (−1)^{Σ n_d}``, ``s = (−1)^{Σ N_d/2}``).

    Shifting by ``N/2`` is a modulation by ``(−1)^n`` in the other domain, so the two
    ``fftshift`` copies of ``fftc`` become sign flips that fold into masks and coil maps.
    ``None`` when an axis has odd length. ``C`` is made on ``device`` (that of the mask it is folded into).
    """
    if any(n % 2 for n in grid_shape):
        return None
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in grid_shape], indexing="ij")
    board = (1 - 2 * (sum(grids) % 2)).to(torch.float32)
    sign = -1.0 if sum(n // 2 for n in grid_shape) % 2 else 1.0
    return board, sign


class CartesianSampling(LinearOperator):
    """``y = M ⊙ fftc(x)``: the Cartesian acquisition of one image per leading index.

    Args:
        mask: 0/1 (bool or real) tensor broadcastable to ``grid_shape`` (e.g. ``(1, nx)``
            for phase-encode lines along the last axis, ``(ny, 1)`` along ``ky``, or a full 2-D
            Poisson-disc pattern).
        grid_shape: the image matrix ``(ny, nx)`` (or 3-D).

    Adjoint: ``x = ifftc(M ⊙ y)``; normal: ``ifftc(M ⊙ fftc(x))`` (``M² = M``).
    """

    def __init__(self, mask: torch.Tensor, grid_shape: tuple[int, ...]) -> None:
        super().__init__(grid_shape, grid_shape)
        mask = torch.as_tensor(mask)
        if torch.broadcast_shapes(tuple(mask.shape), tuple(grid_shape)) != tuple(grid_shape):
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the grid {tuple(grid_shape)}")
        self.mask = mask.detach().to(torch.float32).clone()
        self.ndim = len(grid_shape)
        self.axes = tuple(range(-self.ndim, 0))
        # Axes along which the mask is constant: in AᴴA their FFT pair cancels (Fᴴ F = I commutes
        # with the mask), so the normal operator transforms only the phase-encode axes.
        self.normal_axes = tuple(axis for axis in self.axes if self.mask.shape[axis] != 1) if self.mask.ndim == self.ndim else self.axes
        modulation = _checkerboard(tuple(grid_shape), self.mask.device)
        # Even grids: fftc(x) = s·C ⊙ fft(C ⊙ x); the output weights s·C·M fold sign, board and mask.
        self.input_modulation = None if modulation is None else modulation[0]
        self.output_weights = None if modulation is None else modulation[1] * modulation[0] * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_modulation is None:
            return fftc(x, self.ndim) * self.mask.to(x.device)
        spectrum = torch.fft.fftn(x * self.input_modulation.to(x.device), dim=self.axes, norm="ortho")
        return spectrum * self.output_weights.to(x.device)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.input_modulation is None:
            return ifftc(y * self.mask.to(y.device), self.ndim)
        image = torch.fft.ifftn(y * self.output_weights.to(y.device), dim=self.axes, norm="ortho")
        return image * self.input_modulation.to(y.device)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_modulation is None:
            return ifftc(fftc(x, self.ndim) * self.mask.to(x.device), self.ndim)
        board = self.input_modulation.to(x.device)
        spectrum = torch.fft.fftn(x * board, dim=self.normal_axes, norm="ortho") * self.mask.to(x.device)
        return torch.fft.ifftn(spectrum, dim=self.normal_axes, norm="ortho").contiguous() * board

    def squared_norm_bound(self) -> float:
        return float(self.mask.abs().max()) ** 2
