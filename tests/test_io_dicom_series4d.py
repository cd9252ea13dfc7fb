"""gzip-compressed DICOM and classic multi-file series with time points (→ 4-D).

Geometry and values are checked against dcm2niix (Debian package, an independent DICOM →
NIfTI converter) on the real Philips 3 T series of ../shared/data/mri-philips-3t; dcm2niix
cannot read gzip, so the tests decompress the files with Python's gzip module first.
"""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pydicom.uid
import pytest
from pydicom.dataset import Dataset

from dicom_helpers import dcm2niix_volume, new_dataset
from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.io import detect_format, read_image, write_image

PHILIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri-philips-3t"
FMRI_SLICES, FMRI_TIMES = 63, 75


def philips_folder(name: str) -> Path:
    folder = PHILIPS / name
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is not present")
    return folder


def gunzip_files(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file.name.removesuffix(".gz")).write_bytes(gzip.decompress(file.read_bytes()))
    return folder


def compare_with_reference(data: np.ndarray, affine: np.ndarray, reference: nibabel.Nifti1Image) -> tuple[float, float]:
    """``(max |Δ affine|, max |Δ value|)`` after reorienting both to the closest RAS+ axes.

    Our voxel order (slice, row, column) differs from dcm2niix's; nibabel's reorientation
    only permutes and flips axes, so equal grids give equal affines and arrays.
    """
    ours = nibabel.as_closest_canonical(nibabel.Nifti1Image(data, affine))
    theirs = nibabel.as_closest_canonical(reference)
    assert ours.shape == theirs.shape
    affine_error = float(np.abs(ours.affine - theirs.affine).max())
    value_error = float(np.abs(ours.get_fdata() - theirs.get_fdata()).max())
    return affine_error, value_error


