"""DICOM writing: a derived Secondary Capture object per plane, or one multi-frame file.

* ``path`` ending in ``.dcm`` → one file: a 2-D image as single-frame Secondary Capture, a
  3-D image as Multi-frame Grayscale Byte/Word Secondary Capture whose frames carry their
  positions (``PerFrameFunctionalGroupsSequence`` → ``PlanePositionSequence``, plus
  ``SliceLocationVector``).
* otherwise → a series folder of single-frame files ``0001.dcm``, ``0002.dcm``... written
  into a temporary folder beside the destination and renamed into place.

Identity: patient and study attributes are copied from ``metadata["dicom"]`` when present;
the series and every instance get new UIDs (``pydicom.uid.generate_uid``); ``ImageType`` is
``DERIVED\\SECONDARY``; ``SeriesDescription`` is ``"<original> (medrestore)"``.

Geometry: a 3-D image is permuted so that the slice axis comes first
(:func:`~medrestore.io.dicom_geometry.choose_slice_axis`); ``ImageOrientationPatient``,
``ImagePositionPatient`` (per slice), ``PixelSpacing``, ``SliceThickness`` and
``SpacingBetweenSlices`` are derived from the RAS+ affine converted to LPS.

Pixels: stored as uint8/int16/uint16. Integer-valued data that fit are stored exactly with
slope 1, intercept 0; anything else is mapped linearly onto the full integer range,
``stored = round((x − intercept) / slope)``, so the error is at most ``slope / 2`` =
``(max − min) / (2 · 65535)`` for 16 bits.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.tag
import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import format_number_as_ds

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path
from medrestore.core.image import Image
from medrestore.io.common import image_values, library_errors, resolve_write_dtype
from medrestore.io.dicom_geometry import LPS_TO_RAS, ORTHOGONALITY_TOLERANCE, choose_slice_axis

DICOM_FROM_MODALITY = {"mri": "MR", "ct": "CT", "nm": "NM", "oct": "OPT", "photo": "XC", "unknown": "OT"}
STORAGE_DTYPES = ("uint8", "int16", "uint16")
PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
    "ReferringPhysicianName", "BodyPartExamined",
)  # fmt: skip
# Type-2 attributes of the Patient and General Study modules: present, empty when unknown.
TYPE2_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "AccessionNumber",
    "ReferringPhysicianName",
)  # fmt: skip
_SERIES_FILE = re.compile(r"\d{4,}\.dcm")


@dataclasses.dataclass(frozen=True)
class EncodedPixels:
    """Integer pixels with the linear map back to real values: ``x = stored · slope + intercept``."""

    stored: np.ndarray
    slope: float
    intercept: float


def _ds(value: float) -> float:
    """``value`` as it will read back from a 16-character DS string."""
    return float(format_number_as_ds(float(value)))


def _requested_storage(path: Path, image: Image, dtype: str | np.dtype | None) -> np.dtype | None:
    """The requested storage type; ``None`` (automatic) for no request, a float request, or a
    ``"source"`` type DICOM cannot store."""
    if dtype is None:
        return None
    requested = resolve_write_dtype(path, image, dtype, np.dtype(np.uint16))
    if requested.name in STORAGE_DTYPES:
        return requested
    if requested.kind == "f" or (isinstance(dtype, str) and dtype == "source"):
        return None
    raise InputError(path, f"DICOM writer stores {', '.join(STORAGE_DTYPES)} pixels, not {requested}")


def encode_pixels(path: Path, image: Image, values: np.ndarray, dtype: str | np.dtype | None) -> EncodedPixels:
    """Choose the storage type and rescale (see the module docstring) for ``values``."""
    if not np.all(np.isfinite(values)):
        raise InputError(path, "image holds NaN or infinite values, which DICOM integer pixels cannot store")
    low, high = float(values.min()), float(values.max())
    integer_valued = bool(np.array_equal(values, np.rint(values)))
    target = _requested_storage(path, image, dtype)
    if target is None:  # signed only when needed and exact; otherwise the full uint16 range
        signed = integer_valued and -32768 <= low < 0 and high <= 32767
        target = np.dtype(np.int16 if signed else np.uint16)
    info = np.iinfo(target)
    if integer_valued and low >= info.min and high <= info.max:
        return EncodedPixels(values.astype(target), 1.0, 0.0)
    slope = _ds((high - low) / (float(info.max) - float(info.min))) if high > low else 1.0
    intercept = _ds(low - float(info.min) * slope)
    stored = np.clip(np.rint((values.astype(np.float64) - intercept) / slope), info.min, info.max)
    return EncodedPixels(stored.astype(target), slope, intercept)


def _copy_identity(dataset: Dataset, source: Mapping[str, Any]) -> None:
    """Patient/study attributes from ``metadata["dicom"]`` (type-2 ones empty when unknown)."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        value = source.get(keyword)
        if value is not None:
            setattr(dataset, keyword, [str(v) for v in value] if isinstance(value, list) else str(value))
        elif keyword in TYPE2_KEYWORDS:
            setattr(dataset, keyword, "")
    if "StudyInstanceUID" not in dataset:
        dataset.StudyInstanceUID = pydicom.uid.generate_uid()


