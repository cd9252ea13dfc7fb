"""Enhanced MR / Enhanced CT Image objects: one multi-frame file with functional groups.

Modules written for a DERIVED image (PS3.3 A.36.2 Enhanced MR, A.38.1 Enhanced CT; the
acquisition groups are required only for ORIGINAL images):

* Enhanced MR/CT Image module (C.8.13.1, C.8.15.2): ``ImageType`` (4 values),
  ``PixelPresentation``, ``VolumetricProperties``, ``VolumeBasedCalculationTechnique``
  (MR also ``ComplexImageComponent``, ``AcquisitionContrast``), ``ContentQualification``.
* Multi-frame Functional Groups (C.7.6.16): shared Pixel Measures, Plane Orientation,
  Pixel Value Transformation (the rescale), Frame VOI LUT, Frame Anatomy (when the body
  part is known) and MR/CT Image Frame Type; per frame Frame Content (dimension index,
  stack position) and Plane Position.
* Multi-frame Dimension (C.7.6.17): one dimension, the frame position
  (``ImagePositionPatient`` in ``PlanePositionSequence``), frames ordered along the normal.
* Acquisition Context (C.7.6.14, empty) and Enhanced General Equipment (C.7.5.2).
"""

from __future__ import annotations

import pydicom.tag
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from medrestore.io.dicom_encode import copy_elements, rescale_attributes, window_attributes
from medrestore.io.dicom_iod import WriteContext, plane_functional_groups, rescale_type

# Body parts (BodyPartExamined, PS3.16 CID 4031) → SNOMED CT codes for the Frame Anatomy macro.
ANATOMY_CODES = {
    "BRAIN": ("12738006", "Brain"), "HEAD": ("69536005", "Head"), "NECK": ("45048000", "Neck"),
    "CHEST": ("51185008", "Chest"), "HEART": ("80891009", "Heart"), "ABDOMEN": ("818983003", "Abdomen"),
    "LIVER": ("10200004", "Liver"), "PELVIS": ("816092008", "Pelvis"), "SPINE": ("421060004", "Spine"),
    "KNEE": ("72696002", "Knee"), "EYE": ("81745001", "Eye"), "WHOLEBODY": ("38266002", "Entire body"),
}  # fmt: skip


def _item(**attributes: object) -> Dataset:
    item = Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def _image_description(context: WriteContext) -> dict[str, object]:
    """The Image Description macro values shared by the image module and the frame type group."""
    values: dict[str, object] = {  # value 2 is always PRIMARY in enhanced objects (C.8.16.1.1)
        "FrameType": ["DERIVED", "PRIMARY", "VOLUME", "NONE"],
        "PixelPresentation": "MONOCHROME",
        "VolumetricProperties": "VOLUME",
        "VolumeBasedCalculationTechnique": "NONE",
    }
    if context.iod.family == "MR":
        values["ComplexImageComponent"] = "MAGNITUDE"
        values["AcquisitionContrast"] = "UNKNOWN"
    return values


def _frame_anatomy(context: WriteContext) -> Dataset:
    """Frame Anatomy (C.7.6.16.2.8) from ``BodyPartExamined``; "Body structure" when unknown."""
    body_part = str(context.source.get("BodyPartExamined", "")).strip().upper()
    code = ANATOMY_CODES.get(body_part, ("123037004", "Body structure"))
    region = _item(CodeValue=code[0], CodingSchemeDesignator="SCT", CodeMeaning=code[1])
    return _item(FrameLaterality="U", AnatomicRegionSequence=DicomSequence([region]))


def _functional_groups(context: WriteContext) -> tuple[Dataset, list[Dataset]]:
    """Shared and per-frame groups: the plane groups plus the enhanced objects' own."""
    shared, frames = plane_functional_groups(context)
    shared.PixelValueTransformationSequence = DicomSequence([rescale_attributes(context.encoded, rescale_type(context))])
    shared.FrameVOILUTSequence = DicomSequence([window_attributes(context.encoded)])
    shared.FrameAnatomySequence = DicomSequence([_frame_anatomy(context)])
    if context.iod.family == "CT":  # the source's irradiation event, or a new UID when it names none
        event = str(context.source.get("IrradiationEventUID") or pydicom.uid.generate_uid())
        shared.IrradiationEventIdentificationSequence = DicomSequence([_item(IrradiationEventUID=event)])
    frame_type = _image_description(context)
    type_keyword = "MRImageFrameTypeSequence" if context.iod.family == "MR" else "CTImageFrameTypeSequence"
    setattr(shared, type_keyword, DicomSequence([_item(**frame_type)]))
    for index, frame in enumerate(frames):
        content = _item(DimensionIndexValues=[index + 1], StackID="1", InStackPositionNumber=index + 1)
        frame.FrameContentSequence = DicomSequence([content])
    return shared, frames


def _dimensions(dataset: Dataset) -> None:
    organization = pydicom.uid.generate_uid()
    dataset.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=organization)])
    dataset.DimensionOrganizationType = "3D"
    index = _item(
        DimensionOrganizationUID=organization,
        DimensionIndexPointer=pydicom.tag.Tag("ImagePositionPatient"),
        FunctionalGroupPointer=pydicom.tag.Tag("PlanePositionSequence"),
        DimensionDescriptionLabel="Image Position (Patient)",
    )
    dataset.DimensionIndexSequence = DicomSequence([index])


def set_enhanced_modules(dataset: Dataset, context: WriteContext) -> None:
    """Fill ``dataset`` (identity already set) as an Enhanced MR or Enhanced CT image."""
    description = _image_description(context)
    dataset.ImageType = description.pop("FrameType")
    copy_elements(dataset, _item(**description))
    dataset.ContentQualification = "RESEARCH"
    if context.iod.family == "MR":  # the MR safety standard the source acquisition followed
        dataset.ApplicableSafetyStandardAgency = str(context.source.get("ApplicableSafetyStandardAgency") or "IEC")
    if "LossyImageCompression" not in dataset:
        dataset.LossyImageCompression = "00"
    dataset.BurnedInAnnotation = "NO"
    dataset.PresentationLUTShape = "IDENTITY"
    dataset.AcquisitionContextSequence = DicomSequence([])
    dataset.NumberOfFrames = len(context.geometry.positions)
    _dimensions(dataset)
    shared, frames = _functional_groups(context)
    dataset.SharedFunctionalGroupsSequence = DicomSequence([shared])
    dataset.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
