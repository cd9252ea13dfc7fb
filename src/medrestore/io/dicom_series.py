"""A folder holding one DICOM series: single-frame files stacked into ``(slices, rows, cols)``,
or ``(slices, rows, cols, T)`` when several files share each slice position (fMRI, dynamic,
multi-echo).

Files are picked by extension (``.dcm``, ``.dicom``, ``.ima``, and the same with ``.gz``) or,
without one, by content (gzip-compressed files are decompressed in memory); other files (and
DICOM files without pixel data, e.g. ``DICOMDIR``) are skipped and listed in
``metadata["skipped_files"]``. All image files must share ``SeriesInstanceUID``, size,
orientation and pixel spacing, else the first offending file is named.

Order: slices by position along the normal
(:func:`medrestore.io.dicom_geometry.stack_by_position`; ``InstanceNumber`` when positions are
missing). The files sharing one position are ordered in time by the first of
``TemporalPositionIdentifier``, ``AcquisitionTime``, ``TriggerTime``, ``InstanceNumber`` that
every file carries and that tells apart the files at each position; the keyword used is
``metadata["dicom_time_order"]``.

Each file is parsed once, limited to the elements the reader uses
(:data:`SERIES_KEYWORDS`), and its pixels are decoded right away so that the parsed headers
of long series (thousands of files) stay small.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from medrestore.core.errors import InputError
from medrestore.io.common import DecodedImage, library_errors
from medrestore.io.detect import content_formats, format_from_extension
from medrestore.io.dicom import (
    METADATA_KEYWORDS,
    NM_KEYWORDS,
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
    slice_spacing_of,
)
from medrestore.io.dicom_geometry import PlaneGeometry, stack_affine, stack_by_position
from medrestore.io.dicom_payload import PIXEL_KEYWORDS

TIME_KEYWORDS = ("TemporalPositionIdentifier", "AcquisitionTime", "TriggerTime", "InstanceNumber")
"""Keywords that order the files sharing one slice position, in order of preference."""

SERIES_KEYWORDS = tuple(
    dict.fromkeys(
        (
            *METADATA_KEYWORDS,
            *NM_KEYWORDS,
            *TIME_KEYWORDS,
            *PIXEL_KEYWORDS,
            "SOPInstanceUID", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
            "ImagerPixelSpacing", "NominalScannedPixelSpacing", "SamplesPerPixel", "PlanarConfiguration",
            "BitsAllocated", "HighBit", "PixelRepresentation", "SmallestImagePixelValue",
            "LargestImagePixelValue", "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
            "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "FloatPixelPaddingValue",
            "DoubleFloatPixelPaddingValue", "ImageType", "Manufacturer",
        )  # fmt: skip
    )
)
"""The elements parsed from each file of a series (pydicom ``specific_tags``)."""


@dataclasses.dataclass(frozen=True)
class SeriesMember:
    """What the reader keeps of one image file: the header values it orders and checks by,
    and the stored pixels (the parsed header itself is let go, so long series stay small).

    Attributes:
        path: the file.
        series_uid, series_description: ``SeriesInstanceUID``, ``SeriesDescription``.
        instance_number: ``InstanceNumber`` or ``None``.
        size: ``(Rows, Columns)``.
        n_frames: ``NumberOfFrames`` (1 for single-frame files).
        plane: in-plane geometry; ``oriented`` says whether the file gives an orientation.
        position: ``ImagePositionPatient`` (LPS mm) or ``None``.
        times: the :data:`TIME_KEYWORDS` values as numbers (``None`` when absent).
        slope, intercept: ``RescaleSlope``/``RescaleIntercept``.
        fallback_spacing: slice distance from the tags (used without positions).
        stored: stored pixel values ``(rows, cols)`` (colour converted to luma).
        notes: decoding notes (e.g. ``converted_from``).
        mosaic: a Siemens mosaic (``ImageType`` ``MOSAIC``): one file holds a whole volume.
    """

    path: Path
    series_uid: str
    series_description: str
    instance_number: int | None
    size: tuple[int, int]
    n_frames: int
    plane: PlaneGeometry
    oriented: bool
    position: np.ndarray | None
    times: dict[str, float | None]
    slope: float
    intercept: float
    fallback_spacing: float
    stored: np.ndarray
    notes: dict[str, Any]
    mosaic: bool = False


def _is_dicom_file(path: Path) -> bool:
    extension = format_from_extension(path)
    if extension is not None:
        return extension == "dicom"
    try:
        return path.stat().st_size > 0 and "dicom" in content_formats(path)
    except OSError:
        return False


def _load_member(file: Path) -> SeriesMember | None:
    """Parse and decode one file; ``None`` for files that are not DICOM images."""
    if not _is_dicom_file(file):
        return None
    dataset = parse_dataset(file, SERIES_KEYWORDS)
    if not has_pixels(dataset):
        return None
    n_frames = int(number_of(dataset, "NumberOfFrames", None, 1.0))
    stored, notes = np.empty((0, 0)), {}
    if n_frames == 1:  # a multi-frame file is refused, or read on its own, later
        stored, _, notes = decode_pixels(file, dataset)
    plane, oriented = plane_of(file, dataset, None)
    instance = dataset.get("InstanceNumber")
    return SeriesMember(
        path=file,
        series_uid=str(dataset.get("SeriesInstanceUID", "") or ""),
        series_description=str(dataset.get("SeriesDescription", "") or ""),
        instance_number=None if instance in (None, "") else int(instance),
        size=(int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)),
        n_frames=n_frames,
        plane=plane,
        oriented=oriented,
        position=position_of(dataset, None),
        times={keyword: time_value(dataset, keyword) for keyword in TIME_KEYWORDS},
        slope=number_of(dataset, "RescaleSlope", None, 1.0),
        intercept=number_of(dataset, "RescaleIntercept", None, 0.0),
        fallback_spacing=slice_spacing_of(dataset),
        stored=stored.reshape(stored.shape[-2:]),
        notes=notes,
        mosaic="MOSAIC" in [str(value).upper() for value in (dataset.get("ImageType") or [])]
        and "SIEMENS" in str(dataset.get("Manufacturer", "")).upper(),
    )


def _load_members(folder: Path) -> tuple[list[SeriesMember], list[str]]:
    """Parse every DICOM image file of ``folder`` (not recursive)."""
    members, skipped = [], []
    with library_errors(folder, "list the folder"):
        files = sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith("."))
    for file in files:
        member = _load_member(file)
        if member is None:
            skipped.append(file.name)
        else:
            members.append(member)
    return members, skipped


def _check_one_series(folder: Path, members: list[SeriesMember]) -> None:
    counts = Counter(member.series_uid for member in members)
    if len(counts) == 1:
        return
    descriptions = {member.series_uid: member.series_description for member in members}
    listing = ", ".join(
        f"{uid or '(no UID)'} ({descriptions[uid]!r}, {count} files)" for uid, count in sorted(counts.items())
    )
    raise InputError(folder, f"folder holds {len(counts)} DICOM series; give one series per folder: {listing}")


def _check_consistent(members: list[SeriesMember]) -> None:
    """Same size, orientation and spacing as the first file, and single-frame files only."""
    reference = members[0]
    for member in members:
        if member.n_frames > 1:
            raise InputError(
                member.path, "multi-frame file inside a series folder of several files; read it on its own"
            )
    reference_size, reference_plane = reference.size, reference.plane
    for member in members[1:]:
        size, plane = member.size, member.plane
        if size != reference_size:
            raise InputError(
                member.path,
                f"slice size {size[0]}x{size[1]} differs from {reference_size[0]}x{reference_size[1]} "
                f"of {reference.path.name} in the same series",
            )
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


def time_value(dataset: pydicom.Dataset, keyword: str) -> float | None:
    """A time-ordering value as a number: identifiers and ms as they are, ``TM`` in seconds."""
    value = dataset.get(keyword)
    if value in (None, ""):
        return None
    if keyword != "AcquisitionTime":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    text = str(value).strip().replace(":", "")
    try:
        hours, minutes = int(text[0:2]), int(text[2:4] or 0)
        return hours * 3600.0 + minutes * 60.0 + float(text[4:] or 0.0)
    except ValueError:
        return None


def choose_time_keyword(members: Sequence[SeriesMember], groups: np.ndarray) -> str | None:
    """The first of :data:`TIME_KEYWORDS` present in every file and distinct within each position.

    ``groups`` is the ``(P, T)`` index array of the files at each position; ``None`` when no
    keyword qualifies (the files keep their name order).
    """
    for keyword in TIME_KEYWORDS:
        values = [member.times[keyword] for member in members]
        if any(value is None for value in values):
            continue
        if all(len({values[index] for index in row}) == len(row) for row in groups):
            return keyword
    return None


def _sort_in_time(members: Sequence[SeriesMember], order: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Each row of ``order`` (the files at one position) sorted by :func:`choose_time_keyword`."""
    if order.shape[1] == 1:
        return order, None
    keyword = choose_time_keyword(members, order)
    if keyword is None:
        return np.sort(order, axis=1), None
    values = np.asarray([member.times[keyword] for member in members])
    rows = [sorted(row, key=lambda index: (values[index], members[index].path.name)) for row in order.tolist()]
    return np.asarray(rows), keyword


