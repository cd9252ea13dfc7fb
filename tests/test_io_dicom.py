"""DICOM reading (file, multi-frame, NM, series folder) and writing (series, multi-frame, 2-D)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pydicom.uid
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicom_helpers import new_dataset
from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.core.image import Image
from medrestore.io import detect_format, read_image, write_image

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
SERIES_UID = "1.2.826.0.1.3680043.8.498.2"


def rotation() -> np.ndarray:
    """30° about (1, 2, 3)/‖·‖ (Rodrigues): an oblique orthonormal frame."""
    axis = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.deg2rad(30.0)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def base_dataset(rows: int, columns: int, modality: str = "MR", series_uid: str = SERIES_UID) -> Dataset:
    dataset = new_dataset(pydicom.uid.MRImageStorage, modality, "P-123", rows, columns, signed=True)
    dataset.PatientName, dataset.PatientBirthDate, dataset.PatientSex = "Doe^Jane", "19700101", "F"
    dataset.StudyInstanceUID, dataset.StudyID, dataset.StudyDate, dataset.AccessionNumber = (
        STUDY_UID,
        "42",
        "20240206",
        "ACC9",
    )
    dataset.SeriesInstanceUID, dataset.SeriesNumber, dataset.SeriesDescription = series_uid, 3, "T1 axial"
    dataset.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.3"
    return dataset


def write_source_series(
    folder: Path,
    volume: np.ndarray,
    names: Sequence[str],
    positions: bool = True,
    rescale: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Single-frame MR files, slice k at IPP₀ + 3 mm · k · normal; returns the RAS affine of (k, r, c)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = rotation()
    row_cosine, column_cosine, normal = frame[:, 0], frame[:, 1], frame[:, 2]
    origin, pixel_spacing, step = np.array([-100.5, 20.25, 33.0]), (0.7, 0.9), 3.0 * normal
    for k in range(volume.shape[0]):
        dataset = base_dataset(*volume.shape[1:])
        dataset.ImageOrientationPatient = [float(v) for v in (*row_cosine, *column_cosine)]
        if positions:
            dataset.ImagePositionPatient = [float(v) for v in origin + k * step]
        dataset.PixelSpacing, dataset.SliceThickness = list(pixel_spacing), 99.0  # thickness must be ignored
        dataset.InstanceNumber = k + 1 if not positions else volume.shape[0] - k  # reversed: positions win
        dataset.RescaleSlope, dataset.RescaleIntercept = rescale
        dataset.PixelData = volume[k].astype("<i2").tobytes()
        dataset.save_as(folder / names[k], enforce_file_format=True)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = step, column_cosine * 0.7, row_cosine * 0.9, origin
    return LPS_TO_RAS @ lps


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(3).integers(-500, 1500, size=(5, 6, 7)).astype(np.int16)


@pytest.fixture
def shuffled_names() -> list[str]:
    return ["c.dcm", "a.dcm", "e.dcm", "b.dcm", "d.dcm"]  # slice k is stored under names[k]


def test_series_sorted_by_position_with_shuffled_names(
    tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]
) -> None:
    affine = write_source_series(tmp_path / "in", volume, shuffled_names, rescale=(2.0, -1024.0))
    digests = {path.name: sha256_file(path) for path in (tmp_path / "in").iterdir()}
    image = read_image(tmp_path / "in")
    assert {path.name: sha256_file(path) for path in (tmp_path / "in").iterdir()} == digests
    assert image.shape == (5, 6, 7) and image.spatial_ndim == 3 and image.modality == "mri"
    np.testing.assert_array_equal(image.numpy(), volume * 2.0 - 1024.0)
    np.testing.assert_allclose(image.affine, affine, atol=1e-6)
    assert image.spacing == pytest.approx((3.0, 0.7, 0.9))
    assert image.metadata["dicom_files"] == shuffled_names
    assert image.metadata["dicom"]["PatientID"] == "P-123" and image.metadata["dicom"]["PatientName"] == "Doe^Jane"
    json.dumps(dict(image.metadata))  # plain JSON values only
    assert image.metadata["dicom"]["RescaleSlope"] == 2.0 and image.metadata["dtype"] == "int16"


def test_series_without_positions_falls_back_to_instance_number(
    tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]
) -> None:
    write_source_series(tmp_path / "in", volume, shuffled_names, positions=False)
    image = read_image(tmp_path / "in")
    np.testing.assert_array_equal(image.numpy(), volume)


def test_series_round_trip_keeps_identity_with_new_series(
    tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]
) -> None:
    affine = write_source_series(tmp_path / "in", volume, shuffled_names, rescale=(1.0, -1024.0))
    image = read_image(tmp_path / "in")
    written = write_image(image, tmp_path / "out")
    assert sorted(path.name for path in written.iterdir()) == [f"{k:04d}.dcm" for k in range(1, 6)]
    again = read_image(written)
    np.testing.assert_array_equal(again.numpy(), volume - 1024.0)
    np.testing.assert_allclose(again.affine, affine, atol=1e-6)
    tags = again.metadata["dicom"]
    assert tags["PatientID"] == "P-123" and tags["StudyInstanceUID"] == STUDY_UID and tags["AccessionNumber"] == "ACC9"
    assert tags["SeriesInstanceUID"] != SERIES_UID and tags["SeriesDescription"] == "T1 axial (medrestore)"
    assert tags["ImageType"] == ["DERIVED", "SECONDARY", "OTHER"] and tags["Modality"] == "MR"
    sop_uids = {pydicom.dcmread(path).SOPInstanceUID for path in written.iterdir()}
    assert len(sop_uids) == 5
    # Rewriting the same folder replaces our previous series; a folder with other files is refused.
    write_image(image, tmp_path / "out")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=r"busy.*choose a new folder"):
        write_image(image, tmp_path / "busy")


def test_float_values_stored_with_rescale_within_half_a_step(
    tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]
) -> None:
    write_source_series(tmp_path / "in", volume, shuffled_names)
    image = read_image(tmp_path / "in")
    restored = image.with_data(image.data * 0.37 + 0.1)
    again = read_image(write_image(restored, tmp_path / "float_out"))
    values = restored.numpy().astype(np.float64)
    half_step = (values.max() - values.min()) / 65535 / 2
    assert np.abs(again.numpy() - values).max() <= half_step * 1.01 + 1e-4


def test_nifti_oblique_volume_to_series_uses_slice_axis(tmp_path: Path) -> None:
    data = np.random.default_rng(4).random((6, 5, 4)).astype(np.float32) * 1000
    affine = np.eye(4)
    affine[:3, :3] = rotation() @ np.diag([0.8, 0.9, 2.5])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    nibabel.save(nibabel.Nifti1Image(data, affine), tmp_path / "vol.nii.gz")
    image = read_image(tmp_path / "vol.nii.gz")
    again = read_image(write_image(image, tmp_path / "series/"))
    # The coarsest axis (2.5 mm) becomes the slice axis; the in-plane axes are ordered so the
    # slices run along row_cosine x column_cosine (a right-handed rotation needs them swapped).
    expected = image.permute([2, 1, 0])
    assert again.shape == (4, 5, 6)
    np.testing.assert_allclose(again.numpy(), expected.numpy(), atol=1000 / 65535)
    np.testing.assert_allclose(again.affine, expected.affine, atol=1e-5)


def test_multi_frame_file_round_trip(tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]) -> None:
    affine = write_source_series(tmp_path / "in", volume, shuffled_names)
    image = read_image(tmp_path / "in")
    written = write_image(image, tmp_path / "volume.dcm")
    assert detect_format(written) == "dicom"
    stored = pydicom.dcmread(written)
    assert (
        int(stored.NumberOfFrames) == 5
        and stored.SOPClassUID == pydicom.uid.EnhancedMRImageStorage
    )
    again = read_image(written)
    np.testing.assert_array_equal(again.numpy(), volume)
    np.testing.assert_allclose(again.affine, affine, atol=1e-6)
    assert again.metadata["dicom"]["PatientID"] == "P-123"


def test_2d_file_round_trip(tmp_path: Path) -> None:
    plane = np.arange(20, dtype=np.float32).reshape(4, 5) * 3
    affine = np.array([[0.0, 0.5, 0.0, 1.0], [0.25, 0.0, 0.0, 2.0], [0.0, 0.0, 4.0, 3.0], [0, 0, 0, 1.0]])
    image = Image(plane, affine, 2, "ct", {})
    again = read_image(write_image(image, tmp_path / "plane.dcm"))
    assert again.spatial_ndim == 2 and again.modality == "ct"
    np.testing.assert_array_equal(again.numpy(), plane)
    np.testing.assert_allclose(again.affine[:, [0, 1, 3]], affine[:, [0, 1, 3]], atol=1e-9)
    assert abs(again.affine[2, 2]) == pytest.approx(4.0)  # a single plane keeps only |thickness|


def test_nm_multi_frame_counts(tmp_path: Path) -> None:
    counts = np.random.default_rng(5).poisson(30.0, size=(3, 8, 8)).astype(np.uint16)
    dataset = base_dataset(8, 8, modality="NM")
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID = pydicom.uid.NuclearMedicineImageStorage
    dataset.PixelRepresentation, dataset.NumberOfFrames = 0, 3
    dataset.PixelSpacing, dataset.SpacingBetweenSlices = [4.42, 4.42], 4.42
    dataset.FrameIncrementPointer = pydicom.tag.Tag("EnergyWindowVector")
    dataset.EnergyWindowVector = [1, 1, 1]
    detector = Dataset()
    detector.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    detector.ImagePositionPatient = [-17.68, 0.0, 17.68]
    dataset.DetectorInformationSequence = DicomSequence([detector])
    dataset.PixelData = counts.astype("<u2").tobytes()
    dataset.save_as(tmp_path / "bone_scan", enforce_file_format=True)
    image = read_image(tmp_path / "bone_scan")
    assert image.modality == "nm" and image.shape == (3, 8, 8) and image.metadata["dtype"] == "uint16"
    np.testing.assert_array_equal(image.numpy(), counts)
    assert image.spacing == pytest.approx((4.42, 4.42, 4.42))


def test_preamble_less_file_is_detected(tmp_path: Path) -> None:
    dataset = base_dataset(2, 3)
    dataset.PixelData = np.arange(6, dtype="<i2").tobytes()
    del dataset.file_meta
    dataset.save_as(tmp_path / "raw_dicom", implicit_vr=True, little_endian=True)
    assert (tmp_path / "raw_dicom").read_bytes()[128:132] != b"DICM"
    assert detect_format(tmp_path / "raw_dicom") == "dicom"
    np.testing.assert_array_equal(read_image(tmp_path / "raw_dicom").numpy(), np.arange(6).reshape(2, 3))


def test_inconsistent_and_mixed_series_are_refused(
    tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]
) -> None:
    write_source_series(tmp_path / "in", volume, shuffled_names)
    odd = pydicom.dcmread(tmp_path / "in" / "e.dcm")
    odd.Rows, odd.Columns = 3, 14
    odd.save_as(tmp_path / "in" / "e.dcm")
    with pytest.raises(InputError, match=r"e\.dcm: slice size 3x14 differs from 6x7"):
        read_image(tmp_path / "in")
    write_source_series(tmp_path / "two", volume, shuffled_names)
    other = pydicom.dcmread(tmp_path / "two" / "a.dcm")
    other.SeriesInstanceUID, other.SeriesDescription = "1.2.3.4", "localiser"
    other.save_as(tmp_path / "two" / "a.dcm")
    with pytest.raises(InputError, match=r"2 DICOM series.*'localiser', 1 files.*'T1 axial', 4 files"):
        read_image(tmp_path / "two")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match=r"none: folder holds no DICOM image files"):
        read_image(tmp_path / "none")


def test_missing_slice_is_reported(tmp_path: Path, volume: np.ndarray, shuffled_names: list[str]) -> None:
    write_source_series(tmp_path / "in", volume, shuffled_names)
    (tmp_path / "in" / shuffled_names[2]).unlink()
    with pytest.raises(InputError, match=r"not evenly spaced.*a slice may be missing"):
        read_image(tmp_path / "in")
