"""Patch geometry: deterministic grids with a stride, random positions, and extraction.

Conventions
-----------
Images are tensors of shape ``(C, *spatial)`` with 2 or 3 spatial axes; a patch position is
the tuple of start indices of the patch along the spatial axes, so a patch of size
``(p_0, ..., p_{n-1})`` at ``(s_0, ..., s_{n-1})`` covers ``s_a ≤ i_a < s_a + p_a``.

A grid along one axis of length ``L`` with window ``w`` and stride ``s`` starts at
``0, s, 2s, ...`` and always ends with a window flush with the far edge (start ``L − w``), so
every voxel is covered even when ``(L − w)`` is not a multiple of ``s`` — the layout of the
OCT patch recipe (41×41 patches, stride 14) and of tiled inference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from medrestore.core.errors import InputError


def grid_starts(size: int, window: int, stride: int) -> tuple[int, ...]:
    """Start indices of windows of length ``window`` stepping by ``stride`` over ``size`` voxels.

    The last start is ``size − window`` (flush with the edge), added if the stride skips it.

    Example:
        >>> grid_starts(10, 4, 3)
        (0, 3, 6)
        >>> grid_starts(11, 4, 3)
        (0, 3, 6, 7)
    """
    if window > size:
        raise ValueError(f"window {window} is larger than the axis length {size}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return tuple(starts)


def grid_shape(spatial_shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """Number of grid positions along each axis (see :func:`grid_starts`)."""
    return tuple(len(grid_starts(n, p, s)) for n, p, s in zip(spatial_shape, patch_size, stride, strict=True))


def count_grid_positions(spatial_shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]) -> int:
    """Total number of patches in the grid: the product of :func:`grid_shape`."""
    return math.prod(grid_shape(spatial_shape, patch_size, stride))


def grid_position(
    spatial_shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int], index: int
) -> tuple[int, ...]:
    """Start of the ``index``-th grid patch in C order (last axis fastest), without listing the grid."""
    axes = [grid_starts(n, p, s) for n, p, s in zip(spatial_shape, patch_size, stride, strict=True)]
    total = math.prod(len(a) for a in axes)
    if not 0 <= index < total:
        raise IndexError(f"grid index {index} outside [0, {total})")
    position = []
    for starts in reversed(axes):
        index, remainder = divmod(index, len(starts))
        position.append(starts[remainder])
    return tuple(reversed(position))


def grid_positions(
    spatial_shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, ...]]:
    """All grid patch starts in C order."""
    count = count_grid_positions(spatial_shape, patch_size, stride)
    return [grid_position(spatial_shape, patch_size, stride, i) for i in range(count)]


def random_position(
    spatial_shape: Sequence[int], patch_size: Sequence[int], generator: torch.Generator
) -> tuple[int, ...]:
    """A patch start drawn uniformly from ``[0, L_a − p_a]`` on each axis with ``generator``."""
    position = []
    for size, patch in zip(spatial_shape, patch_size, strict=True):
        high = size - patch + 1
        if high < 1:
            raise ValueError(f"patch {patch} is larger than the axis length {size}")
        position.append(int(torch.randint(high, (1,), generator=generator)))
    return tuple(position)


def extract_patch(image: torch.Tensor, start: Sequence[int], patch_size: Sequence[int]) -> torch.Tensor:
    """The patch of ``image`` (``(C, *spatial)``) at ``start``, as a new contiguous tensor.

    Returns ``(C, *patch_size)``; the input is not modified and the result shares no memory with it.
    """
    spatial_ndim = image.ndim - 1
    if len(start) != spatial_ndim or len(patch_size) != spatial_ndim:
        raise ValueError(f"start {tuple(start)} / patch {tuple(patch_size)} do not match image shape {tuple(image.shape)}")
    index = (slice(None),) + tuple(slice(s, s + p) for s, p in zip(start, patch_size, strict=True))
    return image[index].clone(memory_format=torch.contiguous_format)


def check_patch_fits(spatial_shape: Sequence[int], patch_size: Sequence[int], path: str | Path | None) -> None:
    """Raise :class:`InputError` naming ``path`` if a patch does not fit inside the image."""
    if len(spatial_shape) != len(patch_size):
        raise InputError(
            path, f"image has {len(spatial_shape)} spatial axes but patch_size {tuple(patch_size)} has {len(patch_size)}"
        )
    if any(p > n for p, n in zip(patch_size, spatial_shape, strict=True)):
        raise InputError(path, f"image of spatial shape {tuple(spatial_shape)} is smaller than patch_size {tuple(patch_size)}")
