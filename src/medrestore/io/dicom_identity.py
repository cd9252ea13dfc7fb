"""Identity of a written DICOM object: patient, study, series, equipment and SOP attributes.

Patient and study attributes are copied from the source (``metadata["dicom"]``), type-2
ones empty when unknown (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study); the series gets a new
``SeriesInstanceUID`` and ``SeriesNumber`` (source + 1000), keeps the source's frame of
reference, and every instance a new ``SOPInstanceUID`` (C.7.3.1 General Series, C.12.1 SOP
Common).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset

from medrestore.core.image import Image
from medrestore.io.dicom_iod import EQUIPMENT, SeriesIdentity, WriteContext, modality_code, set_derivation, set_equipment

PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
    "ReferringPhysicianName", "BodyPartExamined", "Laterality",
)  # fmt: skip
# Type-2 attributes of the Patient and General Study modules: present, empty when unknown.
TYPE2_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "AccessionNumber",
    "ReferringPhysicianName",
)  # fmt: skip
_DATE = re.compile(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")


def _valid(keyword: str, value: str) -> bool:
    """Dates must be real ``YYYYMMDD`` dates (scanners write placeholders such as ``00000000``)."""
    return not keyword.endswith("Date") or bool(_DATE.fullmatch(value))


def copy_identity(dataset: Dataset, source: Mapping[str, Any]) -> None:
    """Patient/study attributes from ``metadata["dicom"]`` (type-2 ones empty when unknown)."""
    for keyword in PATIENT_STUDY_KEYWORDS:
        value = source.get(keyword)
        if value is not None and _valid(keyword, str(value)):
            setattr(dataset, keyword, [str(v) for v in value] if isinstance(value, list) else str(value))
        elif keyword in TYPE2_KEYWORDS or keyword.endswith("Date"):
            setattr(dataset, keyword, "")
    if "StudyInstanceUID" not in dataset:
        dataset.StudyInstanceUID = pydicom.uid.generate_uid()


def new_series_identity(image: Image) -> SeriesIdentity:
    """A new series for ``image``: new UID, the source's frame of reference and modality."""
    source = image.metadata.get("dicom") or {}
    original = str(source.get("SeriesDescription", "")).strip()
    try:
        series_number = int(source.get("SeriesNumber", 0)) + 1000
    except (TypeError, ValueError):
        series_number = 1000
    return SeriesIdentity(
        series_uid=pydicom.uid.generate_uid(),
        frame_of_reference_uid=str(source.get("FrameOfReferenceUID") or pydicom.uid.generate_uid()),
        modality=modality_code(image),
        series_number=series_number,
        series_description=(f"{original} (medrestore)" if original else "medrestore")[:64],
        timestamp=datetime.datetime.now(),
    )


def _file_meta(sop_class: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    return meta


def base_dataset(context: WriteContext, sop_class: str, instance: int) -> Dataset:
    """SOP Common, Patient, General Study, General Series, Frame of Reference, equipment,
    General Image and derivation attributes of one new instance."""
    identity = context.identity
    dataset = Dataset()
    dataset.file_meta = _file_meta(sop_class)
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    set_derivation(dataset, context)
    copy_identity(dataset, context.source)
    if "BodyPartExamined" not in dataset and "Laterality" not in dataset and not context.iod.enhanced:
        dataset.Laterality = ""  # type 2C: the body part may be paired (C.7.3.1)
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
    set_equipment(dataset)
    dataset.InstanceNumber = instance
    family = context.iod.family
    if family in ("MR", "CT"):
        dataset.PatientPosition = str(context.source.get("PatientPosition", "") or "")  # type 2C for CT and MR
    else:
        dataset.PatientOrientation = ""  # type 2C without an Image Plane module
    if family == "SC":
        dataset.ConversionType = "WSD"
        dataset.SecondaryCaptureDeviceManufacturer = EQUIPMENT
    return dataset
