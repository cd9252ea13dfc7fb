"""DICOM NM: planar and multi-frame scintigrams keep their pixel spacing and counts through write → read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from dicom_helpers import new_dataset
from medrestore.core.image import Image, affine_from_spacing
from medrestore.io import read_image, write_image


def nm_multi_frame_file(path: Path, counts: np.ndarray, spacing: float, collimator: str | None = None) -> Path:
    """A camera-style NM multi-frame object (frames = energy windows), as gamma cameras write them; ``collimator``: the
    detector's ``CollimatorGridName``."""
    dataset = new_dataset(pydicom.uid.NuclearMedicineImageStorage, "NM", "NM-1", counts.shape[1], counts.shape[2])
    dataset.NumberOfFrames = counts.shape[0]
    dataset.PixelSpacing = [spacing, spacing]
    dataset.FrameIncrementPointer = pydicom.tag.Tag("EnergyWindowVector")
    dataset.EnergyWindowVector = list(range(1, counts.shape[0] + 1))
    detector = Dataset()
    detector.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    detector.ImagePositionPatient = [0.0, 0.0, 0.0]
    if collimator is not None:
        detector.CollimatorGridName = collimator
    dataset.DetectorInformationSequence = DicomSequence([detector])
    dataset.PixelData = counts.astype("<u2").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_planar_counts_and_spacing_survive_write_and_read(tmp_path: Path) -> None:
    counts = np.random.default_rng(0).poisson(40.0, size=(64, 48)).astype(np.float32)
    image = Image(counts, affine_from_spacing((2.21, 2.21), origin=(-70.0, 50.0)), 2, "nm", {})
    again = read_image(write_image(image, tmp_path / "planar.dcm"))
    assert again.modality == "nm" and again.shape == (64, 48) and again.spacing == pytest.approx((2.21, 2.21))
    np.testing.assert_array_equal(again.numpy(), counts)  # integer counts are stored exactly
    assert again.metadata["dicom"]["Modality"] == "NM"


def test_fractional_counts_keep_their_total(tmp_path: Path) -> None:
    """Restored images hold counts per fine pixel (not integers): a 16-bit rescale keeps the total within 1e-4."""
    counts = (np.random.default_rng(1).gamma(2.0, 3.0, size=(128, 128))).astype(np.float32)
    image = Image(counts, affine_from_spacing((0.55, 0.55)), 2, "nm", {})
    again = read_image(write_image(image, tmp_path / "restored.dcm")).numpy().astype(np.float64)
    step = (counts.max() - counts.min()) / 65535
    assert np.abs(again - counts).max() <= step / 2 + 1e-6 * counts.max()
    assert again.sum() == pytest.approx(counts.astype(np.float64).sum(), rel=1e-4)


def test_multi_frame_nm_counts_and_spacing_survive_read_write_read(tmp_path: Path) -> None:
    counts = np.random.default_rng(2).poisson(25.0, size=(3, 16, 20)).astype(np.uint16)
    source = read_image(nm_multi_frame_file(tmp_path / "windows.dcm", counts, 4.42))
    assert source.modality == "nm" and source.shape == (3, 16, 20)
    assert source.spacing[1:] == pytest.approx((4.42, 4.42))
    np.testing.assert_array_equal(source.numpy(), counts)
    again = read_image(write_image(source, tmp_path / "copy.dcm"))
    assert again.modality == "nm" and again.shape == (3, 16, 20) and again.spacing[1:] == pytest.approx((4.42, 4.42))
    np.testing.assert_array_equal(again.numpy(), counts)
    assert [float(frame.sum()) for frame in again.numpy()] == [float(frame.sum()) for frame in counts]
