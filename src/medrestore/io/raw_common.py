"""Pieces every raw k-space reader shares: checks, mask inference, the final :class:`KSpace`.

Layout (see :mod:`medrestore.core.kspace`): ``(*batch, coils, *grid)`` complex64, the readout
``kx`` last. ``metadata["phase_encode_axis"]`` names the grid axis of the phase-encode lines
(``-2`` = ``ky`` for twix/ISMRMRD/BART/NumPy; ``-1`` for fastMRI, whose images keep their
stored orientation: readout vertical). Undersampling masks are drawn along that axis.

Line-by-line formats (twix, ISMRMRD) place every readout by its counters
(:class:`LineCounters`, :func:`assemble_lines`): slices, averages, contrasts (echoes) and
repetitions become batch axes in the order of :data:`BATCH_COUNTERS` (outermost first), so
``(repetitions, contrasts, averages, slices, coils, *grid)`` with only the counters that take
more than one value; ``metadata["batch_axes"]`` names them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

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



def build_non_cartesian_kspace(
    path: str | Path,
    data: np.ndarray,
    image_shape: tuple[int, ...],
    trajectory: np.ndarray,
    affine: np.ndarray,
    metadata: dict[str, Any],
) -> KSpace:
    """:class:`KSpace` of checked (:func:`check_kspace_array`) samples on ``trajectory`` (grid units);
    a problem :class:`KSpace` finds with them is reported naming ``path``."""
    try:
        return KSpace(torch.from_numpy(data), image_shape, None, torch.from_numpy(trajectory), affine, metadata)
    except InputError as error:
        raise InputError(path, error.problem) from None

BATCH_COUNTERS = ("repetition", "contrast", "average", "slice")
"""Counters kept as batch axes of line-by-line k-space, outermost first."""
REFUSED_COUNTERS = ("phase", "set")
"""Counters whose values cannot be told apart in one image series (cardiac phases, sets): more than one value is refused."""


class LineCounters(NamedTuple):
    """Where one readout belongs (0-based counters, ISMRMRD names; twix: Lin Par Sli Ave Eco Rep Phs Set Seg)."""

    line: int
    partition: int = 0
    slice: int = 0
    average: int = 0
    contrast: int = 0
    repetition: int = 0
    phase: int = 0
    set: int = 0
    segment: int = 0


@dataclasses.dataclass(frozen=True)
class AssembledLines:
    """Readouts on their grid.

    Attributes:
        data: complex128 ``(*batch, coils, partitions, lines, samples)``; lines never acquired are 0.
        batch_axes: names of the batch axes (a subset of :data:`BATCH_COUNTERS`, same order).
        batch_values: the counter value of every index along each batch axis.
    """

    data: np.ndarray
    batch_axes: tuple[str, ...]
    batch_values: dict[str, list[int]]


def _check_counters(path: str | Path, counters: Sequence[LineCounters], labels: Mapping[str, str]) -> None:
    """Refuse several phases or sets, and one line acquired in several segments (a segmented readout)."""
    for name in REFUSED_COUNTERS:
        values = sorted({getattr(counter, name) for counter in counters})
        if len(values) > 1:
            raise InputError(path, f"acquisitions carry {len(values)} values of the {labels[name]} counter "
                                   f"({values[0]}…{values[-1]}): only one {name} is supported")
    segments: dict[tuple[int, ...], int] = {}
    for counter in counters:
        key = tuple(counter[:-1])
        if segments.setdefault(key, counter.segment) != counter.segment:
            raise InputError(path, f"line {counter.line} is acquired in several {labels['segment']} counter values "
                                   f"({segments[key]} and {counter.segment}): segmented readouts are not supported")


def assemble_lines(
    path: str | Path,
    readouts: Sequence[tuple[LineCounters, np.ndarray]],
    matrix: tuple[int, int] | None = None,
    average: bool = False,
    labels: Mapping[str, str] | None = None,
) -> AssembledLines:
    """Place readouts ``(coils, samples)`` on ``(*batch, coils, partitions, lines, samples)`` by their counters.

    Args:
        path: the file (for messages).
        readouts: ``(counters, data)`` of every imaging readout.
        matrix: ``(partitions, lines)`` of the encoded grid; default ``1 + max`` of the counters.
        average: average over the average counter instead of keeping it as a batch axis.
        labels: how the file format names each counter, for messages (default: the field names).

    Readouts with identical counters (repeated lines) are averaged (complex mean). Batch indices
    follow the sorted distinct counter values, so counters need not start at 0 or be contiguous.
    Segments only label acquisition order here; a line repeated in several segments is refused.
    """
    labels = {name: name for name in LineCounters._fields} | dict(labels or {})
    if not readouts:
        raise InputError(path, "the file holds no imaging readouts")
    counters = [counter for counter, _ in readouts]
    _check_counters(path, counters, labels)
    coils, samples = readouts[0][1].shape
    partitions, lines = matrix or (1 + max(c.partition for c in counters), 1 + max(c.line for c in counters))
    axes = tuple(name for name in BATCH_COUNTERS if not (average and name == "average")
                 and len({getattr(counter, name) for counter in counters}) > 1)
    values = {name: sorted({getattr(counter, name) for counter in counters}) for name in axes}
    positions = {name: {value: index for index, value in enumerate(values[name])} for name in axes}
    batch_shape = tuple(len(values[name]) for name in axes)
    data = np.zeros((*batch_shape, coils, partitions, lines, samples), dtype=np.complex128)
    counts = np.zeros((*batch_shape, 1, partitions, lines, 1))
    for counter, readout in readouts:
        if readout.shape != (coils, samples):
            raise InputError(path, f"readouts of different sizes: {readout.shape} and {(coils, samples)}")
        if not (0 <= counter.line < lines and 0 <= counter.partition < partitions):
            raise InputError(path, f"readout at line {counter.line}, partition {counter.partition} lies outside the "
                                   f"matrix {(partitions, lines)}")
        batch = tuple(positions[name][getattr(counter, name)] for name in axes)
        data[(*batch, slice(None), counter.partition, counter.line)] += readout
        counts[(*batch, 0, counter.partition, counter.line)] += 1
    return AssembledLines(data / np.maximum(counts, 1), axes, values)
