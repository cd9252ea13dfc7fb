"""DICOM reading (pydicom): one file (2-D or multi-frame) or a series folder.

Files may be gzip-compressed (``*.dcm.gz``): they are decompressed in memory
(:mod:`medrestore.io.dicom_payload`). Compressed transfer syntaxes (JPEG Lossless, JPEG-LS,
JPEG Extended, JPEG 2000, RLE) are decoded by pydicom's pixel plugins (pylibjpeg with its
libjpeg and openjpeg plugins); pixel data that cannot be decoded is one ``InputError``
naming the file.

Array order: ``(rows, cols)`` for a single-frame file, ``(slices, rows, cols)`` for a
multi-frame file or a series (a trailing ``T`` when several frames share one position, e.g.
multi-echo). Values are ``stored · RescaleSlope + RescaleIntercept`` (per frame or slice).
The affine maps ``(k, r, c)`` to the patient position converted from LPS to RAS+ (see
:mod:`medrestore.io.dicom_geometry`); files without ``ImageOrientationPatient`` get a plain
diagonal affine from the pixel spacing.

Slices of a series are sorted by position along the slice normal (``ImagePositionPatient``
projected on ``ImageOrientationPatient``'s normal), falling back to ``InstanceNumber``; the
spacing between slices comes from the positions, never ``SliceThickness``.

Functional groups (enhanced multi-frame) are honoured: per-frame, then shared, then
top-level, then (NM) ``DetectorInformationSequence`` values.

Reference: DICOM PS3.3 C.7.6.2 (Image Plane), C.7.6.16 (Multi-frame Functional Groups).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.datadict
import pydicom.multival
import pydicom.sequence
import pydicom.tag
import pydicom.uid
import pydicom.valuerep

from medrestore.core.errors import InputError
from medrestore.core.image import affine_from_spacing
from medrestore.io.common import MODALITY_FROM_DICOM, DecodedImage, library_errors, modality_from_dicom, rgb_to_luminance  # noqa: F401 (re-exported)
from medrestore.io.dicom_payload import PIXEL_KEYWORDS, open_dataset_source
from medrestore.io.dicom_geometry import PlaneGeometry, plane_affine, plane_from_tags, stack_affine, stack_by_position
from medrestore.io.dicom_mosaic import mosaic_count, mosaic_grid, mosaic_origin_and_normal, unmosaic


METADATA_KEYWORDS = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
    "ReferringPhysicianName", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "SeriesDate",
    "SeriesTime", "Modality", "FrameOfReferenceUID", "SOPClassUID", "BodyPartExamined", "ProtocolName",
    "Manufacturer", "ManufacturerModelName", "InstitutionName", "MagneticFieldStrength", "RepetitionTime",
    "EchoTime", "InversionTime", "FlipAngle", "SequenceName", "KVP", "ConvolutionKernel",
    "SliceThickness", "SpacingBetweenSlices", "PixelSpacing", "RescaleSlope", "RescaleIntercept",
    "RescaleType", "WindowCenter", "WindowWidth", "Units", "ImageType", "PhotometricInterpretation",
    "BitsStored", "Rows", "Columns", "NumberOfFrames", "ActualFrameDuration", "SpecificCharacterSet",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTrainLength",
    "EchoNumbers", "ImagingFrequency", "ImagedNucleus", "NumberOfTemporalPositions", "AcquisitionNumber",
    "PatientPosition", "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
    "Laterality", "IrradiationEventUID", "ApplicableSafetyStandardAgency",
)  # fmt: skip

# Nuclear-medicine multi-frame, isotope and detector attributes (PS3.3 C.8.4.8-C.8.4.12) a writer
# needs to keep an NM object's frame layout; sequences become lists of plain dictionaries.
NM_KEYWORDS = (
    "FrameIncrementPointer", "EnergyWindowVector", "NumberOfEnergyWindows", "DetectorVector",
    "NumberOfDetectors", "PhaseVector", "NumberOfPhases", "RotationVector", "NumberOfRotations",
    "RRIntervalVector", "NumberOfRRIntervals", "TimeSlotVector", "NumberOfTimeSlots", "SliceVector",
    "NumberOfSlices", "AngularViewVector", "TimeSliceVector", "NumberOfTimeSlices",
    "EnergyWindowInformationSequence", "RadiopharmaceuticalInformationSequence",
    "DetectorInformationSequence", "RotationInformationSequence", "TypeOfDetectorMotion",
    "PatientOrientationCodeSequence", "PatientGantryRelationshipCodeSequence", "CountsAccumulated",
    "CorrectedImage",
)  # fmt: skip

# Functional-group macro holding each keyword (PS3.3 C.7.6.16.2).
_MACRO = {
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "ImagePositionPatient": "PlanePositionSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "SpacingBetweenSlices": "PixelMeasuresSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
    "RescaleType": "PixelValueTransformationSequence",
}


def _plain(value: Any) -> Any:
    """A tag value as JSON-friendly str/int/float/list/dict (``None`` for binary data).

    A sequence becomes a list of dictionaries keyword → plain value (private and unknown
    elements left out); an attribute tag (``AT``) becomes its keyword.
    """
    if isinstance(value, pydicom.sequence.Sequence):
        return [_plain_item(item) for item in value]
    if value is None or isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, pydicom.tag.BaseTag):
        return pydicom.datadict.keyword_for_tag(value) or str(value)
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, pydicom.valuerep.IS | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, pydicom.valuerep.DSfloat | float):
        return float(value)
    return str(value)


def _plain_item(item: pydicom.Dataset) -> dict[str, Any]:
    """One sequence item as keyword → plain value (private, unknown and empty elements left out)."""
    plain: dict[str, Any] = {}
    for element in item:
        if element.tag.is_private or not element.keyword:
            continue
        value = _plain(element.value)
        if value not in (None, "", []):
            plain[element.keyword] = value
    return plain


def dicom_summary(dataset: pydicom.Dataset) -> dict[str, Any]:
    """Identifiers, acquisition tags and NM frame attributes of ``dataset`` as plain JSON
    values (absent tags omitted); ``FrameIncrementPointer`` is a list of keywords."""
    summary: dict[str, Any] = {}
    for keyword in NM_KEYWORDS if str(dataset.get("Modality", "")).upper() in ("NM", "PT") else ():
        value = dataset.get(keyword)
        plain = None if value is None else _plain(value)
        if plain not in (None, "", []):
            summary[keyword] = plain if keyword != "FrameIncrementPointer" or isinstance(plain, list) else [plain]
    for keyword in METADATA_KEYWORDS:
        value = frame_value(dataset, keyword, None)
        plain = None if value is None else _plain(value)
        if plain not in (None, "", []):
            summary[keyword] = plain
    return summary


def _macro_value(item: pydicom.Dataset, macro: str, keyword: str) -> Any:
    inner = item.get(macro)
    if inner and keyword in inner[0] and inner[0][keyword].value not in (None, ""):
        return inner[0][keyword].value
    return None


def frame_value(dataset: pydicom.Dataset, keyword: str, frame: int | None) -> Any:
    """Value of ``keyword`` for ``frame``: per-frame group, shared group, top level, detector info."""
    macro = _MACRO.get(keyword)
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if macro and frame is not None and per_frame and frame < len(per_frame):
        value = _macro_value(per_frame[frame], macro, keyword)
        if value is not None:
            return value
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if macro and shared:
        value = _macro_value(shared[0], macro, keyword)
        if value is not None:
            return value
    if keyword in dataset and dataset[keyword].value not in (None, ""):
        return dataset[keyword].value
    detector = dataset.get("DetectorInformationSequence")
    if detector and keyword in detector[0] and detector[0][keyword].value not in (None, ""):
        return detector[0][keyword].value
    return None


def number_of(dataset: pydicom.Dataset, keyword: str, frame: int | None, default: float) -> float:
    """First number of :func:`frame_value` (``default`` when absent, unparsable or not finite)."""
    value = frame_value(dataset, keyword, frame)
    try:
        number = float(value[0] if isinstance(value, pydicom.multival.MultiValue | list) else value)
    except (TypeError, ValueError, IndexError):
        return default
    return number if np.isfinite(number) else default


def parse_dataset(path: Path, keywords: Sequence[str] | None = None) -> pydicom.Dataset:
    """Parse one DICOM file with its pixel data (``force`` for preamble-less files).

    A gzip-compressed file is decompressed in memory (:mod:`medrestore.io.dicom_payload`).
    ``keywords`` limits parsing to those elements (pydicom ``specific_tags``), which halves
    the time per file for long series with large private headers.
    """
    with library_errors(path, "read DICOM"):
        source, has_preamble = open_dataset_source(path)
        dataset = pydicom.dcmread(source, force=not has_preamble, specific_tags=keywords)
        _set_missing_transfer_syntax(dataset)
        return dataset


def _set_missing_transfer_syntax(dataset: pydicom.Dataset) -> None:
    """A preamble-less file may lack file meta; record the encoding pydicom parsed (in memory)."""
    if "TransferSyntaxUID" in dataset.file_meta:
        return
    implicit, little = dataset.original_encoding
    if implicit:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    elif little:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    else:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian


def has_pixels(dataset: pydicom.Dataset) -> bool:
    """Whether the data set carries an image (integer or float pixel data)."""
    return any(keyword in dataset for keyword in PIXEL_KEYWORDS)


def read_dataset(path: Path) -> pydicom.Dataset:
    """:func:`parse_dataset`, refusing files without pixel data."""
    dataset = parse_dataset(path)
    if not has_pixels(dataset):
        sop_class = getattr(dataset.get("SOPClassUID"), "name", dataset.get("SOPClassUID", "unknown"))
        raise InputError(path, f"DICOM file holds no pixel data (SOP class {sop_class})")
    return dataset


def decode_pixels(path: Path, dataset: pydicom.Dataset) -> tuple[np.ndarray, np.dtype, dict[str, Any]]:
    """Stored values ``(frames?, rows, cols)`` (colour → luma), their dtype, and notes."""
    with library_errors(path, "decode DICOM pixel data"):
        array = np.asarray(dataset.pixel_array)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    notes: dict[str, Any] = {}
    if samples > 1:
        notes["converted_from"] = str(dataset.get("PhotometricInterpretation", "RGB"))
        return rgb_to_luminance(array), array.dtype, notes
    return array, array.dtype, notes


def plane_of(path: Path, dataset: pydicom.Dataset, frame: int | None) -> tuple[PlaneGeometry, bool]:
    """In-plane geometry and whether the file gives a patient orientation."""
    spacing = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        spacing = frame_value(dataset, keyword, frame)
        if spacing is not None and _usable_spacing(spacing):
            break
        spacing = None  # absent, or a zero placeholder some devices write for "unknown": try the next
    spacing = [1.0, 1.0] if spacing is None else list(spacing)
    orientation = frame_value(dataset, "ImageOrientationPatient", frame)
    return plane_from_tags(path, None if orientation is None else list(orientation), spacing), orientation is not None


def _usable_spacing(value: Any) -> bool:
    """Two positive finite numbers (radiographs sometimes store zeros for "unknown")."""
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return False
    return len(numbers) == 2 and all(np.isfinite(n) and n > 0 for n in numbers)


def position_of(dataset: pydicom.Dataset, frame: int | None) -> np.ndarray | None:
    """``ImagePositionPatient`` (LPS mm) of ``frame``, or ``None``."""
    value = frame_value(dataset, "ImagePositionPatient", frame)
    if value is None or len(value) != 3:
        return None
    return np.asarray([float(v) for v in value], dtype=np.float64)


def slice_spacing_of(dataset: pydicom.Dataset) -> float:
    """Fallback slice distance: SpacingBetweenSlices, else SliceThickness, else 1 mm."""
    spacing = abs(number_of(dataset, "SpacingBetweenSlices", None, 0.0))
    return spacing or abs(number_of(dataset, "SliceThickness", None, 0.0)) or 1.0


def rescale(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """``stored · slope + intercept`` per leading index (raw values when the map is identity)."""
    if np.all(slopes == 1.0) and np.all(intercepts == 0.0):
        return stored
    shape = (-1,) + (1,) * (stored.ndim - 1)
    slope_column = slopes.astype(np.float32).reshape(shape)
    intercept_column = intercepts.astype(np.float32).reshape(shape)
    return stored.astype(np.float32) * slope_column + intercept_column


def diagonal_affine(plane: PlaneGeometry, slice_spacing: float, ndim: int) -> np.ndarray:
    """Affine without patient orientation: ``diag(row, col, slice)`` (2-D) or ``diag(slice, row, col)``."""
    if ndim == 2:
        return affine_from_spacing((plane.row_spacing, plane.column_spacing, slice_spacing))
    return affine_from_spacing((slice_spacing, plane.row_spacing, plane.column_spacing))


def _single_frame(path: Path, dataset: pydicom.Dataset, stored: np.ndarray, notes: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, affine)`` of a one-frame file (a Siemens mosaic: its volume, :mod:`medrestore.io.dicom_mosaic`;
    ``notes`` gets why a mosaic was read as stored)."""
    plane, oriented = plane_of(path, dataset, None)
    slope = number_of(dataset, "RescaleSlope", None, 1.0)
    intercept = number_of(dataset, "RescaleIntercept", None, 0.0)
    values = rescale(stored[np.newaxis], np.asarray([slope]), np.asarray([intercept]))[0]
    thickness = slice_spacing_of(dataset)
    count = mosaic_count(dataset)
    if count is not None and oriented:
        grid = mosaic_grid(count, values.shape)
        if grid is not None:
            origin, normal = mosaic_origin_and_normal(path, dataset)
            return unmosaic(values, grid, count), stack_affine(plane, origin, normal * thickness)
        notes["dicom_mosaic"] = f"ImageType MOSAIC with {count} slices, but {values.shape[0]}×{values.shape[1]} is not a grid of tiles: read as stored"
    if not oriented:
        return values, diagonal_affine(plane, thickness, 2)
    position = position_of(dataset, None)
    return values, plane_affine(plane, np.zeros(3) if position is None else position, thickness)


