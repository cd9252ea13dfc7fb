"""Multi-level orthogonal (Daubechies) wavelet transform in torch, with its exact adjoint.

Filters come from PyWavelets; the transform runs as strided ``conv1d`` along each image axis,
so it works on CPU and GPU and on complex data (real and imaginary parts filtered alike).
Coefficients match ``pywt.wavedecn(x, wavelet, mode, level)`` exactly.

Modes:

* ``"zero"`` — zero extension (sigpy's ``Wavelet`` and PyWavelets' ``mode="zero"``): any
  image size; one level maps ``N`` samples to ``⌊(N + L − 1)/2⌋`` low-pass and as many high-pass
  coefficients (``L`` = filter length), so ``W`` is an isometry (``WᴴW = I``) but not square.
  Coefficient ``i`` is sample ``2i + 1`` of the full convolution ``h * x``.
* ``"periodization"`` — circular extension: ``N`` (even at every level) maps to ``N/2 + N/2``,
  ``W`` is square and unitary (``WᴴW = WWᴴ = I``), so ``Wᴴ soft(W x)`` is the exact proximal
  operator of ``‖W x‖₁``. Coefficient ``i`` is sample ``2i + L/2`` of the circular convolution.

Images whose axes are all at most :data:`MATRIX_MAX_SIZE` samples long run as dense matrix
products instead of convolutions: one level along an axis of length ``n`` is the ``(2h × n)``
analysis matrix ``[H; G]`` (low-pass rows over high-pass rows, built by PyWavelets from the
identity), applied axis by axis; its adjoint is the transpose. Up to about 128 samples the
per-call cost of convolutions outweighs the matrix product's ``O(n²)`` work (same coefficients
either way, to float rounding).

The output is one flat coefficient vector per image: the coarsest approximation first, then
the detail sub-bands from the coarsest level to the finest (PyWavelets' ``coeffs_to_array``
order is not needed by any solver: ℓ1 norms and soft thresholding are order-free).
Levels default to ``pywt.dwt_max_level(min(shape), L)`` (PyWavelets' and sigpy's default).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pywt
import torch
import torch.nn.functional as functional

from medrestore.physics.mri.operators import LinearOperator

WaveletMode = Literal["zero", "periodization"]

MATRIX_MAX_SIZE = 128
"""Images whose every axis is at most this long use matrix products (see the module notes)."""


def _analysis_length(size: int, filter_length: int, mode: WaveletMode) -> int:
    return (size + filter_length - 1) // 2 if mode == "zero" else size // 2


class WaveletTransform(LinearOperator):
    """``W``: images ``(*batch, *grid)`` (complex or real) → coefficients ``(*batch, n_coefficients)``.

    Args:
        grid_shape: ``(ny, nx)`` or ``(nz, ny, nx)``.
        wavelet: PyWavelets name of an orthogonal wavelet (``"db4"``, ``"db2"``, ``"haar"``, ``"sym4"``...).
        levels: decomposition levels (``None``: ``pywt.dwt_max_level(min(grid_shape), L)``).
        mode: ``"zero"`` or ``"periodization"`` (see the module notes).
    """

    def __init__(
        self, grid_shape: tuple[int, ...], wavelet: str = "db4", levels: int | None = None, mode: WaveletMode = "zero"
    ) -> None:
        family = pywt.Wavelet(wavelet)
        if not family.orthogonal:
            raise ValueError(f"wavelet {wavelet!r} is not orthogonal")
        if mode not in ("zero", "periodization"):
            raise ValueError(f"unknown wavelet mode {mode!r}")
        length = family.dec_len
        self.levels = pywt.dwt_max_level(min(grid_shape), length) if levels is None else int(levels)
        self.shapes = self._level_shapes(tuple(grid_shape), length, mode)
        n_coefficients = math.prod(self.shapes[-1]) + sum(
            (2 ** len(grid_shape) - 1) * math.prod(shape) for shape in self.shapes[1:]
        )
        super().__init__(tuple(grid_shape), (n_coefficients,))
        self.wavelet, self.mode, self.filter_length = wavelet, mode, length
        # Convolutions cross-correlate, so the decomposition filters are stored reversed; the
        # N-D filter bank holds the 2^ndim outer products (band index = Σ_d bit_d · 2^(ndim−1−d)).
        filters = torch.tensor([family.dec_lo[::-1], family.dec_hi[::-1]], dtype=torch.float64)
        bank = filters
        for _ in range(len(grid_shape) - 1):
            bank = (bank[:, None, ..., None] * filters[None, :, *([None] * (bank.ndim - 1)), :]).reshape(-1, *bank.shape[1:], length)
        self.filter_bank = bank.unsqueeze(1)  # float64 (2^ndim, 1, L, ..., L)
        self._convolve = (functional.conv1d, functional.conv2d, functional.conv3d)[len(grid_shape) - 1]
        self.polyphase_bank = self._polyphase(self.filter_bank, len(grid_shape), length)
        # Both filter banks in both real precisions, made once (casting per call costs copies).
        self._banks = {
            dtype: (self.filter_bank.to(dtype), self.polyphase_bank.to(dtype)) for dtype in (torch.float32, torch.float64)
        }
        # Images whose every axis is short run all levels as matrix products (module notes).
        self.uses_matrices = max(grid_shape) <= MATRIX_MAX_SIZE
        self._analysis_matrices = {
            size: self._analysis_matrix(family, size, mode) for shape in self.shapes[:-1] for size in shape
        } if self.uses_matrices else {}
        # (size, dtype, transposed, device) → the matrix as the products use it, made on first use.
        self._matrices: dict[tuple[int, torch.dtype, bool, torch.device], torch.Tensor] = {}

    @staticmethod
    def _analysis_matrix(family: pywt.Wavelet, size: int, mode: WaveletMode) -> torch.Tensor:
        """``[H; G]``, ``(2h × size)``: one level's low-pass then high-pass coefficients of each unit vector."""
        low, high = pywt.dwt(np.eye(size), family, mode=mode, axis=0)
        return torch.from_numpy(np.concatenate([low, high]))

    def _multiply_axes(self, data: torch.Tensor, sizes: tuple[int, ...], transpose: bool) -> torch.Tensor:
        """Apply the matrices of the level with input ``sizes`` (or their transposes) along every grid axis of ``(*grid, *tail)``.

        Each step multiplies along the leading axis — one matrix product of ``(n × rest)`` data,
        with any batch and real/imaginary parts riding along in ``rest`` — and then rotates that
        axis to the last grid position, so after ``ndim`` steps the axes are back in order.
        """
        ndim = len(self.input_shape)
        for axis in range(ndim):
            matrix = self._matrix(sizes[axis], data.dtype, transpose, data.device)
            data = (matrix @ data.reshape(data.shape[0], -1)).reshape(matrix.shape[0], *data.shape[1:])
            data = data.movedim(0, ndim - 1).contiguous()
        return data

    def _matrix(self, size: int, dtype: torch.dtype, transpose: bool, device: torch.device) -> torch.Tensor:
        """The analysis matrix for axis length ``size`` (or its transpose) in ``dtype`` on ``device``, made once."""
        key = (size, dtype, transpose, device)
        if key not in self._matrices:
            matrix = self._analysis_matrices[size]
            self._matrices[key] = (matrix.T if transpose else matrix).to(dtype=dtype, device=device).contiguous()
        return self._matrices[key]

    def _band_slices(self, half: tuple[int, ...]) -> list[tuple[slice, ...]]:
        """Grid index of each sub-band in a level's block array (bit ``d`` of band ``b``: high-pass along axis ``d``)."""
        ndim = len(half)
        return [
            tuple(slice(h, 2 * h) if (band >> (ndim - 1 - axis)) & 1 else slice(0, h) for axis, h in enumerate(half))
            for band in range(2**ndim)
        ]

    @staticmethod
    def _to_leading_first(x: torch.Tensor, leading: int) -> torch.Tensor:
        """``(*batch, *L)`` (complex or real) → real ``(*L, *batch[, 2])``, contiguous, ``leading = len(L)``."""
        data = torch.view_as_real(x) if x.is_complex() else x
        batch_ndim = x.ndim - leading
        return data.movedim(tuple(range(batch_ndim)), tuple(range(leading, leading + batch_ndim))).contiguous()

    @staticmethod
    def _from_leading_first(data: torch.Tensor, leading: int, batch_ndim: int, complex_output: bool) -> torch.Tensor:
        """Inverse of :meth:`_to_leading_first`."""
        if batch_ndim:
            data = data.movedim(tuple(range(leading, leading + batch_ndim)), tuple(range(batch_ndim)))
        data = data.contiguous()
        return torch.view_as_complex(data) if complex_output else data

    def _forward_matrices(self, x: torch.Tensor) -> torch.Tensor:
        ndim = len(self.input_shape)
        batch_ndim = x.ndim - ndim
        data = self._to_leading_first(x, ndim)
        tail = tuple(data.shape[ndim:])
        details: list[torch.Tensor] = []
        for level in range(1, self.levels + 1):
            blocks = self._multiply_axes(data, self.shapes[level - 1], transpose=False)
            slices = self._band_slices(self.shapes[level])
            details.insert(0, torch.cat([blocks[index].reshape(-1, *tail) for index in slices[1:]]))
            data = blocks[slices[0]]
        flat = torch.cat([data.reshape(-1, *tail), *details])
        return self._from_leading_first(flat, 1, batch_ndim, x.is_complex())

    def _adjoint_matrices(self, y: torch.Tensor) -> torch.Tensor:
        ndim = len(self.input_shape)
        batch_ndim = y.ndim - 1
        flat = self._to_leading_first(y, 1)
        tail = tuple(flat.shape[1:])
        start = math.prod(self.shapes[-1])
        data = flat[:start].reshape(*self.shapes[-1], *tail)
        for level in range(self.levels, 0, -1):
            half = self.shapes[level]
            blocks = flat.new_empty(*[2 * h for h in half], *tail)
            slices = self._band_slices(half)
            blocks[slices[0]] = data
            for index in slices[1:]:
                count = math.prod(half)
                blocks[index] = flat[start : start + count].reshape(*half, *tail)
                start += count
            data = self._multiply_axes(blocks, self.shapes[level - 1], transpose=True)
        return self._from_leading_first(data, ndim, batch_ndim, y.is_complex())

    def _level_shapes(self, grid: tuple[int, ...], length: int, mode: WaveletMode) -> list[tuple[int, ...]]:
        """``[grid, shape after level 1, ..., shape after the last level]``."""
        shapes = [grid]
        for _ in range(self.levels):
            if mode == "periodization" and any(n % 2 for n in shapes[-1]):
                raise ValueError(f"periodization needs even sizes at every level; got {shapes[-1]} for {grid}")
            shapes.append(tuple(_analysis_length(n, length, mode) for n in shapes[-1]))
        return shapes

    def squared_norm_bound(self) -> float:
        """``WᴴW = I`` in both modes, so ``‖W‖² = 1``."""
        return 1.0

    @staticmethod
    def _polyphase(bank: torch.Tensor, ndim: int, length: int) -> torch.Tensor:
        """Weights for the adjoint as stride-1 convolutions, one output channel per phase.

        ``conv_transpose(c, w, stride=2)[2i + p] = Σ_m c[i − m] w[p + 2m]``: for each phase
        ``p ∈ {0, 1}^ndim`` this is a full convolution with ``w_p[m] = w[p + 2m]``, computed as a
        correlation with the flipped ``w_p`` — far faster on CPU than a strided transposed convolution.
        Shape ``(2^ndim phases, 2^ndim bands, L/2, ..., L/2)``.
        """
        phases = []
        for phase in range(2**ndim):
            bits = [(phase >> (ndim - 1 - axis)) & 1 for axis in range(ndim)]
            selection = (slice(None), 0, *[slice(bit, None, 2) for bit in bits])
            phases.append(bank[selection].flip(dims=tuple(range(1, ndim + 1))))
        return torch.stack(phases)[..., *([slice(0, length // 2)] * ndim)].contiguous()

    def _transposed_convolution(self, bands: torch.Tensor) -> torch.Tensor:
        """``conv_transpose(bands, filter_bank, stride=2)`` by polyphase convolutions: ``(P, 2^ndim, *M)`` → ``(P, 1, *(2M + L − 2))``."""
        ndim, half = len(self.input_shape), self.filter_length // 2
        weights = self._banks[bands.dtype][1].to(bands.device)
        phased = self._convolve(bands, weights, padding=half - 1)  # (P, 2^ndim, *(M + L/2 − 1))
        sizes = phased.shape[2:]
        phased = phased.reshape(phased.shape[0], *([2] * ndim), *sizes)
        order = [0] + [item for axis in range(ndim) for item in (1 + ndim + axis, 1 + axis)]
        return phased.permute(order).reshape(phased.shape[0], 1, *[2 * size for size in sizes])

    # -- one level ------------------------------------------------------------------------
    def _pad_indices(self, size: int, device: torch.device) -> torch.Tensor:
        """Circular extension, already offset by ``L/2``: entry ``j`` reads ``(j + L/2 − (L − 1)) mod size``."""
        length = self.filter_length
        return torch.remainder(torch.arange(length // 2 - (length - 1), size + length, device=device), size)

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Real ``(P, *grid)`` → ``(P, 2^ndim, *half)``: all sub-bands of one level."""
        ndim, length = len(self.input_shape), self.filter_length
        sizes = tuple(x.shape[1:])
        padded = x.unsqueeze(1)
        if self.mode == "zero":
            padded = functional.pad(padded, (length - 1, length - 1) * ndim)[(..., *([slice(1, None)] * ndim))]
        else:
            for axis, size in zip(range(-ndim, 0), sizes):
                padded = padded.index_select(axis, self._pad_indices(size, x.device))
        output = self._convolve(padded, self._banks[x.dtype][0].to(x.device), stride=2)
        counts = [_analysis_length(size, length, self.mode) for size in sizes]
        return output[(..., *[slice(0, count) for count in counts])]

    def _synthesis(self, bands: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
        """Adjoint of :meth:`_analysis`: ``(P, 2^ndim, *half)`` → ``(P, *sizes)``."""
        ndim, length = len(self.input_shape), self.filter_length
        spread = self._transposed_convolution(bands)
        if self.mode == "zero":
            padding: list[int] = []
            for axis, size in zip(range(-1, -ndim - 1, -1), reversed(sizes)):
                padding += [1, max(0, size + 2 * length - 3 - spread.shape[axis])]
            buffer = functional.pad(spread, tuple(padding))
            result = buffer[(..., *[slice(length - 1, length - 1 + size) for size in sizes])]
        else:
            result = spread
            for axis, size in zip(range(-ndim, 0), sizes):
                indices = self._pad_indices(size, bands.device)[: result.shape[axis]]
                shape = list(result.shape)
                shape[axis] = size
                folded = torch.zeros(shape, dtype=result.dtype, device=result.device)
                result = folded.index_add(axis, indices, result.narrow(axis, 0, len(indices)))
        return result[:, 0]

    # -- operator ---------------------------------------------------------------------------
    @staticmethod
    def _real_view(x: torch.Tensor) -> torch.Tensor:
        """``(R, *x.shape)``: real and imaginary parts stacked in front (``R = 1`` for real input)."""
        return torch.view_as_real(x).movedim(-1, 0) if x.is_complex() else x.unsqueeze(0)

    @staticmethod
    def _from_real_view(x: torch.Tensor, complex_output: bool) -> torch.Tensor:
        return torch.view_as_complex(x.movedim(0, -1).contiguous()) if complex_output else x[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_matrices:
            return self._forward_matrices(x)
        ndim = len(self.input_shape)
        real = self._real_view(x)
        approximation = real.reshape(-1, *self.input_shape)
        details: list[torch.Tensor] = []
        for _ in range(self.levels):
            bands = self._analysis(approximation)
            details.insert(0, bands[:, 1:].flatten(1))
            approximation = bands[:, 0]
        flat = torch.cat([approximation.flatten(1), *details], dim=-1)
        return self._from_real_view(flat.reshape(*real.shape[:-ndim], -1), x.is_complex())

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if self.uses_matrices:
            return self._adjoint_matrices(y)
        ndim = len(self.input_shape)
        real = self._real_view(y)
        flat = real.reshape(-1, real.shape[-1])
        start = math.prod(self.shapes[-1])
        approximation = flat[:, :start].reshape(-1, *self.shapes[-1])
        for level in range(self.levels, 0, -1):
            shape = self.shapes[level]
            count = (2**ndim - 1) * math.prod(shape)
            detail = flat[:, start : start + count].reshape(-1, 2**ndim - 1, *shape)
            start += count
            bands = torch.cat([approximation.unsqueeze(1), detail], dim=1)
            approximation = self._synthesis(bands, self.shapes[level - 1])
        image = approximation.reshape(*real.shape[:-1], *self.input_shape)
        return self._from_real_view(image, y.is_complex())
