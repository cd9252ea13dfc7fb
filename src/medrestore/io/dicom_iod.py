"""Which DICOM IOD a written image becomes, and the modules of the classic image IODs.

The output keeps what the input was (PS3.3 Annex A):

============  ===========================================  ==================================
modality      series folder (one file per slice)           one ``.dcm`` file
============  ===========================================  ==================================
MR            MR Image Storage                             Enhanced MR Image Storage (3-D, or
                                                           an Enhanced source); MR Image (2-D)
CT            CT Image Storage                             Enhanced CT Image Storage (3-D, or
                                                           an Enhanced source); CT Image (2-D)
NM            NM Image Storage: one multi-frame file       NM Image Storage (multi-frame)
other         Secondary Capture                            Multi-frame Grayscale SC (3-D)
============  ===========================================  ==================================

``metadata["derivation"]`` says what produced the pixels: ``"Restored"`` (denoising,
super-resolution, harmonisation, reconstruction), ``"Degraded"`` (a simulated degradation)
or ``"Derived"`` (anything else; the default). Every written object has ``ImageType``
``DERIVED\\SECONDARY`` and ``DerivationDescription`` ``"<derivation> with medrestore"``
(PS3.3 C.7.6.1.1.2, C.7.6.1.1.3).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import format_number_as_ds

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io.dicom_encode import EncodedPixels, ds_list
from medrestore.io.dicom_geometry import StackGeometry

DERIVATIONS = ("Restored", "Degraded", "Derived")
DICOM_FROM_MODALITY = {"mri": "MR", "ct": "CT", "nm": "NM", "oct": "OPT", "photo": "XC", "unknown": "OT"}
ENHANCED_SOURCES = {
    "MR": (pydicom.uid.EnhancedMRImageStorage, "1.2.840.10008.5.1.4.1.1.4.3", "1.2.840.10008.5.1.4.1.1.4.4"),
    "CT": (pydicom.uid.EnhancedCTImageStorage, "1.2.840.10008.5.1.4.1.1.2.2"),
}
EQUIPMENT = "medrestore"


@dataclasses.dataclass(frozen=True)
class Iod:
    """The information object definition a written image follows.

    Attributes:
        family: ``"MR"``, ``"CT"``, ``"NM"`` or ``"SC"``.
        sop_class: SOP Class UID.
        enhanced: a multi-frame object with functional groups (PS3.3 C.7.6.16).
        multi_frame: all slices in one file.
        storage: pixel storage types the IOD allows.
    """

    family: str
    sop_class: str
    enhanced: bool
    multi_frame: bool
    storage: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SeriesIdentity:
    """What every file of one written series shares."""

    series_uid: str
    frame_of_reference_uid: str
    modality: str
    series_number: int
    series_description: str
    timestamp: datetime.datetime


@dataclasses.dataclass(frozen=True)
class WriteContext:
    """Everything the module writers need for one output.

    Attributes:
        path: the destination (for error messages).
        image: the image being written (its metadata: ``dicom``, ``derivation``...).
        values: ``(slices, rows, cols)`` real values in the order written.
        spacing: ``(slice, row, column)`` spacing of ``values`` (mm).
        geometry: patient geometry of the stack, or ``None`` when the source had none (the
            frame layout is then kept and no orientation is invented).
        encoded: the stored integers and their rescale.
        iod: the chosen IOD.
        identity: series-level identity.
    """

    path: Path
    image: Image
    values: np.ndarray
    spacing: tuple[float, float, float]
    geometry: StackGeometry | None
    encoded: EncodedPixels
    iod: Iod
    identity: SeriesIdentity

    @property
    def source(self) -> Mapping[str, Any]:
        """The source's DICOM attributes (``metadata["dicom"]``; empty for other formats)."""
        return self.image.metadata.get("dicom") or {}

    @property
    def derivation(self) -> str:
        return derivation_of(self.path, self.image)


def derivation_of(path: Path, image: Image) -> str:
    """``metadata["derivation"]`` (one of :data:`DERIVATIONS`), ``"Derived"`` when absent."""
    value = image.metadata.get("derivation", "Derived")
    if value not in DERIVATIONS:
        raise InputError(path, f'metadata["derivation"] is {value!r}; expected one of {", ".join(DERIVATIONS)}')
    return str(value)


