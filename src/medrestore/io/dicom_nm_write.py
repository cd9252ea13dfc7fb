"""Nuclear Medicine Image objects (PS3.3 A.5): one multi-frame file, frames as the source had them.

The frame layout is told by ``ImageType`` value 3 and the ``FrameIncrementPointer``
(C.8.4.8.1.1, C.8.4.9): the vectors it names give each frame's energy window, detector,
rotation, slice... A written image keeps the source's type and vectors when it has the same
number of frames (a restored planar or energy-window image, a restored reconstruction);
otherwise a single plane is ``STATIC`` and a stack of planes ``RECON TOMO`` (frames are
slices, ``SliceVector`` 1…N). Isotope, detector, rotation and patient-orientation sequences
are copied from the source (type 2: empty when unknown); the detector item carries the
written orientation and first-frame position (C.8.4.11), left empty when the source had no
patient geometry, so the reader keeps the frame layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydicom.tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import format_number_as_ds

from medrestore.io.dicom_encode import copy_elements, ds_list, rescale_attributes
from medrestore.io.dicom_iod import WriteContext, slice_thickness

# Frame Increment Pointer of each NM image type (PS3.3 C.8.4.8.1.1 / C.8.4.9.1.1).
FRAME_VECTORS = {
    "STATIC": ("EnergyWindowVector", "DetectorVector"),
    "WHOLE BODY": ("EnergyWindowVector", "DetectorVector"),
    "DYNAMIC": ("EnergyWindowVector", "DetectorVector", "PhaseVector", "TimeSliceVector"),
    "GATED": ("EnergyWindowVector", "DetectorVector", "RRIntervalVector", "TimeSlotVector"),
    "TOMO": ("EnergyWindowVector", "DetectorVector", "RotationVector", "AngularViewVector"),
    "GATED TOMO": (
        "EnergyWindowVector", "DetectorVector", "RotationVector", "RRIntervalVector", "TimeSlotVector",
        "AngularViewVector",
    ),
    "RECON TOMO": ("SliceVector",),
    "RECON GATED TOMO": ("RRIntervalVector", "TimeSlotVector", "SliceVector"),
}  # fmt: skip
VECTOR_COUNTS = {
    "EnergyWindowVector": "NumberOfEnergyWindows", "DetectorVector": "NumberOfDetectors",
    "PhaseVector": "NumberOfPhases", "RotationVector": "NumberOfRotations",
    "RRIntervalVector": "NumberOfRRIntervals", "TimeSlotVector": "NumberOfTimeSlots",
    "SliceVector": "NumberOfSlices", "TimeSliceVector": "NumberOfTimeSlices",
}  # fmt: skip
COPIED_SEQUENCES = (
    "EnergyWindowInformationSequence", "RadiopharmaceuticalInformationSequence",
    "PatientOrientationCodeSequence", "PatientGantryRelationshipCodeSequence",
)  # fmt: skip


def dataset_from_plain(values: Mapping[str, Any]) -> Dataset:
    """A sequence item from its plain-value summary (lists of dictionaries are sequences)."""
    item = Dataset()
    for keyword, value in values.items():
        if isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
            setattr(item, keyword, DicomSequence([dataset_from_plain(entry) for entry in value]))
        else:
            setattr(item, keyword, value)
    return item


def _sequence(source: Mapping[str, Any], keyword: str) -> DicomSequence:
    entries = source.get(keyword) or []
    return DicomSequence([dataset_from_plain(entry) for entry in entries if isinstance(entry, dict)])


def frame_layout(source: Mapping[str, Any], n_frames: int) -> tuple[str, dict[str, list[int]]]:
    """``(ImageType value 3, {vector keyword: values})`` for ``n_frames`` written frames."""
    image_type = source.get("ImageType") or []
    kind = str(image_type[2]).upper() if len(image_type) > 2 else ""
    vectors = {keyword: source.get(keyword) for keyword in FRAME_VECTORS.get(kind, ())}
    if vectors and all(isinstance(value, list) and len(value) == n_frames for value in vectors.values()):
        return kind, {keyword: [int(v) for v in value] for keyword, value in vectors.items()}
    if n_frames == 1:
        return "STATIC", {"EnergyWindowVector": [1], "DetectorVector": [1]}
    return "RECON TOMO", {"SliceVector": list(range(1, n_frames + 1))}


def _set_multi_frame_module(dataset: Dataset, context: WriteContext, vectors: dict[str, list[int]]) -> None:
    """NM Multi-frame module (C.8.4.9): pointer, vectors and their counts."""
    dataset.NumberOfFrames = len(context.values)
    dataset.FrameIncrementPointer = [pydicom.tag.Tag(keyword) for keyword in vectors]
    for keyword, values in vectors.items():
        setattr(dataset, keyword, values)
        count = VECTOR_COUNTS.get(keyword)
        if count is not None:
            setattr(dataset, count, int(context.source.get(count) or max(values)))
    dataset.NumberOfEnergyWindows = int(context.source.get("NumberOfEnergyWindows") or 1)
    dataset.NumberOfDetectors = int(context.source.get("NumberOfDetectors") or 1)


def _detector_items(context: WriteContext) -> DicomSequence:
    """Detector Information Sequence (C.8.4.11) with the written orientation and position."""
    items = list(_sequence(context.source, "DetectorInformationSequence")) or [Dataset()]
    geometry = context.geometry
    for item in items:
        for keyword in ("CollimatorType", "FocalDistance"):  # type 2
            if keyword not in item:
                setattr(item, keyword, "")
        item.ImageOrientationPatient = ds_list(geometry.orientation) if geometry is not None else ""
        item.ImagePositionPatient = ds_list(geometry.positions[0]) if geometry is not None else ""
    return DicomSequence(items)


def set_nm_modules(dataset: Dataset, context: WriteContext) -> None:
    """Fill ``dataset`` (identity already set) as an NM Image (PS3.3 A.5.3)."""
    kind, vectors = frame_layout(context.source, len(context.values))
    image_type = context.source.get("ImageType") or []
    emission = str(image_type[3]).upper() if len(image_type) > 3 else "EMISSION"
    value4 = emission if emission in ("EMISSION", "TRANSMISSION") else "EMISSION"
    dataset.ImageType = ["DERIVED", "PRIMARY", kind, value4]  # value 2 is PRIMARY for NM (C.8.4.8.1.1)
    _set_multi_frame_module(dataset, context, vectors)
    for keyword in COPIED_SEQUENCES:
        setattr(dataset, keyword, _sequence(context.source, keyword))
    dataset.DetectorInformationSequence = _detector_items(context)
    dataset.CountsAccumulated = context.source.get("CountsAccumulated", "")
    for keyword in ("ActualFrameDuration", "CorrectedImage"):
        if context.source.get(keyword) not in (None, ""):
            setattr(dataset, keyword, context.source[keyword])
    dataset.PixelSpacing = ds_list(context.spacing[1:3])
    if "TOMO" in kind:  # NM TOMO Acquisition (C.8.4.12)
        dataset.NumberOfRotations = int(context.source.get("NumberOfRotations") or 1)
        dataset.RotationInformationSequence = _sequence(context.source, "RotationInformationSequence")
        if context.source.get("TypeOfDetectorMotion"):
            dataset.TypeOfDetectorMotion = context.source["TypeOfDetectorMotion"]
    if kind.startswith("RECON"):  # NM Reconstruction (C.8.4.14)
        thickness = slice_thickness(context) if context.geometry is not None else context.spacing[0]
        dataset.SpacingBetweenSlices = format_number_as_ds(context.spacing[0])
        dataset.SliceThickness = format_number_as_ds(thickness)
    dataset.AcquisitionContextSequence = DicomSequence([])
    if context.encoded.slope != 1.0 or context.encoded.intercept != 0.0:
        rescale = rescale_attributes(context.encoded, "US")
        del rescale.RescaleType
        copy_elements(dataset, rescale)
