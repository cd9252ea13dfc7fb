"""Forward finite differences with circular boundaries: the operator inside total variation.

``(G x)_d = x − roll(x, 1, axis_d)`` for each of the last ``ndim`` axes (sigpy's
``FiniteDifference``), stacked on a new leading axis: ``(*batch, *grid)`` → ``(*batch, ndim, *grid)``.
Circular boundaries make ``G`` diagonal in Fourier space with ``‖G‖² = Σ_d max(2 − 2cos(2πk/N_d)) ≤ 4·ndim``.
"""

from __future__ import annotations

import torch

from medrestore.physics.mri.operators import LinearOperator


class FiniteDifference(LinearOperator):
    """``G``: ``(*batch, *grid)`` → ``(*batch, ndim, *grid)``; adjoint ``Σ_d (y_d − roll(y_d, −1, axis_d))``."""

    def __init__(self, grid_shape: tuple[int, ...]) -> None:
        ndim = len(grid_shape)
        super().__init__(tuple(grid_shape), (ndim, *grid_shape))
        self.ndim = ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x - torch.roll(x, 1, dims=axis) for axis in range(-self.ndim, 0)], dim=-self.ndim - 1)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(y.select(-self.ndim - 1, 0))
        for index, axis in enumerate(range(-self.ndim, 0)):
            component = y.select(-self.ndim - 1, index)
            total = total + component - torch.roll(component, -1, dims=axis)
        return total

    def squared_norm_bound(self) -> float:
        """``‖G‖² ≤ 4·ndim`` (equality when every axis has even length)."""
        return 4.0 * self.ndim