@dataclasses.dataclass(frozen=True)
class SeriesIdentity:
    """What every file of one written series shares."""

    series_uid: str
    frame_of_reference_uid: str
    modality: str
    series_number: int
    series_description: str
    timestamp: datetime.datetime


def new_series_identity(image: Image) -> SeriesIdentity:
    source = image.metadata.get("dicom") or {}
    original = str(source.get("SeriesDescription", "")).strip()
    try:
        series_number = int(source.get("SeriesNumber", 0)) + 1000
    except (TypeError, ValueError):
        series_number = 1000
    return SeriesIdentity(
        series_uid=pydicom.uid.generate_uid(),
        frame_of_reference_uid=str(source.get("FrameOfReferenceUID") or pydicom.uid.generate_uid()),
        modality=str(source.get("Modality") or DICOM_FROM_MODALITY.get(image.modality, "OT")),
        series_number=series_number,
        series_description=(f"{original} (medrestore)" if original else "medrestore")[:64],
        timestamp=datetime.datetime.now(),
    )


def _base_dataset(image: Image, identity: SeriesIdentity, sop_class: str, instance: int) -> Dataset:
    """Identity, series and equipment attributes of one new instance."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    _copy_identity(dataset, image.metadata.get("dicom") or {})
    date, time = identity.timestamp.strftime("%Y%m%d"), identity.timestamp.strftime("%H%M%S")
    dataset.ContentDate, dataset.ContentTime = date, time
    dataset.InstanceCreationDate, dataset.InstanceCreationTime = date, time
    dataset.SeriesDate, dataset.SeriesTime = date, time
    dataset.StudyDate = dataset.get("StudyDate") or date
    dataset.StudyTime = dataset.get("StudyTime") or time
    dataset.Modality = identity.modality
    dataset.SeriesInstanceUID = identity.series_uid
    dataset.SeriesNumber = identity.series_number
    dataset.SeriesDescription = identity.series_description
    dataset.FrameOfReferenceUID = identity.frame_of_reference_uid
    dataset.PositionReferenceIndicator = ""
    dataset.ConversionType = "WSD"
    dataset.SecondaryCaptureDeviceManufacturer = "medrestore"
    dataset.DerivationDescription = "Restored with medrestore"
    dataset.InstanceNumber = instance
    dataset.PatientOrientation = ""
    return dataset


def _set_pixel_module(dataset: Dataset, encoded: EncodedPixels, rows: int, columns: int) -> None:
    bits = encoded.stored.dtype.itemsize * 8
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = bits, bits, bits - 1
    dataset.PixelRepresentation = 1 if encoded.stored.dtype.kind == "i" else 0
    dataset.RescaleSlope = format_number_as_ds(encoded.slope)
    dataset.RescaleIntercept = format_number_as_ds(encoded.intercept)
    dataset.RescaleType = "US"
    real = encoded.stored.astype(np.float64) * encoded.slope + encoded.intercept
    low, high = float(real.min()), float(real.max())
    dataset.WindowCenter = format_number_as_ds((low + high) / 2)
    dataset.WindowWidth = format_number_as_ds(max(high - low, 1.0))
    payload = encoded.stored.astype(encoded.stored.dtype.newbyteorder("<")).tobytes()
    dataset.PixelData = payload + (b"\x00" if len(payload) % 2 else b"")


@dataclasses.dataclass(frozen=True)
class StackGeometry:
    """LPS geometry of ``(slices, rows, cols)``: unit cosines, spacings, slice positions."""

    orientation: list[float]
    pixel_spacing: list[float]
    positions: np.ndarray  # (slices, 3)
    normal: np.ndarray
    slice_spacing: float


def stack_geometry(path: Path, affine: np.ndarray, n_slices: int) -> StackGeometry:
    """Geometry of a slices-first affine (column 0: slice step, 1: rows, 2: columns)."""
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


def _ds_list(values: Any) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def _set_plane_module(dataset: Dataset, geometry: StackGeometry, index: int) -> None:
    dataset.ImageOrientationPatient = _ds_list(geometry.orientation)
    dataset.ImagePositionPatient = _ds_list(geometry.positions[index])
    dataset.PixelSpacing = _ds_list(geometry.pixel_spacing)
    dataset.SliceThickness = format_number_as_ds(geometry.slice_spacing)
    dataset.SpacingBetweenSlices = format_number_as_ds(geometry.slice_spacing)
    dataset.SliceLocation = format_number_as_ds(float(geometry.positions[index] @ geometry.normal))


def slices_first(path: Path, image: Image) -> Image:
    """A spatial-only 3-D view ``(slices, rows, cols)``; 2-D images get one leading slice axis.

    Only axes are permuted (never reversed): the slice axis first, then the in-plane axes in
    the order that makes the slice step point along ``row_cosine × column_cosine``, so the
    slice order survives a read back. Images read from DICOM keep their order.
    """
    if image.data.ndim > image.spatial_ndim:
        if image.n_frames != 1:
            raise InputError(
                path, f"DICOM writer takes 2-D or 3-D images without a time axis (shape {image.shape}); write NIfTI"
            )
        image = image.frame(0)
    if image.spatial_ndim == 2:
        affine = np.asarray(image.affine, dtype=np.float64)
        volume_affine = np.eye(4)
        volume_affine[:, 0], volume_affine[:, 1:3], volume_affine[:, 3] = affine[:, 2], affine[:, 0:2], affine[:, 3]
        return Image(image.data[np.newaxis], volume_affine, 3, image.modality, image.metadata)
    from_dicom = str(image.metadata.get("format", "")).startswith("dicom")
    slice_dim = ((image.metadata.get("nifti") or {}).get("dim_info") or [None, None, None])[2]
    axis = choose_slice_axis(path, image, 0 if from_dicom else slice_dim)
    first, second = (a for a in range(3) if a != axis)
    # Readers sort slices along IOP's normal X × Y; keep the slice order by making the
    # stack run along +normal, i.e. det < 0 for the RAS columns [step, rows, cols].
    order = [axis, first, second]
    if np.linalg.det(np.asarray(image.affine)[:3, order]) > 0:
        order = [axis, second, first]
    return image if order == [0, 1, 2] else image.permute(order)


def _series_datasets(path: Path, image: Image, dtype: str | np.dtype | None) -> list[Dataset]:
    """One single-frame Secondary Capture data set per slice."""
    volume = slices_first(path, image)
    values = image_values(volume)
    geometry = stack_geometry(path, volume.affine, values.shape[0])
    identity = new_series_identity(image)
    encoded = encode_pixels(path, image, values, dtype)
    datasets = []
    for index in range(values.shape[0]):
        dataset = _base_dataset(image, identity, pydicom.uid.SecondaryCaptureImageStorage, index + 1)
        _set_plane_module(dataset, geometry, index)
        _set_pixel_module(dataset, dataclasses.replace(encoded, stored=encoded.stored[index]), *values.shape[1:])
        datasets.append(dataset)
    return datasets


def _multi_frame_dataset(path: Path, image: Image, dtype: str | np.dtype | None) -> Dataset:
    """One multi-frame Secondary Capture with per-frame positions."""
    volume = slices_first(path, image)
    values = image_values(volume)
    geometry = stack_geometry(path, volume.affine, values.shape[0])
    encoded = encode_pixels(path, image, values, dtype)
    sop_class = (
        pydicom.uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
        if encoded.stored.itemsize == 1
        else pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    )
    dataset = _base_dataset(image, new_series_identity(image), sop_class, 1)
    _set_plane_module(dataset, geometry, 0)
    dataset.NumberOfFrames = values.shape[0]
    dataset.FrameIncrementPointer = pydicom.tag.Tag("SliceLocationVector")
    dataset.SliceLocationVector = _ds_list(geometry.positions @ geometry.normal)
    shared = Dataset()
    shared.PlaneOrientationSequence = DicomSequence([Dataset()])
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = dataset.ImageOrientationPatient
    shared.PixelMeasuresSequence = DicomSequence([Dataset()])
    measures = shared.PixelMeasuresSequence[0]
    measures.PixelSpacing, measures.SliceThickness = dataset.PixelSpacing, dataset.SliceThickness
    measures.SpacingBetweenSlices = dataset.SpacingBetweenSlices
    dataset.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for position in geometry.positions:
        item = Dataset()
        item.PlanePositionSequence = DicomSequence([Dataset()])
        item.PlanePositionSequence[0].ImagePositionPatient = _ds_list(position)
        frames.append(item)
    dataset.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    _set_pixel_module(dataset, encoded, *values.shape[1:])
    return dataset


def write_dicom_file(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write one ``.dcm`` file: single-frame for 2-D, multi-frame for 3-D."""
    path = Path(path)
    with library_errors(path, "write DICOM"):
        if image.spatial_ndim == 2:
            dataset = _series_datasets(path, image, dtype)[0]
        else:
            dataset = _multi_frame_dataset(path, image, dtype)
        with atomic_path(path, suffix=".dcm") as temporary:
            dataset.save_as(temporary, enforce_file_format=True)
    return path


