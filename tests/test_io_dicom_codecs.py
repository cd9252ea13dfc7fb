"""Compressed transfer syntaxes (JPEG Lossless, JPEG-LS, 12-bit JPEG Extended, JPEG 2000, RLE),
broken pixel data, and dual-personality TIFF/DICOM files.

References are independent of our reader: pydicom's own test files with their uncompressed
twins (decoded by pydicom's native reader), the pixel values pydicom's test suite publishes
for files without a twin (``tests/pixels/pixels_reference.py`` of pydicom 3.0), and dcm2niix
(built with OpenJPEG) for JPEG 2000. pydicom files are taken from the installed package only:
a missing file skips (never downloaded).
"""

from __future__ import annotations

import struct
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pydicom.encaps
import pydicom.uid
import pytest
import tifffile

from dicom_helpers import available, dcm2niix_volume, new_dataset
from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.io import detect_format, read_image

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pydicom_file(name: str) -> Path:
    return available(PYDICOM_FILES / name, "pydicom test file")


def twin_values(name: str) -> np.ndarray:
    """Uncompressed twin decoded by pydicom itself, with the modality rescale applied."""
    dataset = pydicom.dcmread(pydicom_file(name))
    values = dataset.pixel_array.astype(np.float64)
    if values.ndim == 3 and values.shape[-1] == 3:
        values = values @ np.array([0.299, 0.587, 0.114])
    return values * float(dataset.get("RescaleSlope", 1.0)) + float(dataset.get("RescaleIntercept", 0.0))


@pytest.mark.parametrize(
    ("compressed", "twin", "syntax"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", pydicom.uid.JPEGLSLossless),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm", pydicom.uid.JPEG2000Lossless),
        ("MR_small_RLE.dcm", "MR_small.dcm", pydicom.uid.RLELossless),
        ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm", pydicom.uid.JPEGLosslessSV1),
    ],
)
def test_lossless_syntaxes_equal_their_uncompressed_twin(compressed: str, twin: str, syntax: str) -> None:
    path = pydicom_file(compressed)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    digest = sha256_file(path)
    image = read_image(path)
    np.testing.assert_allclose(image.numpy(), twin_values(twin), rtol=0, atol=1e-4)
    assert sha256_file(path) == digest


def _near_parameter(path: Path) -> int:
    """NEAR of the first JPEG-LS scan (ISO/IEC 14495-1 C.2.3: SOS ... NEAR, ILV, Al/Ah)."""
    dataset = pydicom.dcmread(path)
    frame = next(pydicom.encaps.generate_frames(dataset.PixelData, number_of_frames=1))
    start = frame.index(b"\xff\xda")
    components = frame[start + 4]
    return frame[start + 5 + 2 * components]


@pytest.mark.parametrize(
    ("name", "reference_rows", "pattern"),
    [
        # pydicom's published values at rows 0, 5, 10...; the files hold bands of 5 rows of 2^b − 1.
        ("JPEGLSNearLossless_08.dcm", [255, 125, 65, 30, 15, 5, 5, 0, 0], [255, 127, 63, 31, 15, 7, 3, 1, 0]),
        (
            "JPEGLSNearLossless_16.dcm",
            [65535, 32765, 16385, 4095, 1025, 255, 65, 15, 5],
            [65535, 32767, 16383, 4095, 1023, 255, 63, 15, 3, 0],
        ),
    ],
)
def test_jpeg_ls_near_lossless_within_its_declared_error(
    name: str, reference_rows: list[int], pattern: list[int]
) -> None:
    path = pydicom_file(name)
    image = read_image(path)
    values = image.numpy()
    assert values[0 : 5 * len(reference_rows) : 5, 0].tolist() == reference_rows
    near = _near_parameter(path)
    assert near == 2
    original = np.repeat(np.asarray(pattern, dtype=np.float64), 5)[:, np.newaxis]
    assert np.abs(values - original).max() <= near


def test_jpeg_extended_12_bit() -> None:
    image = read_image(pydicom_file("JPGExtended.dcm"))
    assert image.shape == (1024, 256) and image.metadata["dtype"] == "uint16"
    values = image.numpy()
    assert values[420, 140] == 244 and values[230, 120] == 95  # pydicom's reference values
    assert 0 <= values.min() and values.max() < 2**12


