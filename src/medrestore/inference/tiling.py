"""Sliding-window (tiled) inference for 2-D and 3-D images with bounded memory.

A size-preserving ``function`` (a network mapping ``(B, C_in, *window)`` to
``(B, C_out, *window)``) is applied to overlapping windows of the image; the window outputs
are blended with weights ``w`` into::

    y(p) = Σ_k w_k(p) f(x_k)(p) / Σ_k w_k(p)

Windows along an axis start every ``stride = window − overlap_voxels`` voxels
(``overlap_voxels = round(overlap · window)``), the last one flush with the far edge
(:func:`medrestore.data.patches.grid_starts`).

Blending weights are a per-axis profile (``gaussian``: ``exp(−(i − c)² / 2σ²)`` with
``σ = window/8`` as in nnU-Net/MONAI; ``constant``: 1) multiplied by a margin mask: on each side
of a window that faces another window (not the image border), the outer
``m = min(⌊overlap_voxels/2⌋, stride)`` voxels get weight 0. Every voxel is still covered by a
window in which it lies at least ``m`` voxels from any inner side (the overlap-tile strategy of
Ronneberger et al., MICCAI 2015), so a convolutional network whose receptive-field radius is at
most ``m`` gives the whole-image result up to rounding, instead of a blend that mixes in the
zero-padded borders of each window.

Memory: windows are cut from ``x`` on its device, moved to ``device`` ``batch_size`` at a time,
and their outputs accumulated (float64) on ``x``'s device, so at most ``batch_size`` windows are
on the compute device at once. Accumulating in float64 and casting back at the end makes the
identity function reproduce a float32 input exactly.

Images smaller than the window along an axis are padded by reflection (``abcd|cba...``, as
``numpy.pad(mode="reflect")``, repeated for short axes) and the output is cropped back.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.data.patches import grid_starts

BLENDS = ("gaussian", "constant")
GAUSSIAN_SIGMA_FRACTION = 0.125


def reflect_pad_to(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Pad the trailing ``len(shape)`` axes of ``x`` at their far end to ``shape`` by reflection.

    Uses whole-sample reflection (the edge voxel is not repeated) with period ``2(L − 1)``, so any
    amount of padding works; an axis of length 1 is repeated.
    """
    result = x
    for offset, target in enumerate(shape):
        axis = x.ndim - len(shape) + offset
        length = result.shape[axis]
        if target <= length:
            continue
        positions = torch.arange(target, device=x.device)
        if length == 1:
            index = torch.zeros_like(positions)
        else:
            folded = torch.remainder(positions, 2 * (length - 1))
            index = torch.where(folded >= length, 2 * (length - 1) - folded, folded)
        result = result.index_select(axis, index)
    return result


def window_profile(length: int, blend: str) -> torch.Tensor:
    """1-D float64 blending profile: Gaussian (σ = length/8, peak 1 at the centre) or ones."""
    if blend == "constant":
        return torch.ones(length, dtype=torch.float64)
    centre = (length - 1) / 2.0
    sigma = max(GAUSSIAN_SIGMA_FRACTION * length, 1e-6)
    offsets = torch.arange(length, dtype=torch.float64) - centre
    return torch.exp(-0.5 * (offsets / sigma) ** 2)


def axis_weights(length: int, blend: str, cut_before: int, cut_after: int) -> torch.Tensor:
    """:func:`window_profile` with the first ``cut_before`` and last ``cut_after`` entries set to 0."""
    weights = window_profile(length, blend).clone()
    weights[:cut_before] = 0.0
    if cut_after:
        weights[length - cut_after :] = 0.0
    return weights


