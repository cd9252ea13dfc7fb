"""Pieces every raw k-space reader shares: checks, mask inference, the final :class:`KSpace`.

Layout (see :mod:`medrestore.core.kspace`): ``(*batch, coils, *grid)`` complex64, the readout
``kx`` last. ``metadata["phase_encode_axis"]`` names the grid axis of the phase-encode lines
(``-2`` = ``ky`` for twix/ISMRMRD/BART/NumPy; ``-1`` for fastMRI, whose images keep their
stored orientation: readout vertical). Undersampling masks are drawn along that axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.image import affine_from_spacing
from medrestore.core.kspace import KSpace


def check_kspace_array(path: str | Path, array: np.ndarray, grid_ndim: int = 2) -> np.ndarray:
    """Refuse non-complex, empty, coil-less or non-finite k-space; return it as complex64."""
    if array.dtype.kind != "c":
        raise InputError(path, f"k-space must be complex, found {array.dtype}")
    if array.ndim < grid_ndim + 1:
        raise InputError(path, f"k-space of shape {array.shape} needs a coil axis and {grid_ndim} grid axes")
    if array.size == 0:
        raise InputError(path, f"k-space has no samples (shape {array.shape})")
    finite = np.isfinite(array)
    if not finite.all():
        raise InputError(path, f"k-space contains {int(finite.size - finite.sum())} NaN or infinite samples")
    return np.ascontiguousarray(array, dtype=np.complex64)


def infer_mask(data: np.ndarray, grid_ndim: int = 2) -> np.ndarray | None:
    """The sampling pattern of zero-filled Cartesian k-space ``(*batch, coils, *grid)``.

    A location counts as sampled when any coil (of any batch entry) is non-zero there. Returns
    ``None`` when everything is sampled, a line mask (``(ny, 1)`` or ``(1, nx)``) when the
    pattern is constant along one axis (all-zero phase-encode lines), else the full 2-D pattern.
    """
    sampled = np.any(data != 0, axis=tuple(range(data.ndim - grid_ndim)))
    if sampled.all():
        return None
    for axis in range(grid_ndim):
        line = np.any(sampled, axis=axis, keepdims=True)
        if np.array_equal(np.broadcast_to(line, sampled.shape), sampled) and not line.all():
            return line
    return sampled


def build_kspace(
    path: str | Path,
    data: np.ndarray,
    spacing: tuple[float, ...],
    metadata: Mapping[str, Any],
    mask: np.ndarray | None = None,
    grid_ndim: int = 2,
) -> KSpace:
    """Checked :class:`KSpace` with the inferred (or given) mask and a diagonal affine from ``spacing``."""
    data = check_kspace_array(path, data, grid_ndim)
    if mask is None:
        mask = infer_mask(data, grid_ndim)
    grid = tuple(data.shape[-grid_ndim:])
    full_metadata = {"source_path": str(path), "phase_encode_axis": -2, **dict(metadata)}
    tensor_mask = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))
    try:
        return KSpace(torch.from_numpy(data), grid, tensor_mask, None, affine_from_spacing(spacing), full_metadata)
    except InputError as error:
        raise InputError(path, error.problem) from None
