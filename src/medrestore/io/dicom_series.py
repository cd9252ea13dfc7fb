"""A folder holding one DICOM series: single-frame files stacked into ``(slices, rows, cols)``.

Files are picked by extension (``.dcm``, ``.dicom``, ``.ima``) or, without one, by content;
other files (and DICOM files without pixel data, e.g. ``DICOMDIR``) are skipped and listed
in ``metadata["skipped_files"]``. All image files must share ``SeriesInstanceUID``, size,
orientation and pixel spacing, else the first offending file is named. Sorting and geometry
follow :func:`medrestore.io.dicom_geometry.stack_by_position` (``InstanceNumber`` when
positions are missing).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom

from medrestore.core.errors import InputError
from medrestore.io.common import DecodedImage, library_errors
from medrestore.io.detect import content_formats, format_from_extension
from medrestore.io.dicom import (
    decode_pixels,
    diagonal_affine,
    dicom_summary,
    has_pixels,
    modality_from_dicom,
    number_of,
    parse_dataset,
    plane_of,
    position_of,
    read_dicom_file,
    rescale,
    slice_spacing_of,
)
from medrestore.io.dicom_geometry import stack_affine, stack_by_position


@dataclasses.dataclass(frozen=True)
class SeriesMember:
    """One image file of the folder."""

    path: Path
    dataset: pydicom.Dataset

    @property
    def series_uid(self) -> str:
        return str(self.dataset.get("SeriesInstanceUID", "") or "")

    @property
    def instance_number(self) -> int | None:
        value = self.dataset.get("InstanceNumber")
        return None if value in (None, "") else int(value)


def _is_dicom_file(path: Path) -> bool:
    extension = format_from_extension(path)
    if extension is not None:
        return extension == "dicom"
    try:
        return path.stat().st_size > 0 and "dicom" in content_formats(path)
    except OSError:
        return False


def _load_members(folder: Path) -> tuple[list[SeriesMember], list[str]]:
    """Parse every DICOM image file of ``folder`` (not recursive)."""
    members, skipped = [], []
    with library_errors(folder, "list the folder"):
        files = sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith("."))
    for file in files:
        dataset = parse_dataset(file) if _is_dicom_file(file) else None
        if dataset is None or not has_pixels(dataset):
            skipped.append(file.name)
        else:
            members.append(SeriesMember(file, dataset))
    return members, skipped


def _check_one_series(folder: Path, members: list[SeriesMember]) -> None:
    counts = Counter(member.series_uid for member in members)
    if len(counts) == 1:
        return
    descriptions = {member.series_uid: str(member.dataset.get("SeriesDescription", "")) for member in members}
    listing = ", ".join(
        f"{uid or '(no UID)'} ({descriptions[uid]!r}, {count} files)" for uid, count in sorted(counts.items())
    )
    raise InputError(folder, f"folder holds {len(counts)} DICOM series; give one series per folder: {listing}")


def _check_consistent(members: list[SeriesMember]) -> None:
    """Same size, orientation and spacing as the first file, and single-frame files only."""
    reference = members[0]
    for member in members:
        if number_of(member.dataset, "NumberOfFrames", None, 1.0) > 1:
            raise InputError(
                member.path, "multi-frame file inside a series folder of several files; read it on its own"
            )
    reference_size = (int(reference.dataset.get("Rows", 0)), int(reference.dataset.get("Columns", 0)))
    reference_plane, _ = plane_of(reference.path, reference.dataset, None)
    for member in members[1:]:
        size = (int(member.dataset.get("Rows", 0)), int(member.dataset.get("Columns", 0)))
        if size != reference_size:
            raise InputError(
                member.path,
                f"slice size {size[0]}x{size[1]} differs from {reference_size[0]}x{reference_size[1]} "
                f"of {reference.path.name} in the same series",
            )
        plane, _ = plane_of(member.path, member.dataset, None)
        if not np.allclose(plane.orientation, reference_plane.orientation, atol=1e-4):
            raise InputError(
                member.path, f"ImageOrientationPatient differs from {reference.path.name} in the same series"
            )
        if not np.allclose(
            [plane.row_spacing, plane.column_spacing],
            [reference_plane.row_spacing, reference_plane.column_spacing],
            rtol=1e-4,
        ):
            raise InputError(member.path, f"PixelSpacing differs from {reference.path.name} in the same series")


def _order_and_affine(folder: Path, members: list[SeriesMember]) -> tuple[np.ndarray, np.ndarray]:
    """``(order (P, T), affine)``: by position along the normal, else by ``InstanceNumber``."""
    reference = members[0]
    plane, oriented = plane_of(reference.path, reference.dataset, None)
    positions = [position_of(member.dataset, None) for member in members]
    if oriented and all(position is not None for position in positions):
        names = [member.path.name for member in members]
        stack = stack_by_position(folder, np.stack(positions), plane.normal, names)
        step = stack.slice_step if stack.slice_step is not None else plane.normal * slice_spacing_of(reference.dataset)
        return stack.order, stack_affine(plane, stack.first_position, step)
    numbers = [member.instance_number for member in members]
    if any(number is None for number in numbers) or len(set(numbers)) != len(numbers):
        raise InputError(
            folder,
            "cannot order the slices: positions (ImagePositionPatient) and unique InstanceNumbers are both missing",
        )
    order = np.arange(len(members))[:, np.newaxis]  # members are already sorted by InstanceNumber
    spacing = slice_spacing_of(reference.dataset)
    if not oriented:
        return order, diagonal_affine(plane, spacing, 3)
    origin = positions[0] if positions[0] is not None else np.zeros(3)
    return order, stack_affine(plane, origin, plane.normal * spacing)


def read_dicom_series(folder: str | Path) -> DecodedImage:
    """Read a folder holding one DICOM series as a 3-D image (see the module docstring)."""
    folder = Path(folder)
    members, skipped = _load_members(folder)
    if not members:
        raise InputError(folder, f"folder holds no DICOM image files ({len(skipped)} other files skipped)")
    _check_one_series(folder, members)
    if len(members) == 1:
        decoded = read_dicom_file(members[0].path)
        return dataclasses.replace(
            decoded, metadata={**decoded.metadata, "dicom_files": [members[0].path.name], "skipped_files": skipped}
        )
    members.sort(key=lambda member: (member.instance_number or 0, member.path.name))
    _check_consistent(members)
    order, affine = _order_and_affine(folder, members)
    stored_slices, slopes, intercepts, notes = [], [], [], {}
    for member in members:
        stored, _, notes = decode_pixels(member.path, member.dataset)
        stored_slices.append(stored.reshape(stored.shape[-2:]))
        slopes.append(number_of(member.dataset, "RescaleSlope", None, 1.0))
        intercepts.append(number_of(member.dataset, "RescaleIntercept", None, 0.0))
    stored_volume = np.stack(stored_slices)
    values = rescale(stored_volume, np.asarray(slopes), np.asarray(intercepts))[order]  # (P, T, rows, cols)
    values = values[:, 0] if values.shape[1] == 1 else np.moveaxis(values, 1, -1)
    first = members[int(order[0, 0])]
    summary = dicom_summary(first.dataset)
    metadata = {
        "dicom": summary,
        "dicom_files": [members[index].path.name for index in order.ravel()],
        "skipped_files": skipped,
        **notes,
    }
    return DecodedImage(values, affine, 3, stored_volume.dtype, modality_from_dicom(summary.get("Modality")), metadata)
