"""DICOM patient geometry ↔ the :class:`Image` affine.

DICOM places pixel ``(r, c)`` of a plane at (PS3.3 C.7.6.2.1.1)::

    P(r, c) = IPP + c · Δc · X + r · Δr · Y          (mm, patient LPS)

with ``X = IOP[0:3]`` (direction of increasing column index), ``Y = IOP[3:6]`` (increasing
row index), ``PixelSpacing = [Δr, Δc]`` (row spacing first). A stack of planes adds
``k · s`` with ``s`` the step between consecutive slice positions. The affine for array
index ``(k, r, c)`` therefore has columns ``[s, Δr·Y, Δc·X, IPP₀]`` in LPS; RAS+ is that with
the first two world rows negated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from medrestore.core.errors import InputError
from medrestore.core.image import Image

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORTHOGONALITY_TOLERANCE = 1e-4  # |cos| between in-plane axes
POSITION_TOLERANCE_MM = 1e-3  # two slice positions closer than this are the same position


@dataclasses.dataclass(frozen=True)
class PlaneGeometry:
    """One image plane: unit direction cosines (LPS) and pixel spacing (mm).

    Attributes:
        row_cosine: (3,) direction of increasing column index (``IOP[0:3]``).
        column_cosine: (3,) direction of increasing row index (``IOP[3:6]``).
        row_spacing: distance between neighbouring rows (``PixelSpacing[0]``).
        column_spacing: distance between neighbouring columns (``PixelSpacing[1]``).
    """

    row_cosine: np.ndarray
    column_cosine: np.ndarray
    row_spacing: float
    column_spacing: float

    @property
    def normal(self) -> np.ndarray:
        """Unit slice normal ``X × Y`` (LPS)."""
        normal = np.cross(self.row_cosine, self.column_cosine)
        return normal / np.linalg.norm(normal)

    @property
    def orientation(self) -> list[float]:
        """``ImageOrientationPatient`` values."""
        return [float(v) for v in (*self.row_cosine, *self.column_cosine)]


def plane_from_tags(path: object, orientation: Sequence[float] | None, spacing: Sequence[float]) -> PlaneGeometry:
    """Validated geometry from ``ImageOrientationPatient`` (``None``: rows along +y, columns
    along +x) and ``PixelSpacing``."""
    values = np.asarray([1, 0, 0, 0, 1, 0] if orientation is None else orientation, dtype=np.float64)
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        raise InputError(path, f"ImageOrientationPatient must hold 6 numbers, got {list(values)}")
    row_cosine, column_cosine = values[:3], values[3:]
    norms = np.linalg.norm(row_cosine), np.linalg.norm(column_cosine)
    if min(norms) < 1e-6:
        raise InputError(path, f"ImageOrientationPatient has a zero direction: {list(values)}")
    row_cosine, column_cosine = row_cosine / norms[0], column_cosine / norms[1]
    if abs(float(row_cosine @ column_cosine)) > 1e-3:
        raise InputError(path, f"ImageOrientationPatient directions are not perpendicular: {list(values)}")
    spacing_values = [float(v) for v in spacing]
    if len(spacing_values) != 2 or min(spacing_values) <= 0 or not np.all(np.isfinite(spacing_values)):
        raise InputError(path, f"PixelSpacing must be two positive numbers, got {spacing_values}")
    return PlaneGeometry(row_cosine, column_cosine, spacing_values[0], spacing_values[1])


def stack_affine(plane: PlaneGeometry, first_position: np.ndarray, slice_step: np.ndarray) -> np.ndarray:
    """RAS+ affine for array index ``(k, r, c)``; positions and step in LPS mm."""
    lps = np.eye(4)
    lps[:3, 0] = slice_step
    lps[:3, 1] = plane.column_cosine * plane.row_spacing
    lps[:3, 2] = plane.row_cosine * plane.column_spacing
    lps[:3, 3] = first_position
    return LPS_TO_RAS @ lps


def plane_affine(plane: PlaneGeometry, position: np.ndarray, thickness: float) -> np.ndarray:
    """RAS+ affine for array index ``(r, c)``; the third column is ``thickness`` along the normal."""
    lps = np.eye(4)
    lps[:3, 0] = plane.column_cosine * plane.row_spacing
    lps[:3, 1] = plane.row_cosine * plane.column_spacing
    lps[:3, 2] = plane.normal * thickness
    lps[:3, 3] = position
    return LPS_TO_RAS @ lps


@dataclasses.dataclass(frozen=True)
class StackOrder:
    """How frames (files or frames of one file) form a volume.

    Attributes:
        order: ``(P, T)`` indices into the input frames: ``P`` positions sorted along the
            normal, ``T`` frames per position in input order (``T == 1`` for a plain volume).
        first_position: (3,) LPS position of slice 0.
        slice_step: (3,) LPS vector from one slice to the next (``None`` when ``P == 1``).
    """

    order: np.ndarray
    first_position: np.ndarray
    slice_step: np.ndarray | None


def stack_by_position(path: object, positions: np.ndarray, normal: np.ndarray, names: Sequence[str]) -> StackOrder:
    """Sort frames along ``normal`` by their ``ImagePositionPatient``.

    Frames sharing a position (multi-echo, dynamic) become a trailing axis; each position
    must hold the same number of frames and the positions must lie evenly on a line.

    Raises:
        InputError: uneven repeats, or a gap/offset (named by the frame just before it).
    """
    positions = np.asarray(positions, dtype=np.float64)
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    groups: list[list[int]] = [[int(order[0])]]
    for index in order[1:]:
        if abs(distances[index] - distances[groups[-1][0]]) <= POSITION_TOLERANCE_MM:
            groups[-1].append(int(index))
        else:
            groups.append([int(index)])
    groups = [sorted(group) for group in groups]  # frames sharing a position keep their input order
    sizes = {len(group) for group in groups}
    if len(sizes) != 1:
        raise InputError(
            path, f"slice positions repeat unevenly ({sorted(sizes)} frames per position); cannot form a volume"
        )
    first = positions[groups[0][0]]
    if len(groups) == 1:
        return StackOrder(np.asarray(groups), first, None)
    unique = positions[[group[0] for group in groups]]
    step = (unique[-1] - unique[0]) / (len(groups) - 1)
    predicted = first + np.arange(len(groups))[:, None] * step
    deviation = np.linalg.norm(unique - predicted, axis=1)
    tolerance = 0.01 + 0.01 * float(np.linalg.norm(step))
    if deviation.max() > tolerance:
        gaps = np.diff(distances[[group[0] for group in groups]])
        worst = int(np.argmax(np.abs(gaps - gaps.mean())))
        raise InputError(
            path,
            f"slice positions are not evenly spaced on a line (gaps {gaps.min():.4g} to {gaps.max():.4g} mm; "
            f"irregular after {names[groups[worst][0]]}); a slice may be missing",
        )
    return StackOrder(np.asarray(groups), first, step)


def _in_plane_orthogonal(vectors: np.ndarray, axis: int) -> bool:
    """Whether the two axes other than ``axis`` are perpendicular."""
    first, second = (vectors[:, a] / np.linalg.norm(vectors[:, a]) for a in range(3) if a != axis)
    return abs(float(first @ second)) <= ORTHOGONALITY_TOLERANCE


def choose_slice_axis(path: object, image: Image, preferred: int | None) -> int:
    """Spatial axis to store as DICOM slices for a 3-D image.

    Candidates are axes whose two other axes are perpendicular (a DICOM plane cannot be
    sheared). ``preferred`` wins when it is a candidate; otherwise the axis best aligned with
    the normal of the other two, then the coarsest spacing, then the last axis.
    """
    vectors = np.asarray(image.affine[:3, :3], dtype=np.float64)
    candidates = [axis for axis in range(3) if _in_plane_orthogonal(vectors, axis)]
    if not candidates:
        raise InputError(
            path, "the affine is sheared in every plane; DICOM planes must have perpendicular rows and columns"
        )
    if preferred in candidates:
        return int(preferred)

    def score(axis: int) -> tuple[float, float, int]:
        others = [a for a in range(3) if a != axis]
        normal = np.cross(vectors[:, others[0]], vectors[:, others[1]])
        alignment = abs(float(vectors[:, axis] @ normal)) / (np.linalg.norm(vectors[:, axis]) * np.linalg.norm(normal))
        return round(alignment, 6), round(float(np.linalg.norm(vectors[:, axis])), 6), axis

    return max(candidates, key=score)


@dataclasses.dataclass(frozen=True)
class StackGeometry:
    """LPS geometry of a ``(slices, rows, cols)`` stack to write: unit cosines, spacings, positions.

    Attributes:
        orientation: ``ImageOrientationPatient`` (row cosine, then column cosine).
        pixel_spacing: ``PixelSpacing`` ``[row spacing, column spacing]`` (mm).
        positions: ``(slices, 3)`` ``ImagePositionPatient`` of each slice (LPS mm).
        normal: unit slice normal ``row cosine × column cosine``.
        slice_spacing: distance between slices along the normal (mm).
    """

    orientation: list[float]
    pixel_spacing: list[float]
    positions: np.ndarray
    normal: np.ndarray
    slice_spacing: float


def stack_geometry(path: object, affine: np.ndarray, n_slices: int) -> StackGeometry:
    """Geometry of a slices-first RAS+ affine (column 0: slice step, 1: rows, 2: columns).

    The inverse of :func:`stack_affine`. Raises ``InputError`` when rows and columns are not
    perpendicular (a DICOM plane cannot be sheared).
    """
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    step, row_vector, column_vector = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    row_spacing, column_spacing = float(np.linalg.norm(row_vector)), float(np.linalg.norm(column_vector))
    column_cosine, row_cosine = row_vector / row_spacing, column_vector / column_spacing
    if abs(float(row_cosine @ column_cosine)) > ORTHOGONALITY_TOLERANCE:
        raise InputError(path, "image rows and columns are not perpendicular; DICOM planes cannot be sheared")
    normal = np.cross(row_cosine, column_cosine)
    positions = lps[:3, 3] + np.arange(n_slices)[:, np.newaxis] * step
    return StackGeometry(
        orientation=[float(v) for v in (*row_cosine, *column_cosine)],
        pixel_spacing=[row_spacing, column_spacing],
        positions=positions,
        normal=normal,
        slice_spacing=abs(float(step @ normal)) or float(np.linalg.norm(step)),
    )