@pytest.mark.shared_data
def test_single_gzip_file_is_detected_and_read_in_memory(tmp_path: Path) -> None:
    source = philips_folder("mprage") / "1301_0085.dcm.gz"
    digest = sha256_file(source)
    assert detect_format(source) == "dicom"
    image = read_image(source)
    plain = tmp_path / "slice.dcm"
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    reference = pydicom.dcmread(plain)
    expected = reference.pixel_array * float(reference.RescaleSlope) + float(reference.RescaleIntercept)
    assert image.shape == (256, 256) and image.modality == "mri"
    np.testing.assert_allclose(image.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(image.affine, read_image(plain).affine)
    assert sha256_file(source) == digest and sorted(path.name for path in tmp_path.iterdir()) == ["slice.dcm"]
    # A ``.gz`` without ``.dcm`` is judged by its decompressed content.
    renamed = tmp_path / "slice.gz"
    shutil.copyfile(source, renamed)
    assert detect_format(renamed) == "dicom"


def test_corrupt_gzip_dicom_names_the_file(tmp_path: Path) -> None:
    dataset = _dataset(4, 4)
    dataset.PixelData = np.arange(16, dtype="<i2").tobytes()
    plain = tmp_path / "plain.dcm"
    dataset.save_as(plain, enforce_file_format=True)
    compressed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.dcm.gz"
    cut.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(InputError, match=r"cut\.dcm\.gz") as error:
        read_image(cut)
    assert "\n" not in str(error.value)
    not_dicom = tmp_path / "notes.dcm.gz"
    not_dicom.write_bytes(gzip.compress(b"plain text, not DICOM" * 20))
    with pytest.raises(InputError, match=r"notes\.dcm\.gz: content is not valid DICOM"):
        read_image(not_dicom)


@pytest.mark.shared_data
def test_mprage_gzip_series_matches_dcm2niix(tmp_path: Path) -> None:
    folder = philips_folder("mprage")
    image = read_image(folder)
    assert image.shape == (170, 256, 256) and image.spatial_ndim == 3 and image.modality == "mri"
    assert image.spacing == pytest.approx((1.0, 1.0, 1.0), abs=1e-3)
    reference = dcm2niix_volume(gunzip_files(sorted(folder.glob("*.dcm.gz")), tmp_path / "plain"), tmp_path / "out")
    affine_error, value_error = compare_with_reference(image.numpy(), image.affine, reference)
    assert affine_error < 1e-3  # mm (dcm2niix stores the affine in float32)
    assert value_error <= 1e-3 * float(np.abs(image.numpy()).max())


def _fmri_files(times: range) -> list[Path]:
    """Files 2101_NNNN.dcm.gz of the given time points (the series numbers time fastest)."""
    folder = philips_folder("fmri")
    numbers = [slice_index * FMRI_TIMES + t + 1 for slice_index in range(FMRI_SLICES) for t in times]
    return [folder / f"2101_{number:04d}.dcm.gz" for number in numbers]


@pytest.mark.shared_data
def test_fmri_time_points_form_4d_matching_dcm2niix(tmp_path: Path) -> None:
    files = _fmri_files(range(3))
    subset = tmp_path / "subset"
    subset.mkdir()
    for file in files:
        shutil.copyfile(file, subset / file.name)
    image = read_image(subset)
    assert image.shape == (FMRI_SLICES, 96, 96, 3) and image.spatial_ndim == 3
    assert image.metadata["dicom_time_order"] == "TemporalPositionIdentifier"
    assert image.spacing == pytest.approx((2.5, 2.26041675, 2.26041675), rel=1e-5)
    first_names = image.metadata["dicom_files"][:3]
    assert [pydicom.dcmread(gzip.open(subset / name)).TemporalPositionIdentifier for name in first_names] == [1, 2, 3]
    reference = dcm2niix_volume(gunzip_files(files, tmp_path / "plain"), tmp_path / "out")
    assert reference.shape == (96, 96, FMRI_SLICES, 3)
    affine_error, value_error = compare_with_reference(image.numpy(), image.affine, reference)
    assert affine_error < 1e-3 and value_error <= 1e-3 * float(np.abs(image.numpy()).max())


@pytest.mark.slow
@pytest.mark.shared_data
def test_whole_fmri_series_matches_dcm2niix(tmp_path: Path) -> None:
    folder = philips_folder("fmri")
    start = time.perf_counter()
    image = read_image(folder)
    seconds = time.perf_counter() - start
    assert image.shape == (FMRI_SLICES, 96, 96, FMRI_TIMES)
    reference = dcm2niix_volume(gunzip_files(sorted(folder.glob("*.dcm.gz")), tmp_path / "plain"), tmp_path / "out")
    affine_error, value_error = compare_with_reference(image.numpy(), image.affine, reference)
    assert affine_error < 1e-3 and value_error <= 1e-3 * float(np.abs(image.numpy()).max())
    assert seconds < 120, f"reading 4,725 files took {seconds:.1f} s"


def _dataset(rows: int, columns: int) -> Dataset:
    dataset = new_dataset(pydicom.uid.MRImageStorage, "MR", "", rows, columns, signed=True)
    dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.20"
    dataset.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    dataset.PixelSpacing = [1.5, 1.5]
    return dataset


def write_dynamic_series(folder: Path, volumes: np.ndarray, tag: str, compress: bool) -> None:
    """Files of a (T, slices, rows, cols) series under shuffled names; time told by ``tag`` only.

    InstanceNumber runs against time (except when ``tag`` is InstanceNumber), so a reader that
    orders by anything but ``tag`` gets the time axis wrong.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_times, n_slices = volumes.shape[:2]
    permutation = np.random.default_rng(7).permutation(n_times * n_slices)
    for t in range(n_times):
        for k in range(n_slices):
            dataset = _dataset(*volumes.shape[2:])
            dataset.ImagePositionPatient = [0.0, 0.0, 4.0 * k]
            dataset.InstanceNumber = (t + 1) * 100 + k if tag == "InstanceNumber" else (n_times - t) * 100 + k
            if tag == "TemporalPositionIdentifier":
                dataset.TemporalPositionIdentifier = t + 1
            elif tag == "AcquisitionTime":
                dataset.AcquisitionTime = f"0959{58 + 2 * t:02d}.5" if t < 1 else f"1000{2 * t - 2:02d}.25"
            elif tag == "TriggerTime":
                dataset.TriggerTime = 35.0 * t
            dataset.PixelData = volumes[t, k].astype("<i2").tobytes()
            name = folder / f"f{permutation[t * n_slices + k]:03d}.dcm"
            dataset.save_as(name, enforce_file_format=True)
            if compress:
                name.with_name(name.name + ".gz").write_bytes(gzip.compress(name.read_bytes()))
                name.unlink()


@pytest.mark.parametrize(
    ("tag", "compress"),
    [("TemporalPositionIdentifier", True), ("AcquisitionTime", False), ("TriggerTime", True), ("InstanceNumber", False)],
)
def test_dynamic_series_is_4d_ordered_in_time(tmp_path: Path, tag: str, compress: bool) -> None:
    volumes = np.random.default_rng(8).integers(-300, 3000, size=(4, 5, 3, 6)).astype(np.int16)
    write_dynamic_series(tmp_path / "dynamic", volumes, tag, compress)
    image = read_image(tmp_path / "dynamic")
    assert image.shape == (5, 3, 6, 4) and image.spatial_ndim == 3 and image.n_frames == 4
    np.testing.assert_array_equal(image.numpy(), np.moveaxis(volumes, 0, -1))
    assert image.metadata["dicom_time_order"] == tag
    assert image.spacing == pytest.approx((4.0, 1.5, 1.5))


def test_dynamic_series_with_a_missing_time_point_is_refused(tmp_path: Path) -> None:
    volumes = np.zeros((3, 4, 2, 2), dtype=np.int16)
    write_dynamic_series(tmp_path / "dynamic", volumes, "TemporalPositionIdentifier", compress=False)
    victim = next(
        path for path in (tmp_path / "dynamic").iterdir() if pydicom.dcmread(path).ImagePositionPatient[2] == 8.0
    )
    victim.unlink()
    with pytest.raises(InputError, match="repeat unevenly"):
        read_image(tmp_path / "dynamic")


@pytest.mark.shared_data
def test_fmri_written_as_series_reads_back_and_matches_dcm2niix(tmp_path: Path) -> None:
    subset = tmp_path / "subset"
    subset.mkdir()
    for file in _fmri_files(range(2)):
        shutil.copyfile(file, subset / file.name)
    source = read_image(subset)
    restored = source.with_data(source.data * 0.9 + 0.3).with_metadata(derivation="Restored")
    written = write_image(restored, tmp_path / "restored")
    files = sorted(written.iterdir())
    assert len(files) == FMRI_SLICES * 2
    last = pydicom.dcmread(files[-1])
    assert last.SOPClassUID == pydicom.uid.MRImageStorage and last.TemporalPositionIdentifier == 2
    assert last.NumberOfTemporalPositions == 2 and last.DerivationDescription.startswith("Restored")
    again = read_image(written)
    values = restored.numpy().astype(np.float64)
    half_step = (values.max() - values.min()) / 65535 / 2
    assert again.shape == restored.shape and again.metadata["dicom_time_order"] == "TemporalPositionIdentifier"
    assert np.abs(again.numpy() - values).max() <= half_step * 1.01 + 1e-3
    np.testing.assert_allclose(again.affine, restored.affine, atol=1e-4)
    reference = dcm2niix_volume(written, tmp_path / "out")
    assert reference.shape == (96, 96, FMRI_SLICES, 2)
    affine_error, value_error = compare_with_reference(restored.numpy(), restored.affine, reference)
    assert affine_error < 1e-3 and value_error <= half_step * 1.01 + 1e-3


def test_time_series_needs_a_series_folder(tmp_path: Path) -> None:
    volumes = np.random.default_rng(9).integers(0, 500, size=(3, 4, 3, 5)).astype(np.int16)
    write_dynamic_series(tmp_path / "dynamic", volumes, "TriggerTime", compress=False)
    image = read_image(tmp_path / "dynamic")
    again = read_image(write_image(image, tmp_path / "copy"))
    np.testing.assert_array_equal(again.numpy(), image.numpy())
    with pytest.raises(InputError, match=r"time series .* not as one multi-frame object"):
        write_image(image, tmp_path / "copy.dcm")