def _order_and_affine(folder: Path, members: list[SeriesMember]) -> tuple[np.ndarray, np.ndarray]:
    """``(order (P, T), affine)``: by position along the normal, else by ``InstanceNumber``."""
    reference = members[0]
    plane, oriented = reference.plane, reference.oriented
    positions = [member.position for member in members]
    if oriented and all(position is not None for position in positions):
        names = [member.path.name for member in members]
        stack = stack_by_position(folder, np.stack(positions), plane.normal, names)
        step = stack.slice_step if stack.slice_step is not None else plane.normal * reference.fallback_spacing
        return stack.order, stack_affine(plane, stack.first_position, step)
    numbers = [member.instance_number for member in members]
    if any(number is None for number in numbers) or len(set(numbers)) != len(numbers):
        raise InputError(
            folder,
            "cannot order the slices: positions (ImagePositionPatient) and unique InstanceNumbers are both missing",
        )
    order = np.arange(len(members))[:, np.newaxis]  # members are already sorted by InstanceNumber
    spacing = reference.fallback_spacing
    if not oriented:
        return order, diagonal_affine(plane, spacing, 3)
    origin = positions[0] if positions[0] is not None else np.zeros(3)
    return order, stack_affine(plane, origin, plane.normal * spacing)


def _stacked_values(members: list[SeriesMember], order: np.ndarray) -> np.ndarray:
    """Rescaled values ``(P, rows, cols)`` or ``(P, rows, cols, T)`` in ``order``, written
    straight into one array (no intermediate stacks: a 4-D series can be hundreds of MB)."""
    identity = all(member.slope == 1.0 and member.intercept == 0.0 for member in members)
    dtype = np.result_type(*{member.stored.dtype for member in members}) if identity else np.float32
    n_positions, n_times = order.shape
    values = np.empty((n_positions, n_times, *members[0].size), dtype=dtype)
    for (position, time), index in np.ndenumerate(order):
        member = members[index]
        if identity:
            values[position, time] = member.stored
        else:  # the same float32 arithmetic as medrestore.io.dicom.rescale
            values[position, time] = member.stored.astype(np.float32) * np.float32(member.slope) + np.float32(
                member.intercept
            )
    return values[:, 0] if n_times == 1 else np.ascontiguousarray(np.moveaxis(values, 1, -1))