def test_jpeg_2000_matches_dcm2niix(tmp_path: Path) -> None:
    # 693_J2KI.dcm (CT) has a patient orientation: compare on the RAS+ grid, affine included.
    path = pydicom_file("693_J2KI.dcm")
    image = read_image(path)
    ours = nibabel.as_closest_canonical(nibabel.Nifti1Image(image.numpy()[..., np.newaxis], image.affine))
    theirs = nibabel.as_closest_canonical(dcm2niix_volume(path, tmp_path / "ct"))
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())
    np.testing.assert_allclose(ours.affine[:3, [0, 1, 3]], theirs.affine[:3, [0, 1, 3]], atol=1e-3)
    # JPEG2000.dcm (NM) has none: compare pixels; dcm2niix stores columns first, rows bottom-up.
    path = pydicom_file("JPEG2000.dcm")
    stored = np.asanyarray(dcm2niix_volume(path, tmp_path / "nm").dataobj)[:, :, 0]
    np.testing.assert_array_equal(read_image(path).numpy(), np.flipud(stored.T))


def test_jpeg_2000_sign_mismatch_reference_values() -> None:
    values = read_image(pydicom_file("J2K_pixelrep_mismatch.dcm")).numpy()
    assert values[0, 0] == -2000
    assert values[47:57, 279].tolist() == [621, 412, 138, -193, -520, -767, -907, -966, -988, -995]


@pytest.mark.parametrize(
    "name", ["JPEG-lossy.dcm", "MR_truncated.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"]
)
def test_broken_pixel_data_is_one_input_error_naming_the_file(name: str) -> None:
    path = pydicom_file(name)
    with pytest.raises(InputError) as error:
        read_image(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message and "pixel data" in message


def test_compressed_files_in_a_series_folder(tmp_path: Path) -> None:
    """Series files are parsed with a limited set of elements: compressed pixels still decode."""
    source = pydicom.dcmread(pydicom_file("MR_small_jpeg_ls_lossless.dcm"))
    folder = tmp_path / "series"
    folder.mkdir()
    for k in range(3):
        source.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
        source.SOPInstanceUID = pydicom.uid.generate_uid()
        source.InstanceNumber = 3 - k
        source.save_as(folder / f"slice{k}.dcm")
    image = read_image(folder)
    assert image.shape == (3, 64, 64)
    for k in range(3):
        np.testing.assert_array_equal(image.numpy()[k], twin_values("MR_small.dcm"))


def dual_personality_file(path: Path, pixels: np.ndarray) -> Path:
    """A DICOM file whose 128-byte preamble is a TIFF header pointing at the DICOM pixel data
    (PS3.10 7.5), so TIFF readers and DICOM readers see the same image."""
    dataset = new_dataset(pydicom.uid.SecondaryCaptureImageStorage, "MR", "DUAL-1", pixels.shape[0], pixels.shape[1])
    dataset.PixelSpacing = [0.5, 0.5]
    dataset.RescaleSlope, dataset.RescaleIntercept = 2.0, -10.0
    dataset.PixelData = pixels.astype("<u2").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    content = bytearray(path.read_bytes())
    pixel_offset = content.rindex(b"\xe0\x7f\x10\x00") + 12  # tag, VR "OW", 2 reserved, 4-byte length
    entries = [  # (tag, type SHORT=3/LONG=4, value), sorted by tag (TIFF 6.0 section 2)
        (256, 3, pixels.shape[1]), (257, 3, pixels.shape[0]), (258, 3, 16), (259, 3, 1), (262, 3, 1),
        (273, 4, pixel_offset), (277, 3, 1), (278, 3, pixels.shape[0]), (279, 4, pixels.size * 2),
    ]  # fmt: skip
    header = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        field = struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0)
        header += struct.pack("<HHI", tag, kind, 1) + field
    header += struct.pack("<I", 0)
    assert len(header) <= 128
    content[: len(header)] = header
    path.write_bytes(bytes(content))
    return path


@pytest.mark.parametrize("name", ["dual.tif", "dual.tiff", "dual.dcm", "dual"])
def test_dual_personality_file_is_read_as_dicom(tmp_path: Path, name: str) -> None:
    pixels = np.arange(42, dtype=np.uint16).reshape(6, 7) * 100
    path = dual_personality_file(tmp_path / name, pixels)
    np.testing.assert_array_equal(tifffile.imread(path), pixels)  # a TIFF reader sees the same pixels
    assert detect_format(path) == "dicom"
    image = read_image(path)
    assert image.metadata["format"] == "dicom" and image.modality == "mri"
    assert image.metadata["dicom"]["PatientID"] == "DUAL-1" and image.spacing == pytest.approx((0.5, 0.5))
    np.testing.assert_array_equal(image.numpy(), pixels * 2.0 - 10.0)


def test_gzip_dual_personality_from_pydicom() -> None:
    path = pydicom_file("zipMR.gz")  # gzip of a DICOM file whose preamble starts with a TIFF header
    assert detect_format(path) == "dicom"
    np.testing.assert_array_equal(read_image(path).numpy(), twin_values("MR_small.dcm"))
