"""Siemens mosaic DICOM (``medrestore.io.dicom_mosaic``): nibabel's own test mosaic (a 48-slice diffusion volume,
its pixels zeroed), given distinct values per slice and pixel, read against dcm2niix's conversion of the same file."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from dicom_helpers import dcm2niix_volume
from test_io_dicom_series4d import compare_with_reference

from medrestore.io import detect_format, read_image

NICOM_DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"


def _mosaic_with_values(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """The test mosaic with slice ``k``'s pixel ``(r, c)`` set to ``80 k + 8 (r % 8) + c % 8`` (its 12 stored bits)."""
    dataset = pydicom.dcmread(gzip.open(NICOM_DATA / "siemens_dwi_1000.dcm.gz"))
    slices = np.array([[[80 * k + 8 * (r % 8) + c % 8 for c in range(128)] for r in range(128)] for k in range(48)], dtype=np.uint16)
    padded = np.concatenate([slices, np.zeros((1, 128, 128), np.uint16)])  # a 7 × 7 grid holds 49 tiles
    mosaic = padded.reshape(7, 7, 128, 128).transpose(0, 2, 1, 3).reshape(896, 896)
    dataset.PixelData = mosaic.tobytes()
    path = tmp_path / "mosaic.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path, slices


def test_the_compressed_mosaic_is_detected_as_dicom() -> None:
    """Its preamble starts with 348 (little-endian), NIfTI's header size: it was taken for gzip-compressed NIfTI."""
    assert detect_format(NICOM_DATA / "siemens_dwi_1000.dcm.gz") == "dicom"


def test_a_mosaic_reads_as_its_volume_matching_dcm2niix(tmp_path: Path) -> None:
    path, slices = _mosaic_with_values(tmp_path)
    image = read_image(path)
    assert image.shape == (48, 128, 128) and image.spatial_ndim == 3 and image.metadata["dicom_mosaic_slices"] == 48
    np.testing.assert_array_equal(image.numpy(), slices)
    assert image.spacing == pytest.approx((3.0, 1.796875, 1.796875), rel=1e-6)
    reference = dcm2niix_volume(path, tmp_path / "dcm2niix")
    assert reference.shape == (128, 128, 48)
    affine_error, value_error = compare_with_reference(image.numpy(), image.affine, reference)
    assert affine_error < 1e-3 and value_error == 0.0


def test_a_folder_of_mosaics_is_a_time_series_matching_dcm2niix(tmp_path: Path) -> None:
    """Three mosaics of one run (their file names against their acquisition order): ``(slice, row, column, T)`` in
    ``AcquisitionTime`` order, as dcm2niix stacks them."""
    path, slices = _mosaic_with_values(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    for time, name in enumerate(("c.dcm", "a.dcm", "b.dcm")):
        dataset = pydicom.dcmread(path)
        shifted = np.concatenate([slices + 100 * time, np.zeros((1, 128, 128), np.uint16)])
        dataset.PixelData = shifted.reshape(7, 7, 128, 128).transpose(0, 2, 1, 3).reshape(896, 896).tobytes()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        dataset.InstanceNumber, dataset.AcquisitionTime = time + 1, f"1200{time:02d}.000000"
        dataset.save_as(folder / name, enforce_file_format=True)
    image = read_image(folder)
    assert image.shape == (48, 128, 128, 3) and image.metadata["dicom_time_order"] == "AcquisitionTime"
    assert image.metadata["dicom_files"] == ["c.dcm", "a.dcm", "b.dcm"]
    np.testing.assert_array_equal(image.numpy()[..., 2], slices + 200)
    reference = dcm2niix_volume(folder, tmp_path / "dcm2niix")
    assert reference.shape == (128, 128, 48, 3)
    affine_error, value_error = compare_with_reference(image.numpy(), image.affine, reference)
    assert affine_error < 1e-3 and value_error == 0.0


def test_mosaics_that_are_not_a_grid_of_tiles_read_as_stored(tmp_path: Path) -> None:
    """nibabel's synthetic ``0.dcm``/``1.dcm`` say MOSAIC with 48 slices but hold 256 × 256 pixels: each reads as
    the image it stores (the record says why), and a folder of the two as a 2-slice volume, as before."""
    for name in ("0.dcm", "1.dcm"):
        shutil.copyfile(Path(nibabel.__file__).parent / "tests" / "data" / name, tmp_path / name)
    single = read_image(tmp_path / "0.dcm")
    assert single.shape == (256, 256) and "not a grid of tiles" in single.metadata["dicom_mosaic"]
    assert read_image(tmp_path).shape == (2, 256, 256)