def _read_single_member(member: SeriesMember, skipped: list[str]) -> DecodedImage:
    decoded = read_dicom_file(member.path)
    return dataclasses.replace(
        decoded, metadata={**decoded.metadata, "dicom_files": [member.path.name], "skipped_files": skipped}
    )


def _read_mosaic_series(folder: Path, members: list[SeriesMember], skipped: list[str]) -> DecodedImage | None:
    """A folder of Siemens mosaics, one volume per file (an fMRI run, a diffusion series): the volumes in time order
    as ``(slice, row, column, T)``; every file must give the same grid. ``None`` when the first file's mosaic is not
    a grid of tiles (it is then read as stored, and the folder as any other)."""
    order, time_keyword = _sort_in_time(members, np.arange(len(members))[np.newaxis, :])
    first = read_dicom_file(members[int(order[0, 0])].path)
    if "dicom_mosaic_slices" not in first.metadata:
        return None
    volumes = [first] + [read_dicom_file(members[index].path) for index in order[0][1:]]
    for index, volume in zip(order[0][1:], volumes[1:], strict=True):
        if volume.array.shape != first.array.shape or not np.allclose(volume.affine, first.affine, atol=1e-3):
            raise InputError(folder, f"the mosaics do not share one grid: {members[index].path.name} differs from "
                                     f"{members[int(order[0, 0])].path.name}")  # fmt: skip
    dtype = np.result_type(*{volume.array.dtype for volume in volumes})
    values = np.empty((*first.array.shape, len(volumes)), dtype=dtype)
    for time, volume in enumerate(volumes):
        values[..., time] = volume.array
    metadata = {**first.metadata, "dicom_files": [members[index].path.name for index in order[0]], "skipped_files": skipped}
    if time_keyword is not None:
        metadata["dicom_time_order"] = time_keyword
    return DecodedImage(values, first.affine, first.spatial_ndim, first.source_dtype, first.modality, metadata)


def read_dicom_series(folder: str | Path) -> DecodedImage:
    """Read a folder holding one DICOM series as a 3-D (or 3-D + time) image (see the module docstring)."""
    folder = Path(folder)
    members, skipped = _load_members(folder)
    if not members:
        raise InputError(folder, f"folder holds no DICOM image files ({len(skipped)} other files skipped)")
    _check_one_series(folder, members)
    if len(members) == 1:
        return _read_single_member(members[0], skipped)
    members.sort(key=lambda member: (member.instance_number or 0, member.path.name))
    _check_consistent(members)
    if all(member.mosaic for member in members) and (mosaics := _read_mosaic_series(folder, members, skipped)) is not None:
        return mosaics
    order, affine = _order_and_affine(folder, members)
    order, time_keyword = _sort_in_time(members, order)
    values = _stacked_values(members, order)
    first = members[int(order[0, 0])]
    summary = dicom_summary(parse_dataset(first.path, SERIES_KEYWORDS))  # the header was let go
    metadata = {
        "dicom": summary,
        "dicom_files": [members[index].path.name for index in order.ravel()],
        "skipped_files": skipped,
        "dicom_slice_spacing": float(np.linalg.norm(affine[:3, 0])),
        "dicom_patient_geometry": first.oriented,
        **first.notes,
    }
    if time_keyword is not None:
        metadata["dicom_time_order"] = time_keyword
    source_dtype = np.result_type(*{member.stored.dtype for member in members})
    modality = modality_from_dicom(summary.get("Modality"))
    return DecodedImage(values, affine, 3, source_dtype, modality, metadata)
