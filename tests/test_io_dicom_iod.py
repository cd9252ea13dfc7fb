"""DICOM output keeps the input's IOD, frame layout and derivation, and independent readers accept it.

Independent checks: dcm2niix (Debian package) converts what we wrote and must find the same
grid and values; pydicom reads the NM objects attribute by attribute; dciodvfy (Debian
package ``dicom3tools``, the IOD verifier of the DICOM editor) must report no error. Each
tool's test skips when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pydicom.uid
import pytest
from pydicom.dataset import Dataset

from dicom_helpers import available, dcm2niix_volume, new_dataset
from medrestore.core.errors import InputError
from medrestore.core.image import Image, affine_from_spacing
from medrestore.io import read_image, write_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DCIODVFY = shutil.which("dciodvfy")


def shared_file(relative: str) -> Path:
    return available(SHARED / relative, "real data")


def dciodvfy_errors(path: Path) -> list[str]:
    if DCIODVFY is None:
        pytest.skip("dciodvfy is not installed (Debian/Ubuntu: apt-get install dicom3tools)")
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def on_ras_grid(data: np.ndarray, affine: np.ndarray) -> nibabel.Nifti1Image:
    return nibabel.as_closest_canonical(nibabel.Nifti1Image(np.asarray(data, dtype=np.float32), affine))


@pytest.fixture(scope="module")
def mr_volume() -> Image:
    """40 sagittal slices of the real Philips MPRAGE (restored values are not integers)."""
    source = read_image(shared_file("mri-philips-3t/mprage"))
    metadata = {**source.metadata, "derivation": "Restored"}
    return Image(source.data[60:100] * 0.731 + 0.25, source.affine, 3, "mri", metadata)


@pytest.mark.shared_data
@pytest.mark.parametrize("destination", ["series", "volume.dcm"])
def test_mr_volume_round_trips_through_dcm2niix(mr_volume: Image, tmp_path: Path, destination: str) -> None:
    written = write_image(mr_volume, tmp_path / destination)
    first = sorted(written.iterdir())[0] if written.is_dir() else written
    dataset = pydicom.dcmread(first)
    if written.is_dir():
        assert len(list(written.iterdir())) == 40 and dataset.SOPClassUID == pydicom.uid.MRImageStorage
        assert dataset.ImageType[:2] == ["DERIVED", "SECONDARY"]
    else:
        assert dataset.SOPClassUID == pydicom.uid.EnhancedMRImageStorage and int(dataset.NumberOfFrames) == 40
        assert dataset.ImageType[0] == "DERIVED"
    assert dataset.DerivationDescription.startswith("Restored with medrestore")
    assert dataset.Modality == "MR"
    if written.is_dir():
        assert dataset.ScanningSequence == "GR" and float(dataset.EchoTime) > 0  # the source's acquisition attributes
    assert float(dataset.get("SliceThickness") or _shared(dataset).PixelMeasuresSequence[0].SliceThickness) == 1.0
    reference = dcm2niix_volume(written, tmp_path / "reference")
    ours, theirs = on_ras_grid(mr_volume.numpy(), mr_volume.affine), nibabel.as_closest_canonical(reference)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)
    values = mr_volume.numpy().astype(np.float64)
    half_step = (values.max() - values.min()) / 65535 / 2
    assert np.abs(theirs.get_fdata() - ours.get_fdata()).max() <= half_step * 1.01 + 1e-3
    if not written.is_dir():
        assert dciodvfy_errors(written) == []
    else:
        assert dciodvfy_errors(first) == []


def _shared(dataset: Dataset) -> Dataset:
    return dataset.SharedFunctionalGroupsSequence[0]


@pytest.mark.shared_data
def test_jaszczak_nm_keeps_frames_and_nm_modules(tmp_path: Path) -> None:
    path = shared_file("nm-nmqc/Jaszack.dcm")
    source = pydicom.dcmread(path)
    image = read_image(path)
    written = write_image(image.with_metadata(derivation="Restored"), tmp_path / "out.dcm")
    dataset = pydicom.dcmread(written)
    assert dataset.SOPClassUID == pydicom.uid.NuclearMedicineImageStorage
    assert (int(dataset.NumberOfFrames), dataset.Rows, dataset.Columns) == (45, 128, 128)
    np.testing.assert_array_equal(dataset.pixel_array, source.pixel_array)  # counts stored exactly, frames in place
    assert dataset.ImageType == ["DERIVED", "PRIMARY", "RECON TOMO", "EMISSION"]
    assert dataset.FrameIncrementPointer == pydicom.tag.Tag("SliceVector")
    assert list(dataset.SliceVector) == list(source.SliceVector) and dataset.NumberOfSlices == 45
    window = dataset.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert (float(window.EnergyWindowLowerLimit), float(window.EnergyWindowUpperLimit)) == (126.0, 154.0)
    nuclide = dataset.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0]
    assert nuclide.CodeMeaning == source.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence[0].CodeMeaning
    assert dataset.DetectorInformationSequence[0].CollimatorGridName == "LEHR"
    assert float(dataset.SpacingBetweenSlices) == pytest.approx(4.13, abs=1e-4)
    assert dataset.DerivationDescription.startswith("Restored")
    again = read_image(written)
    np.testing.assert_array_equal(again.numpy(), image.numpy())
    np.testing.assert_allclose(again.affine, image.affine, atol=1e-4)
    assert dciodvfy_errors(written) == []


def nm_without_geometry(path: Path, counts: np.ndarray) -> Path:
    """An NM multi-frame file with pixel spacing but no patient orientation or position anywhere."""
    dataset = new_dataset(pydicom.uid.NuclearMedicineImageStorage, "NM", "NM-2", counts.shape[1], counts.shape[2])
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    dataset.NumberOfFrames, dataset.PixelSpacing = counts.shape[0], [3.3, 3.3]
    dataset.FrameIncrementPointer = [pydicom.tag.Tag("EnergyWindowVector"), pydicom.tag.Tag("DetectorVector")]
    dataset.EnergyWindowVector, dataset.NumberOfEnergyWindows = list(range(1, counts.shape[0] + 1)), counts.shape[0]
    dataset.DetectorVector, dataset.NumberOfDetectors = [1] * counts.shape[0], 1
    dataset.PixelData = counts.astype("<u2").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_nm_frames_without_geometry_are_not_transposed(tmp_path: Path) -> None:
    counts = np.random.default_rng(11).poisson(20.0, size=(3, 16, 20)).astype(np.uint16)
    image = read_image(nm_without_geometry(tmp_path / "windows.dcm", counts))
    for destination in ("copy.dcm", "copy_series"):
        written = write_image(image, tmp_path / destination)
        file = sorted(written.iterdir())[0] if written.is_dir() else written
        if written.is_dir():
            assert [entry.name for entry in written.iterdir()] == ["0001.dcm"]  # NM: one multi-frame object
        dataset = pydicom.dcmread(file)
        assert (int(dataset.NumberOfFrames), dataset.Rows, dataset.Columns) == (3, 16, 20)
        np.testing.assert_array_equal(dataset.pixel_array, counts)
        assert dataset.ImageType[2] == "STATIC" and list(dataset.EnergyWindowVector) == [1, 2, 3]
        assert dataset.DetectorInformationSequence[0].ImageOrientationPatient in (None, "", [])
        again = read_image(written)
        np.testing.assert_array_equal(again.numpy(), counts)
        np.testing.assert_allclose(again.affine, image.affine)


@pytest.mark.shared_data
def test_nm_planar_is_static_nm_with_counts(tmp_path: Path) -> None:
    image = read_image(shared_file("nm-nmqc/FourBar.dcm"))
    written = write_image(image.with_metadata(derivation="Degraded"), tmp_path / "planar.dcm")
    dataset = pydicom.dcmread(written)
    assert dataset.SOPClassUID == pydicom.uid.NuclearMedicineImageStorage and int(dataset.NumberOfFrames) == 1
    assert dataset.ImageType[2] == "STATIC" and dataset.DerivationDescription.startswith("Degraded")
    assert dataset.EnergyWindowVector == 1 and dataset.DetectorVector == 1  # one value each
    np.testing.assert_array_equal(dataset.pixel_array, pydicom.dcmread(shared_file("nm-nmqc/FourBar.dcm")).pixel_array)
    assert read_image(written).spacing == pytest.approx(image.spacing)
    assert dciodvfy_errors(written) == []


def test_fractional_nm_counts_are_unsigned_with_rescale(tmp_path: Path) -> None:
    counts = np.random.default_rng(12).gamma(2.0, 3.0, size=(24, 24)).astype(np.float32) - 1.0
    image = Image(counts, affine_from_spacing((2.0, 2.0)), 2, "nm", {"derivation": "Restored"})
    dataset = pydicom.dcmread(write_image(image, tmp_path / "restored.dcm"))
    assert dataset.PixelRepresentation == 0 and dataset.BitsStored == 16  # NM pixels are unsigned (C.8.4.7)
    values = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    assert np.abs(values - counts).max() <= (counts.max() - counts.min()) / 65535


def _ct_image() -> Image:
    values = np.random.default_rng(13).integers(-1000, 2000, size=(3, 8, 9)).astype(np.float32)
    return Image(values, affine_from_spacing((2.0, 0.5, 0.6), origin=(10.0, -5.0, 3.0)), 3, "ct", {})


def test_ct_series_and_file_keep_ct_iods(tmp_path: Path) -> None:
    image = _ct_image()
    series = write_image(image, tmp_path / "ct")
    dataset = pydicom.dcmread(sorted(series.iterdir())[0])
    assert dataset.SOPClassUID == pydicom.uid.CTImageStorage and dataset.RescaleType == "HU"
    assert dataset.ImageType == ["DERIVED", "SECONDARY", "AXIAL"] and dataset.DerivationDescription.startswith("Derived")
    single = write_image(image, tmp_path / "ct.dcm")
    assert pydicom.dcmread(single).SOPClassUID == pydicom.uid.EnhancedCTImageStorage
    for written in (series, single):
        again = read_image(written)
        assert again.modality == "ct"
        again_grid, source_grid = on_ras_grid(again.numpy(), again.affine), on_ras_grid(image.numpy(), image.affine)
        np.testing.assert_array_equal(again_grid.get_fdata(), source_grid.get_fdata())
        np.testing.assert_allclose(again_grid.affine, source_grid.affine, atol=1e-6)
    assert dciodvfy_errors(sorted(series.iterdir())[0]) == [] and dciodvfy_errors(single) == []


def test_photographs_and_unknown_images_are_secondary_capture(tmp_path: Path) -> None:
    photo = Image(np.arange(20, dtype=np.float32).reshape(4, 5), affine_from_spacing((1.0, 1.0)), 2, "photo", {})
    assert pydicom.dcmread(write_image(photo, tmp_path / "photo.dcm")).SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    stack = Image(np.ones((2, 4, 5), np.float32), affine_from_spacing((1.0, 1.0, 1.0)), 3, "unknown", {})
    written = write_image(stack, tmp_path / "stack.dcm")
    assert pydicom.dcmread(written).SOPClassUID == pydicom.uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    assert dciodvfy_errors(written) == []


def test_slice_thickness_follows_the_source_or_the_spacing(tmp_path: Path) -> None:
    image = _ct_image().with_metadata(dicom={"SliceThickness": 2.5, "Modality": "CT"}, dicom_slice_spacing=2.0)
    dataset = pydicom.dcmread(sorted(write_image(image, tmp_path / "same").iterdir())[0])
    assert float(dataset.SliceThickness) == 2.5  # slices where they were: the source's thickness
    resampled = Image(image.data, affine_from_spacing((1.0, 0.5, 0.6)), 3, "ct", image.metadata)
    dataset = pydicom.dcmread(sorted(write_image(resampled, tmp_path / "finer").iterdir())[0])
    assert float(dataset.SliceThickness) == 1.0


def test_unknown_derivation_is_refused(tmp_path: Path) -> None:
    image = _ct_image().with_metadata(derivation="Improved")
    with pytest.raises(InputError, match=r"derivation.*Restored, Degraded, Derived"):
        write_image(image, tmp_path / "ct.dcm")