def modality_code(image: Image) -> str:
    """The DICOM ``Modality`` to write: the source's, else from ``image.modality``."""
    source = image.metadata.get("dicom") or {}
    return str(source.get("Modality") or DICOM_FROM_MODALITY.get(image.modality, "OT")).strip().upper()


def choose_iod(image: Image, single_file: bool, n_slices: int) -> Iod:
    """The IOD for ``image`` written as one file or a series folder (module docstring table)."""
    code = modality_code(image)
    source_class = str((image.metadata.get("dicom") or {}).get("SOPClassUID", ""))
    if code in ("MR", "CT"):
        enhanced = single_file and (n_slices > 1 or source_class in ENHANCED_SOURCES[code])
        if code == "MR":
            sop_class = pydicom.uid.EnhancedMRImageStorage if enhanced else pydicom.uid.MRImageStorage
        else:
            sop_class = pydicom.uid.EnhancedCTImageStorage if enhanced else pydicom.uid.CTImageStorage
        return Iod(code, sop_class, enhanced, enhanced, ("int16", "uint16"))
    if code == "NM":
        return Iod("NM", pydicom.uid.NuclearMedicineImageStorage, False, True, ("uint8", "uint16"))
    if single_file and n_slices > 1:
        return Iod("SC", pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage, False, True, ("uint16",))
    return Iod("SC", pydicom.uid.SecondaryCaptureImageStorage, False, False, ("uint8", "int16", "uint16"))


def multi_frame_sc_class(encoded: EncodedPixels) -> str:
    """Byte or Word multi-frame SC (PS3.3 A.8.3/A.8.4) for the stored pixel size."""
    if encoded.stored.itemsize == 1:
        return pydicom.uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    return pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage


def software_version() -> str:
    try:
        return importlib.metadata.version("medrestore")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def set_equipment(dataset: Dataset) -> None:
    """General and Enhanced General Equipment (C.7.5.1, C.7.5.2): the software that made the
    derived pixels (the acquiring scanner is named by the source's acquisition attributes)."""
    dataset.Manufacturer = EQUIPMENT
    dataset.ManufacturerModelName = EQUIPMENT
    dataset.DeviceSerialNumber = "1"
    dataset.SoftwareVersions = software_version()


def set_derivation(dataset: Dataset, context: WriteContext) -> None:
    """``ImageType`` values 1-2, ``DerivationDescription`` and the lossy-compression history."""
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    dataset.DerivationDescription = f"{context.derivation} with medrestore {software_version()}"[:1024]
    if str(context.source.get("LossyImageCompression", "")) == "01":  # once lossy, always flagged (C.7.6.1.1.5)
        dataset.LossyImageCompression = "01"
        for keyword in ("LossyImageCompressionRatio", "LossyImageCompressionMethod"):
            if keyword in context.source:
                setattr(dataset, keyword, context.source[keyword])


def slice_thickness(context: WriteContext) -> float | None:
    """The source's ``SliceThickness`` while the slice spacing is the source's, else the spacing."""
    if context.geometry is None:
        return None
    spacing = context.geometry.slice_spacing
    source_thickness = context.source.get("SliceThickness")
    source_spacing = context.image.metadata.get("dicom_slice_spacing")
    if isinstance(source_thickness, int | float) and isinstance(source_spacing, int | float):
        if abs(spacing - float(source_spacing)) <= 1e-3 * max(1.0, spacing):
            return float(source_thickness)
    return spacing


def rescale_type(context: WriteContext) -> str:
    """The source's ``RescaleType``; ``HU`` for CT, ``US`` (unspecified) otherwise."""
    source = context.source.get("RescaleType")
    if source:
        return str(source)
    return "HU" if context.iod.family == "CT" else "US"


