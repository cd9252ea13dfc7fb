"""Non-uniform FFT operator (FINUFFT) with a true adjoint and autograd support.

Forward model (the centred, orthonormal DFT of :func:`~medrestore.core.fft.fftc` evaluated off
the grid): for an image ``x`` on a grid ``N_1 × … × N_d`` and a sample at ``k`` (grid units),

    ``y(k) = (Π_d N_d)^{-1/2} Σ_r x(r) exp(−2πi Σ_d k_d (r_d − ⌊N_d/2⌋) / N_d)``,

so on-grid samples reproduce ``fftc`` exactly. The adjoint is
``x(r) = (Π N_d)^{-1/2} Σ_j y_j exp(+2πi Σ_d k_{j,d} (r_d − ⌊N_d/2⌋) / N_d)``.

Both are computed by FINUFFT (Barnett, Magland & af Klinteberg, SIAM J. Sci. Comput. 41(5),
2019; "exponential of semicircle" kernel): the forward is a type-2 transform (``isign = −1``),
the adjoint a type-1 transform (``isign = +1``) with the same kernel and tolerance, so
``<A x, y> = <x, Aᴴ y>`` holds to rounding, whatever the tolerance. Finufft's mode ordering
(``−N/2 … N/2 − 1``) is exactly the centred grid index ``r − ⌊N/2⌋``.

Tensors may live on any device: the transform runs on the CPU (FINUFFT) and the result returns
to the input's device. :class:`NUFFTOperator` applies through a :class:`torch.autograd.Function`
whose backward pass is the adjoint (and vice versa), so networks with a NUFFT data-consistency
step train end to end (PyTorch's convention for complex gradients: ``∂L/∂x* = Aᴴ ∂L/∂y*``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from medrestore.physics.mri.operators import LinearOperator

DEFAULT_TOLERANCE = 1e-5


def _finufft() -> Any:
    try:
        import finufft
    except ImportError as error:  # pragma: no cover - finufft is a dependency
        raise ImportError("the NUFFT needs the 'finufft' package (pip install finufft)") from error
    return finufft


def _points(trajectory: torch.Tensor, grid_shape: tuple[int, ...], dtype: type) -> list[np.ndarray]:
    """Finufft's coordinates ``2π k_d / N_d`` (one array per axis, first axis first)."""
    flat = trajectory.detach().to(torch.float64).reshape(-1, len(grid_shape)).cpu().numpy()
    return [np.ascontiguousarray(2.0 * math.pi * flat[:, axis] / size, dtype=dtype) for axis, size in enumerate(grid_shape)]