def _replaceable(folder: Path) -> bool:
    """An existing folder may be replaced only when it is empty or holds a series we wrote."""
    return all(entry.is_file() and _SERIES_FILE.fullmatch(entry.name) for entry in folder.iterdir())


def _publish_folder(temporary: Path, destination: Path) -> None:
    """Rename ``temporary`` onto ``destination``, swapping out a previous series folder."""
    if not destination.exists():
        os.replace(temporary, destination)
        return
    backup = destination.with_name(f".{destination.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(destination, backup)
    try:
        os.replace(temporary, destination)
    except BaseException:
        os.replace(backup, destination)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def write_dicom_series(image: Image, path: str | Path, dtype: str | np.dtype | None = None) -> Path:
    """Write a series folder of single-frame files ``0001.dcm``... (atomically)."""
    destination = Path(path)
    if destination.exists() and (not destination.is_dir() or not _replaceable(destination)):
        raise InputError(
            destination, "exists and is not an empty folder or a previous DICOM series; choose a new folder"
        )
    with library_errors(destination, "write DICOM series"):
        datasets = _series_datasets(destination, image, dtype)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.tmp"
        temporary.mkdir()  # unlike mkdtemp, honours the umask (mkdtemp makes it private)
        try:
            width = max(4, len(str(len(datasets))))
            for index, dataset in enumerate(datasets, start=1):
                dataset.save_as(temporary / f"{index:0{width}d}.dcm", enforce_file_format=True)
            _publish_folder(temporary, destination)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return destination