def set_plane_module(dataset: Dataset, context: WriteContext, index: int) -> None:
    """Image Plane module (C.7.6.2) of slice ``index``: orientation, position, spacings."""
    geometry = context.geometry
    if geometry is None:
        return
    dataset.ImageOrientationPatient = ds_list(geometry.orientation)
    dataset.ImagePositionPatient = ds_list(geometry.positions[index])
    dataset.PixelSpacing = ds_list(geometry.pixel_spacing)
    dataset.SliceThickness = format_number_as_ds(slice_thickness(context))
    dataset.SpacingBetweenSlices = format_number_as_ds(geometry.slice_spacing)
    dataset.SliceLocation = format_number_as_ds(float(geometry.positions[index] @ geometry.normal))


def plane_functional_groups(context: WriteContext) -> tuple[Dataset, list[Dataset]]:
    """The geometry of a multi-frame stack as functional groups (PS3.3 C.7.6.16.2.1-3): a shared
    item with Pixel Measures and Plane Orientation, and one item per frame with its Plane Position.
    Callers add their own groups to both."""
    geometry = context.geometry
    measures = Dataset()
    measures.PixelSpacing = ds_list(geometry.pixel_spacing)
    measures.SliceThickness = format_number_as_ds(slice_thickness(context))
    measures.SpacingBetweenSlices = format_number_as_ds(geometry.slice_spacing)
    orientation = Dataset()
    orientation.ImageOrientationPatient = ds_list(geometry.orientation)
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    frames = []
    for position in geometry.positions:
        plane_position = Dataset()
        plane_position.ImagePositionPatient = ds_list(position)
        frame = Dataset()
        frame.PlanePositionSequence = DicomSequence([plane_position])
        frames.append(frame)
    return shared, frames


def _copy_source(dataset: Dataset, context: WriteContext, keywords: tuple[str, ...], empty: tuple[str, ...]) -> None:
    """Copy ``keywords`` from the source summary; those in ``empty`` are type 2 (empty when unknown)."""
    for keyword in keywords:
        value = context.source.get(keyword)
        if value not in (None, ""):
            setattr(dataset, keyword, [str(v) for v in value] if isinstance(value, list) else value)
        elif keyword in empty:
            setattr(dataset, keyword, "")


MR_KEYWORDS = (
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime",
    "EchoTrainLength", "InversionTime", "SequenceName", "FlipAngle", "MagneticFieldStrength", "ImagingFrequency",
    "ImagedNucleus", "EchoNumbers", "ProtocolName",
)  # fmt: skip
MR_TYPE2 = ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength")


def set_mr_image_module(dataset: Dataset, context: WriteContext) -> None:
    """MR Image module (C.8.3.1): the source's acquisition attributes; the type-1
    ``ScanningSequence``/``SequenceVariant`` are ``RM`` (research mode) / ``NONE`` when unknown."""
    dataset.ImageType = [*dataset.ImageType[:2], "OTHER"]  # value 3 is required for MR (C.8.3.1.1.1)
    _copy_source(dataset, context, MR_KEYWORDS, MR_TYPE2)
    if "ScanningSequence" not in dataset:
        dataset.ScanningSequence = "RM"
    if "SequenceVariant" not in dataset:
        dataset.SequenceVariant = "NONE"
    scanning = [dataset.ScanningSequence] if isinstance(dataset.ScanningSequence, str) else dataset.ScanningSequence
    if "RepetitionTime" not in dataset and ("EP" not in scanning or "SK" in dataset.SequenceVariant):
        dataset.RepetitionTime = ""  # type 2C
    if "IR" in scanning and "InversionTime" not in dataset:
        dataset.InversionTime = ""


def set_ct_image_module(dataset: Dataset, context: WriteContext) -> None:
    """CT Image module (C.8.2.1): ``ImageType`` value 3 ``AXIAL`` (or the source's), kVp and
    acquisition number (type 2)."""
    source_type = context.source.get("ImageType") or []
    value3 = source_type[2] if len(source_type) > 2 and source_type[2] in ("AXIAL", "LOCALIZER") else "AXIAL"
    dataset.ImageType = [*dataset.ImageType[:2], value3]
    _copy_source(dataset, context, ("KVP", "AcquisitionNumber", "ConvolutionKernel"), ("KVP", "AcquisitionNumber"))