class _Plan:
    """Immutable finufft call parameters for one trajectory.

    Single precision (complex64 values, float32 points) for tolerances ≥ 1e-4, double precision
    below: near its single-precision limit FINUFFT widens its kernel, and at ``1e-5`` the
    double-precision transform was the faster one (timings: ``benchmarks/history.md``, radial MRI).
    """

    def __init__(self, trajectory: torch.Tensor, grid_shape: tuple[int, ...], tolerance: float) -> None:
        self.grid_shape = grid_shape
        self.samples_shape = tuple(trajectory.shape[:-1])
        single = tolerance >= 1e-4
        self.complex_dtype = np.complex64 if single else np.complex128
        self.points = _points(trajectory, grid_shape, np.float32 if single else np.float64)
        self.scale = 1.0 / math.sqrt(float(np.prod(grid_shape)))
        self.tolerance = tolerance

    def _threads(self) -> int:
        return max(1, torch.get_num_threads())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Type 2: ``(*batch, *grid)`` → ``(*batch, *samples)``."""
        finufft = _finufft()
        ndim = len(self.grid_shape)
        batch = tuple(image.shape[:-ndim])
        values = np.ascontiguousarray(image.detach().reshape(-1, *self.grid_shape).cpu().numpy(), dtype=self.complex_dtype)
        function = (finufft.nufft1d2, finufft.nufft2d2, finufft.nufft3d2)[ndim - 1]
        samples = function(*self.points, values, isign=-1, eps=self.tolerance, nthreads=self._threads())
        samples = samples.reshape(*batch, *self.samples_shape) * np.float32(self.scale)
        return torch.from_numpy(samples.astype(np.complex64, copy=False)).to(image.device)

    def adjoint(self, samples: torch.Tensor) -> torch.Tensor:
        """Type 1: ``(*batch, *samples)`` → ``(*batch, *grid)``."""
        finufft = _finufft()
        ndim = len(self.grid_shape)
        batch = tuple(samples.shape[: samples.ndim - len(self.samples_shape)])
        flat = samples.detach().reshape(-1, int(np.prod(self.samples_shape))).cpu().numpy()
        values = np.ascontiguousarray(flat, dtype=self.complex_dtype)
        function = (finufft.nufft1d1, finufft.nufft2d1, finufft.nufft3d1)[ndim - 1]
        image = function(*self.points, values, self.grid_shape, isign=1, eps=self.tolerance, nthreads=self._threads())
        image = image.reshape(*batch, *self.grid_shape) * np.float32(self.scale)
        return torch.from_numpy(image.astype(np.complex64, copy=False)).to(samples.device)


class _NufftForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, image: torch.Tensor, plan: _Plan) -> torch.Tensor:  # type: ignore[override]
        ctx.plan = plan
        return plan.forward(image)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.plan.adjoint(grad), None


class _NufftAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, samples: torch.Tensor, plan: _Plan) -> torch.Tensor:  # type: ignore[override]
        ctx.plan = plan
        return plan.adjoint(samples)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.plan.forward(grad), None


class NUFFTOperator(LinearOperator):
    """``A``: image ``(*batch, *grid)`` → samples ``(*batch, *samples)`` on a non-Cartesian trajectory.

    Args:
        trajectory: ``(*samples, ndim)`` in grid units (as in :class:`~medrestore.core.kspace.KSpace`).
        grid_shape: the image matrix ``(ny, nx)`` or ``(nz, ny, nx)``; ``ndim == len(grid_shape)``.
        tolerance: FINUFFT's requested relative accuracy (``1e-5`` default; ``1e-4`` is enough for
            gridding, smaller is slower).

    Plugs into :class:`~medrestore.physics.mri.sense.SenseOperator` in place of Cartesian sampling
    (coils are a leading batch axis). Differentiable with respect to its input.
    """

    def __init__(self, trajectory: torch.Tensor, grid_shape: tuple[int, ...], tolerance: float = DEFAULT_TOLERANCE) -> None:
        grid_shape = tuple(int(n) for n in grid_shape)
        if trajectory.shape[-1] != len(grid_shape) or not 1 <= len(grid_shape) <= 3:
            raise ValueError(f"a trajectory of shape {tuple(trajectory.shape)} does not fit a {len(grid_shape)}-D grid")
        if not torch.isfinite(trajectory).all():
            raise ValueError("the trajectory has NaN or infinite coordinates")
        super().__init__(grid_shape, tuple(trajectory.shape[:-1]))
        self.trajectory = trajectory.detach().to(torch.float32).clone()
        self.tolerance = float(tolerance)
        self._plan = _Plan(self.trajectory, grid_shape, self.tolerance)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _NufftForward.apply(x, self._plan)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _NufftAdjoint.apply(y, self._plan)


def nonuniform_dft(image: torch.Tensor, trajectory: torch.Tensor) -> torch.Tensor:
    """Exact non-uniform DFT (the reference :class:`NUFFTOperator` approximates), complex128.

    ``image`` ``(*grid)``, ``trajectory`` ``(*samples, ndim)``; cost ``O(samples · pixels)``, so
    for small problems only (tests, benchmarks).
    """
    grid = tuple(image.shape)
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) - n // 2 for n in grid], indexing="ij")
    positions = torch.stack([axis.reshape(-1) / n for axis, n in zip(axes, grid)], dim=-1)  # (pixels, d)
    points = trajectory.to(torch.float64).reshape(-1, len(grid))
    phase = torch.exp(-2j * math.pi * (points @ positions.T))
    values = phase @ image.to(torch.complex128).reshape(-1) / math.sqrt(float(np.prod(grid)))
    return values.reshape(trajectory.shape[:-1])