def _outer(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Outer product of 1-D tensors: shape ``(len(v0), len(v1), ...)``."""
    n = len(vectors)
    shaped = [v.reshape([-1 if a == i else 1 for a in range(n)]) for i, v in enumerate(vectors)]
    return functools.reduce(torch.mul, shaped)


def _axis_layout(size: int, window: int, overlap: float, blend: str) -> list[tuple[int, torch.Tensor]]:
    """(start, 1-D weights) for every window along one axis."""
    overlap_voxels = min(int(round(overlap * window)), window - 1)
    stride = window - overlap_voxels
    margin = min(overlap_voxels // 2, stride)
    starts = grid_starts(size, window, stride)
    last = len(starts) - 1
    return [
        (start, axis_weights(window, blend, margin if k > 0 else 0, margin if k < last else 0))
        for k, start in enumerate(starts)
    ]


def _check_arguments(x: torch.Tensor, window: Sequence[int], overlap: float, blend: str, batch_size: int) -> None:
    if len(window) not in (2, 3) or min(window) < 1:
        raise ConfigError(f"window must be 2 or 3 positive ints, got {tuple(window)}")
    if x.ndim != len(window) + 2:
        raise InputError(None, f"expected a tensor (N, C, *spatial) with {len(window)} spatial axes, got shape {tuple(x.shape)}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if blend not in BLENDS:
        raise ConfigError(f"blend must be one of {BLENDS}, got {blend!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")


Position = tuple[tuple[int, torch.Tensor], ...]
"""One window: per spatial axis, its start and its 1-D blending weights."""


def _region(position: Position, window: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(start, start + w) for (start, _), w in zip(position, window, strict=True))


def _weights(position: Position, device: torch.device) -> torch.Tensor:
    return _outer([weights for _, weights in position]).to(device)


def _weight_sum(positions: list[Position], window: tuple[int, ...], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``Σ_k w_k`` over all windows, float64 ``shape``."""
    total = torch.zeros(shape, dtype=torch.float64, device=device)
    for position in positions:
        total[_region(position, window)] += _weights(position, device)
    return total


def _run_chunk(
    function: Callable[[torch.Tensor], torch.Tensor],
    padded: torch.Tensor,
    chunk: list[tuple[int, Position]],
    window: tuple[int, ...],
    device: torch.device,
) -> torch.Tensor:
    """Stack the chunk's windows, run ``function`` on ``device``, check the output size."""
    batch = torch.stack([padded[(n, slice(None), *_region(position, window))] for n, position in chunk])
    result = function(batch.to(device))
    if result.ndim != batch.ndim or tuple(result.shape[2:]) != window or result.shape[0] != len(chunk):
        raise InputError(
            None, f"the function must preserve the window size: got {tuple(result.shape)} for input {tuple(batch.shape)}"
        )
    return result


def sliding_window_inference(
    function: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    window: tuple[int, ...],
    overlap: float = 0.25,
    blend: str = "gaussian",
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Apply ``function`` to overlapping windows of ``x`` and blend the results (module docstring).

    Args:
        function: maps ``(B, C_in, *window)`` on ``device`` to ``(B, C_out, *window)``; it must
            preserve the spatial size (the number of channels may change). ``B ≤ batch_size``.
        x: ``(N, C_in, *spatial)`` with 2 or 3 spatial axes, any device.
        window: window size per spatial axis.
        overlap: fraction of the window shared by neighbouring windows, in ``[0, 1)``.
        blend: ``"gaussian"`` or ``"constant"``.
        batch_size: windows per call of ``function`` (bounds memory on ``device``).
        device: where ``function`` runs; default ``x.device``.

    Returns:
        ``(N, C_out, *spatial)`` on ``x.device`` with the dtype of ``function``'s output.
    """
    _check_arguments(x, window, overlap, blend, batch_size)
    window = tuple(int(w) for w in window)
    compute_device = x.device if device is None else torch.device(device)
    spatial = tuple(x.shape[2:])
    padded_shape = tuple(max(n, w) for n, w in zip(spatial, window, strict=True))
    padded = reflect_pad_to(x, padded_shape)
    positions: list[Position] = list(
        itertools.product(*(_axis_layout(n, w, overlap, blend) for n, w in zip(padded_shape, window, strict=True)))
    )
    tasks = list(itertools.product(range(x.shape[0]), positions))
    accumulator: torch.Tensor | None = None
    output_dtype = x.dtype
    for first in range(0, len(tasks), batch_size):
        chunk = tasks[first : first + batch_size]
        result = _run_chunk(function, padded, chunk, window, compute_device)
        if accumulator is None:
            output_dtype = result.dtype
            accumulator = torch.zeros((x.shape[0], result.shape[1], *padded_shape), dtype=torch.float64, device=x.device)
        result = result.detach().to(device=x.device, dtype=torch.float64)
        for k, (n, position) in enumerate(chunk):
            accumulator[(n, slice(None), *_region(position, window))] += result[k] * _weights(position, x.device)
    if accumulator is None:
        raise InputError(None, "no image to process (the batch is empty)")
    output = accumulator / _weight_sum(positions, window, padded_shape, x.device)
    crop = (slice(None), slice(None), *(slice(0, n) for n in spatial))
    return output[crop].to(output_dtype)


def count_windows(spatial_shape: Sequence[int], window: Sequence[int], overlap: float = 0.25) -> int:
    """Number of windows :func:`sliding_window_inference` uses per image."""
    return math.prod(
        len(_axis_layout(max(n, w), w, overlap, "constant")) for n, w in zip(spatial_shape, window, strict=True)
    )
