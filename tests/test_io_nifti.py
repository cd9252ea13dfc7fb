"""NIfTI reading/writing: data, affine, 4-D, header fields, scaling, bad files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.core.image import Image, planar_frames, planar_stack_axis
from medrestore.io import read_image, write_image


def oblique_affine(spacing: tuple[float, float, float], origin: tuple[float, float, float]) -> np.ndarray:
    """Rotation about an oblique axis (30° around (1, 2, 3)/‖·‖) times diag(spacing), plus origin."""
    axis = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    angle = np.deg2rad(30.0)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(0).normal(100.0, 20.0, size=(6, 7, 5)).astype(np.float32)


def test_3d_float_round_trip_keeps_data_and_oblique_affine(tmp_path: Path, volume: np.ndarray) -> None:
    affine = oblique_affine((0.8, 0.9, 2.5), (-20.5, 31.25, 12.0))
    source = tmp_path / "in.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, affine), source)
    image = read_image(source)
    assert image.shape == (6, 7, 5) and image.spatial_ndim == 3 and image.modality == "mri"
    assert image.metadata["format"] == "nifti" and image.metadata["dtype"] == "float32"
    np.testing.assert_array_equal(image.numpy(), volume)
    np.testing.assert_allclose(image.affine, affine, atol=1e-5)
    np.testing.assert_allclose(image.spacing, (0.8, 0.9, 2.5), atol=1e-6)

    written = write_image(image, tmp_path / "out.nii.gz")
    again = read_image(written)
    np.testing.assert_allclose(again.numpy(), volume, atol=1e-6)
    np.testing.assert_allclose(again.affine, affine, atol=1e-5)
    assert nibabel.load(written).get_data_dtype() == np.float32


def test_integer_source_dtype_round_trip_is_exact(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(-3000, 3000, size=(5, 4, 3)).astype(np.int16)
    source = tmp_path / "ct.nii"
    nibabel.save(nibabel.Nifti1Image(values, np.diag([0.5, 0.5, 1.0, 1.0])), source)
    image = read_image(source, modality="ct")
    assert image.metadata["dtype"] == "int16" and image.modality == "ct"
    written = write_image(image, tmp_path / "ct_out.nii", dtype="source")
    stored = nibabel.load(written)
    assert stored.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(stored.dataobj), values)
    assert read_image(written).modality == "ct"  # travels in a header extension


def test_4d_time_axis_and_header_fields_survive(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    series = rng.random((4, 5, 3, 6)).astype(np.float32)
    affine = oblique_affine((2.0, 2.0, 3.0), (1.0, 2.0, 3.0))
    nifti = nibabel.Nifti1Image(series, affine)
    header = nifti.header
    header["descrip"] = b"resting state run 1"
    header.set_xyzt_units("mm", "sec")
    header.set_zooms((*header.get_zooms()[:3], 2.5))
    header.set_intent("t test", (12.0,), name="tstat")
    header.set_dim_info(slice=2)
    nifti.set_qform(affine, code=1)
    nifti.set_sform(affine, code=4)
    source = tmp_path / "bold.nii.gz"
    nibabel.save(nifti, source)

    image = read_image(source)
    assert image.shape == (4, 5, 3, 6) and image.spatial_ndim == 3 and image.n_frames == 6
    assert image.metadata["nifti"]["repetition_time"] == pytest.approx(2.5)
    assert image.metadata["nifti"]["descrip"] == "resting state run 1"
    json.dumps({key: value for key, value in image.metadata.items() if key != "nifti_header"})

    restored = image.with_data(image.data * 2.0)
    written = write_image(restored, tmp_path / "bold_restored.nii.gz")
    result = nibabel.load(written)
    assert bytes(result.header["descrip"]).rstrip(b"\x00") == b"resting state run 1"
    assert result.header.get_zooms()[3] == pytest.approx(2.5)
    assert result.header.get_xyzt_units() == ("mm", "sec")
    assert result.header.get_intent() == ("t test", (12.0,), "tstat")
    assert result.header.get_dim_info() == (None, None, 2)
    assert int(result.header["qform_code"]) == 1 and int(result.header["sform_code"]) == 4
    np.testing.assert_allclose(np.asarray(result.dataobj), series * 2.0, atol=1e-6)
    np.testing.assert_allclose(result.affine, affine, atol=1e-5)


def test_2d_nifti(tmp_path: Path) -> None:
    plane = np.arange(12, dtype=np.float32).reshape(3, 4)
    source = tmp_path / "plane.nii"
    nibabel.save(nibabel.Nifti1Image(plane, np.diag([0.3, 0.7, 1.0, 1.0])), source)
    image = read_image(source)
    assert image.spatial_ndim == 2 and image.shape == (3, 4)
    assert image.spacing == pytest.approx((0.3, 0.7))
    again = read_image(write_image(image, tmp_path / "plane_out.nii.gz"))
    assert again.spatial_ndim == 2
    np.testing.assert_array_equal(again.numpy(), plane)


def test_scl_slope_applied_and_recorded(tmp_path: Path) -> None:
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nifti = nibabel.Nifti1Image(raw, np.eye(4))
    nifti.header.set_slope_inter(0.5, 10.0)
    source = tmp_path / "scaled.nii"
    nibabel.save(nifti, source)
    image = read_image(source)
    np.testing.assert_allclose(image.numpy(), raw * 0.5 + 10.0)
    assert image.metadata["nifti"]["scl_slope"] == 0.5 and image.metadata["nifti"]["scl_inter"] == 10.0
    assert image.metadata["dtype"] == "int16"
    # Non-integer values into the int16 source type: nibabel fits a new slope.
    written = write_image(image, tmp_path / "scaled_out.nii", dtype="source")
    assert nibabel.load(written).get_data_dtype() == np.int16
    np.testing.assert_allclose(read_image(written).numpy(), raw * 0.5 + 10.0, atol=1e-3)


def test_truncated_nii_gz_names_the_file(tmp_path: Path, volume: np.ndarray) -> None:
    complete = tmp_path / "complete.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), complete)
    payload = complete.read_bytes()
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz.*truncated"):
        read_image(truncated)


def test_written_nii_gz_is_plain_gzip_that_nibabel_and_zlib_read(tmp_path: Path, volume: np.ndarray) -> None:
    written = write_image(Image(torch.from_numpy(volume), affine=np.eye(4), spatial_ndim=3), tmp_path / "out.nii.gz")
    assert written.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(np.asarray(nibabel.load(written).dataobj), volume)
    raw = gzip.decompress(written.read_bytes())  # the standard library's zlib reads it too
    np.testing.assert_array_equal(np.asarray(nibabel.Nifti1Image.from_bytes(raw).dataobj), volume)


def test_multi_member_gzip_reads_and_trailing_bytes_are_named_corrupt(tmp_path: Path, volume: np.ndarray) -> None:
    complete = tmp_path / "complete.nii"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), complete)
    payload = complete.read_bytes()
    members = tmp_path / "members.nii.gz"  # as bgzip or a concatenation of gzip files writes it
    members.write_bytes(gzip.compress(payload[:200]) + gzip.compress(payload[200:]))
    np.testing.assert_array_equal(read_image(members).numpy(), volume)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(gzip.compress(payload) + b"junk")
    with pytest.raises(InputError, match=r"junk\.nii\.gz.*corrupt gzip"):
        read_image(junk)


def test_truncated_uncompressed_nii(tmp_path: Path, volume: np.ndarray) -> None:
    complete = tmp_path / "complete.nii"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), complete)
    truncated = tmp_path / "cut.nii"
    truncated.write_bytes(complete.read_bytes()[:-40])
    with pytest.raises(InputError, match=r"cut\.nii.*truncated"):
        read_image(truncated)


def test_corrupt_header_and_complex_data(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"\x00" * 400))
    with pytest.raises(InputError, match=r"corrupt\.nii\.gz"):
        read_image(corrupt)
    complex_file = tmp_path / "kspace.nii"
    nibabel.save(nibabel.Nifti1Image(np.ones((2, 2, 2), np.complex64), np.eye(4)), complex_file)
    with pytest.raises(InputError, match=r"kspace\.nii.*complex"):
        read_image(complex_file)


def test_nan_refused_unless_allowed(tmp_path: Path, volume: np.ndarray) -> None:
    volume = volume.copy()
    volume[1, 2, 3] = np.nan
    source = tmp_path / "nan.nii"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), source)
    with pytest.raises(InputError, match=r"nan\.nii.*1 NaN"):
        read_image(source)
    assert np.isnan(read_image(source, nonfinite="keep").numpy()[1, 2, 3])


def test_reading_leaves_input_unchanged_and_write_is_atomic(tmp_path: Path, volume: np.ndarray) -> None:
    source = tmp_path / "keep.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), source)
    before = sha256_file(source)
    image = read_image(source)
    assert sha256_file(source) == before
    with pytest.raises(InputError):
        write_image(image, tmp_path / "bad.nii", dtype="complex64")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.nii.gz"]


def test_image_without_nifti_header_gets_fresh_codes(tmp_path: Path) -> None:
    image = Image.from_array(np.ones((3, 4, 5), np.float32), spacing=(1.5, 2.0, 2.5))
    written = write_image(image, tmp_path / "fresh.nii.gz")
    header = nibabel.load(written).header
    assert int(header["sform_code"]) == 2 and int(header["qform_code"]) == 2
    assert header.get_xyzt_units() == ("mm", "sec")
    half = image.to(dtype=torch.bfloat16)  # a dtype NumPy lacks is written as float32
    np.testing.assert_array_equal(read_image(write_image(half, tmp_path / "half.nii")).numpy(), np.ones((3, 4, 5)))
    assert header.get_zooms() == pytest.approx((1.5, 2.0, 2.5))


def test_nifti2_round_trip(tmp_path: Path, volume: np.ndarray) -> None:
    affine = oblique_affine((1.0, 1.2, 1.4), (5.0, 6.0, 7.0))
    nibabel.save(nibabel.Nifti2Image(volume, affine), tmp_path / "v2.nii")
    image = read_image(tmp_path / "v2.nii")
    assert image.metadata["nifti"]["version"] == 2 and len(image.metadata["nifti_header"]) == 540
    written = write_image(image, tmp_path / "v2_out.nii.gz")
    assert isinstance(nibabel.load(written), nibabel.Nifti2Image)
    np.testing.assert_array_equal(read_image(written).numpy(), volume)
    np.testing.assert_allclose(read_image(written).affine, affine, atol=1e-6)


def test_the_sidecar_dcm2niix_writes_gives_the_modality(tmp_path: Path) -> None:
    """dcm2niix's BIDS JSON: ``Modality`` where it writes one, else an NM ``ImageType`` (it omits ``Modality`` for
    gamma-camera files); a file without a sidecar, or with one saying neither, stays ``mri``."""
    image = Image(np.ones((4, 5), np.float32), np.eye(4), 2, "mri", {})
    cases = {
        "ct.nii.gz": ({"Modality": "CT"}, "ct"),
        "bone.nii": ({"ImageType": ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]}, "nm"),
        "t1.nii.gz": ({"ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"]}, "mri"),
        "broken.nii.gz": ("{not json", "mri"),
    }
    for name, (sidecar, expected) in cases.items():
        path = write_image(image, tmp_path / name)
        stem = name.removesuffix(".gz").removesuffix(".nii")
        (tmp_path / f"{stem}.json").write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar))
        read = read_image(path)
        assert read.modality == expected, name
        assert ("modality_source" in read.metadata) == (expected != "mri")
    assert read_image(write_image(image, tmp_path / "alone.nii.gz")).modality == "mri"
    stored = write_image(Image(np.ones((4, 5), np.float32), np.eye(4), 2, "oct", {}), tmp_path / "oct.nii.gz")
    (tmp_path / "oct.json").write_text(json.dumps({"Modality": "CT"}))
    assert read_image(stored).modality == "oct"  # the file's own record wins


def test_a_stack_read_first_axis_first_keeps_its_stack_axis_through_nifti(tmp_path: Path) -> None:
    """A DICOM/NumPy stack of planar frames ``(F, H, W)`` with equal spacings everywhere is written with dim_info's
    slice axis 0, so it reads back as the same stack; a NIfTI's own ``(i, j, k)`` stack is along k."""
    stack = np.random.default_rng(0).poisson(5.0, size=(3, 8, 10)).astype(np.float32)
    source = tmp_path / "stack.npy"
    np.save(source, stack)
    image = read_image(source)
    assert planar_stack_axis(image) == 0
    again = read_image(write_image(image, tmp_path / "stack.nii.gz"))
    assert nibabel.load(tmp_path / "stack.nii.gz").header.get_dim_info()[2] == 0
    assert planar_stack_axis(again) == 0 and torch.equal(planar_frames(again)[0], planar_frames(image)[0])
    plain = nibabel.Nifti1Image(stack.transpose(2, 1, 0).copy(), np.diag([2.0, 2.0, 1.0, 1.0]))  # (x, y, frames)
    nibabel.save(plain, tmp_path / "converted.nii")
    converted = read_image(tmp_path / "converted.nii")
    frames, axes = planar_frames(converted)
    assert planar_stack_axis(converted) == 2 and axes == (0, 1) and frames.shape == (3, 10, 8)
    iso = nibabel.Nifti1Image(stack.transpose(2, 1, 0).copy(), np.eye(4))
    nibabel.save(iso, tmp_path / "iso.nii")
    assert planar_stack_axis(read_image(tmp_path / "iso.nii")) == 2  # equal spacings: the format's convention