def _multi_frame(path: Path, dataset: pydicom.Dataset, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values, affine)`` of a multi-frame file: frames stacked by position when known."""
    n_frames = stored.shape[0]
    slopes = np.asarray([number_of(dataset, "RescaleSlope", k, 1.0) for k in range(n_frames)])
    intercepts = np.asarray([number_of(dataset, "RescaleIntercept", k, 0.0) for k in range(n_frames)])
    values = rescale(stored, slopes, intercepts)
    plane, oriented = plane_of(path, dataset, 0)
    if not oriented:
        return values, diagonal_affine(plane, slice_spacing_of(dataset), 3)
    positions = [position_of(dataset, k) for k in range(n_frames)]
    per_frame = "PerFrameFunctionalGroupsSequence" in dataset and all(p is not None for p in positions)
    if not per_frame:
        origin = positions[0] if positions[0] is not None else np.zeros(3)
        return values, stack_affine(plane, origin, plane.normal * slice_spacing_of(dataset))
    names = [f"frame {k + 1}" for k in range(n_frames)]
    stack = stack_by_position(path, np.stack(positions), plane.normal, names)
    step = stack.slice_step if stack.slice_step is not None else plane.normal * slice_spacing_of(dataset)
    arranged = values[stack.order]  # (P, T, rows, cols)
    arranged = arranged[:, 0] if arranged.shape[1] == 1 else np.moveaxis(arranged, 1, -1)
    return arranged, stack_affine(plane, stack.first_position, step)


def read_dicom_file(path: str | Path) -> DecodedImage:
    """Read one DICOM file: 2-D, or 3-D for ``NumberOfFrames > 1`` (enhanced, legacy, NM)."""
    path = Path(path)
    dataset = read_dataset(path)
    stored, source_dtype, notes = decode_pixels(path, dataset)
    n_frames = int(number_of(dataset, "NumberOfFrames", None, 1.0))
    if not (n_frames > 1 and stored.ndim == 3) and stored.size != stored.shape[-1] * stored.shape[-2]:
        raise InputError(
            path, f"pixel data holds {stored.size // (stored.shape[-1] * stored.shape[-2])} frames of "
            f"{stored.shape[-2]}x{stored.shape[-1]} but NumberOfFrames says {n_frames}; the header is inconsistent"
        )
    with library_errors(path, "read DICOM geometry"):
        if n_frames > 1 and stored.ndim == 3:
            values, affine = _multi_frame(path, dataset, stored)
        else:
            values, affine = _single_frame(path, dataset, stored.reshape(stored.shape[-2:]), notes)
        summary = dicom_summary(dataset)
    spatial_ndim = 2 if values.ndim == 2 else 3
    metadata = {
        "dicom": summary,
        "dicom_slice_spacing": float(np.linalg.norm(affine[:3, 0 if spatial_ndim == 3 else 2])),
        "dicom_patient_geometry": plane_of(path, dataset, 0)[1],
        **({"dicom_mosaic_slices": values.shape[0]} if spatial_ndim == 3 and n_frames == 1 else {}),
        **notes,
    }
    return DecodedImage(
        values, affine, spatial_ndim, source_dtype, modality_from_dicom(summary.get("Modality")), metadata
    )
