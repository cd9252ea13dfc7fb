"""Format detection (extension + content), bad-file errors, cast_to_dtype, read-only inputs."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import nibabel
import numpy as np
import PIL.Image
import pytest
import tifffile

from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.core.image import Image
from medrestore.io import cast_to_dtype, detect_format, read_image, write_image
from medrestore.io.detect import output_format


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def sample_files(tmp_path: Path) -> dict[str, Path]:
    """One small valid file per format."""
    plane = np.arange(12, dtype=np.uint8).reshape(3, 4)
    files = {
        "nifti": tmp_path / "a.nii.gz",
        "tiff": tmp_path / "a.tif",
        "png": tmp_path / "a.png",
        "jpeg": tmp_path / "a.jpg",
        "npy": tmp_path / "a.npy",
        "npz": tmp_path / "a.npz",
    }
    nibabel.save(nibabel.Nifti1Image(plane.astype(np.float32)[..., None], np.eye(4)), files["nifti"])
    tifffile.imwrite(files["tiff"], plane)
    files["png"].write_bytes(_png_bytes())
    PIL.Image.fromarray(plane).save(files["jpeg"], format="JPEG")
    np.save(files["npy"], plane)
    np.savez(files["npz"], data=plane)
    return files


def test_detects_every_format_by_extension_and_content(sample_files: dict[str, Path], tmp_path: Path) -> None:
    for format_name, path in sample_files.items():
        assert detect_format(path) == format_name
        bare = tmp_path / f"noext_{format_name}"
        shutil.copyfile(path, bare)
        assert detect_format(bare) == format_name  # content alone
    assert detect_format(tmp_path) == "dicom-series"


def test_reading_never_changes_inputs(sample_files: dict[str, Path]) -> None:
    for path in sample_files.values():
        before = sha256_file(path)
        read_image(path)
        assert sha256_file(path) == before


def test_missing_empty_and_misnamed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing\.nii.*not found"):
        read_image(tmp_path / "nothing.nii")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.npy.*empty \(0 bytes\)"):
        read_image(tmp_path / "empty.npy")
    (tmp_path / "photo.nii").write_bytes(_png_bytes())
    with pytest.raises(InputError, match=r"photo\.nii: content is PNG but the extension says NIfTI"):
        read_image(tmp_path / "photo.nii")
    (tmp_path / "notnifti.nii.gz").write_bytes(gzip.compress(b"hello world" * 10))
    with pytest.raises(InputError, match=r"notnifti\.nii\.gz.*gzip data that is not NIfTI"):
        read_image(tmp_path / "notnifti.nii.gz")
    (tmp_path / "random.bin").write_bytes(b"\x01\x02\x03" * 100)
    with pytest.raises(InputError, match=r"random\.bin.*unrecognised"):
        read_image(tmp_path / "random.bin")
    (tmp_path / "garbage.tif").write_bytes(b"\x01\x02\x03" * 100)
    with pytest.raises(InputError, match=r"garbage\.tif.*not valid TIFF"):
        read_image(tmp_path / "garbage.tif")


def test_output_format_from_destination(tmp_path: Path) -> None:
    assert output_format(tmp_path / "x.nii.gz") == "nifti"
    assert output_format(tmp_path / "x.DCM") == "dicom"
    assert output_format(tmp_path / "series") == "dicom-series"
    assert output_format(str(tmp_path / "series.v2") + "/") == "dicom-series"
    with pytest.raises(InputError, match=r"unknown output extension '\.xyz'"):
        output_format(tmp_path / "x.xyz")


def test_cast_to_dtype_clips_and_rounds() -> None:
    values = np.array([-3.0, 0.4, 2.5, 3.5, 254.6, 300.0, np.inf])
    np.testing.assert_array_equal(cast_to_dtype(values, "uint8"), np.array([0, 0, 2, 4, 255, 255, 255], np.uint8))
    np.testing.assert_array_equal(cast_to_dtype(values, np.int16), np.array([-3, 0, 2, 4, 255, 300, 32767], np.int16))
    np.testing.assert_array_equal(cast_to_dtype(np.array([-5, 70000]), "uint16"), np.array([0, 65535], np.uint16))
    big = cast_to_dtype(np.array([1e40, -1e40, np.nan]), "float32")
    assert big[0] == np.finfo(np.float32).max and big[1] == -np.finfo(np.float32).max and np.isnan(big[2])
    # float64 cannot hold 2**63 - 1: the clip stops at the largest float64 below it
    assert cast_to_dtype(np.array([1e30]), "int64")[0] == 2**63 - 1024
    with pytest.raises(InputError, match="NaN"):
        cast_to_dtype(np.array([np.nan]), "uint8")
    with pytest.raises(InputError, match="complex"):
        cast_to_dtype(np.ones(2), "complex64")


def test_write_dtype_source_requires_recorded_dtype(tmp_path: Path) -> None:
    image = Image.from_array(np.ones((2, 2), np.float32))
    with pytest.raises(InputError, match=r"no recorded source dtype"):
        write_image(image, tmp_path / "x.npy", dtype="source")
