"""Helpers the DICOM tests share: a minimal data set to build test files on, and dcm2niix as
the independent reader (skipping when it is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel
import pydicom
import pydicom.uid
import pytest
from pydicom.dataset import Dataset, FileMetaDataset

DCM2NIIX = shutil.which("dcm2niix")


def new_dataset(sop_class: str, modality: str, patient_id: str, rows: int, columns: int, signed: bool = False) -> Dataset:
    """A data set with file meta, identifiers and a 16-bit monochrome pixel module (no pixels yet)."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.Modality, dataset.PatientID = modality, patient_id
    dataset.Rows, dataset.Columns, dataset.SamplesPerPixel = rows, columns, 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, int(signed)
    return dataset


def dcm2niix_volume(source: Path, work: Path) -> nibabel.Nifti1Image:
    """dcm2niix's conversion of a folder (or, with ``-s y``, of one file), display scaling (``-p n``)."""
    if DCM2NIIX is None:
        pytest.skip("dcm2niix is not installed (Debian/Ubuntu: apt-get install dcm2niix)")
    work.mkdir(parents=True, exist_ok=True)
    single = ["-s", "y"] if source.is_file() else []
    command = [DCM2NIIX, *single, "-z", "n", "-b", "n", "-p", "n", "-f", "reference", "-o", str(work), str(source)]
    subprocess.run(command, check=True, capture_output=True)
    outputs = sorted(work.glob("reference*.nii"))
    assert len(outputs) == 1, [path.name for path in outputs]
    return nibabel.load(outputs[0])


def available(path: Path, what: str) -> Path:
    """``path`` when it exists; otherwise the test is skipped, saying which ``what`` is missing."""
    if not path.exists():
        pytest.skip(f"{what} {path} is not present")
    return path
