"""The formats other neuroimaging tools write (NIfTI/Analyze pairs, MGH/MGZ, MINC, PAR/REC, AFNI): read through nibabel
with its geometry, refused as outputs, each pair counted once in a batch."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.io import read_image, write_image
from medrestore.io.detect import detect_format
from medrestore.io.inventory import find_inputs

NIBABEL_DATA = Path(importlib.util.find_spec("nibabel").origin).parent / "tests" / "data"  # type: ignore[union-attr, arg-type]
FILES = {
    "test.mgz": "mgh", "minc1_1_scale.mnc": "minc", "minc1_4d.mnc": "minc", "minc2_4d.mnc": "minc", "minc2-4d-d.mnc": "minc",
    "small.mnc": "minc", "phantom_EPI_asc_CLEAR_2_1.PAR": "parrec", "phantom_EPI_asc_CLEAR_2_1.REC": "parrec",
    "phantom_varscale.PAR": "parrec", "example4d+orig.HEAD": "afni", "example4d+orig.BRIK.gz": "afni", "scaled+tlrc.HEAD": "afni",
}  # fmt: skip


def _time_last(path: Path, array: np.ndarray) -> np.ndarray:
    """nibabel's array with MINC's ``time`` dimension moved last (as medrestore orders axes)."""
    minc = getattr(nib.load(path).dataobj, "minc_file", None)
    names = [str(name) for name in getattr(minc, "_dim_names", ())]
    return np.moveaxis(array, names.index("time"), -1) if "time" in names else array


@pytest.mark.parametrize(("name", "format_name"), FILES.items())
def test_nibabels_own_files_read_with_its_values_and_geometry(name: str, format_name: str) -> None:
    """Every value (scaling applied) and the RAS+ affine are nibabel's; a 4th axis (frames, dynamics, sub-bricks, MINC's
    time) comes last."""
    path = NIBABEL_DATA / name
    reference = nib.load(path)
    expected = _time_last(path, np.asarray(reference.dataobj, dtype=np.float64))
    image = read_image(path)
    assert image.metadata["format"] == format_name == detect_format(path) and image.modality == "mri"
    assert image.shape == expected.shape
    np.testing.assert_allclose(image.data.numpy(), expected.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-5)


def test_minc_time_axis_is_moved_last_and_keeps_the_spatial_affine() -> None:
    image = read_image(NIBABEL_DATA / "minc1_4d.mnc")  # dimensions (time, zspace, yspace, xspace) = (2, 10, 20, 20)
    assert image.shape == (10, 20, 20, 2) and image.spatial_ndim == 3
    assert image.spacing == pytest.approx((2.0, 2.0, 2.0))


def test_nifti_and_analyze_pairs_read_from_either_file(tmp_path: Path) -> None:
    """A pair written by nibabel (as SPM or FSL's NIFTI_PAIR write it), and an Analyze 7.5 pair (no NIfTI magic)."""
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    affine = np.diag([1.5, 2.0, 2.5, 1.0])
    affine[:3, 3] = (-3.0, 4.0, 5.0)
    nib.Nifti1Pair(data, affine).to_filename(tmp_path / "brain.hdr")
    nib.AnalyzeImage(data, np.diag([1.5, 2.0, 2.5, 1.0])).to_filename(tmp_path / "oasis.hdr")
    for name in ("brain.hdr", "brain.img", "oasis.hdr", "oasis.img"):
        image = read_image(tmp_path / name)
        assert image.metadata["format"] == "nifti-pair" and image.metadata["dtype"] == "int16"
        np.testing.assert_array_equal(image.data.numpy(), data)
        np.testing.assert_allclose(image.affine, nib.load(tmp_path / name).affine)
    np.testing.assert_allclose(read_image(tmp_path / "brain.hdr").affine, affine)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nifti1.hdr", "is a NIfTI/Analyze .hdr/.img header; its data file nifti1.img is not beside it"),
        ("DTI.PAR", "is a PAR/REC header; its data file DTI.REC is not beside it"),
        ("bad_attribute+orig.HEAD", "is an AFNI .HEAD/.BRIK header; its data file bad_attribute+orig.BRIK is not beside it"),
        ("T1_3echo_mag_real_imag_phase.PAR", "holds several image types (magnitude, real, imaginary, phase)"),
        ("phantom_truncated.REC", "Header inconsistency"),
        ("scaled+tlrc.BRIK", "holds only the voxels"),
    ],
)
def test_incomplete_or_unusable_files_are_named(name: str, message: str, tmp_path: Path) -> None:
    source = NIBABEL_DATA / name
    if name == "T1_3echo_mag_real_imag_phase.PAR":  # its types are checked before any voxel is read
        source = shutil.copy(source, tmp_path / name)
        (tmp_path / "T1_3echo_mag_real_imag_phase.REC").write_bytes(b"")
    if name == "scaled+tlrc.BRIK":  # the data file alone
        source = shutil.copy(source, tmp_path / name)
    with pytest.raises(InputError) as caught:
        read_image(source)
    assert str(source) in str(caught.value) and message in str(caught.value)


def test_a_data_file_without_its_header_and_misnamed_content_are_refused(tmp_path: Path) -> None:
    lone = tmp_path / "lone.img"
    lone.write_bytes(bytes(100))
    with pytest.raises(InputError, match="holds only the voxels of a NIfTI/Analyze .hdr/.img pair; its header lone.hdr is not beside it"):
        read_image(lone)
    fake = tmp_path / "fake.mgz"
    fake.write_bytes(b"not an mgh file at all")
    with pytest.raises(InputError, match="content is not valid MGH/MGZ"):
        read_image(fake)


def test_these_formats_are_read_not_written_and_a_batch_counts_each_pair_once(tmp_path: Path) -> None:
    image = read_image(NIBABEL_DATA / "test.mgz")
    for suffix in (".mgz", ".mnc", ".PAR", ".HEAD", ".img"):
        with pytest.raises(InputError, match="files are read, not written"):
            write_image(image, tmp_path / f"out{suffix}")
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("example4d+orig.HEAD", "example4d+orig.BRIK.gz", "phantom_EPI_asc_CLEAR_2_1.PAR", "phantom_EPI_asc_CLEAR_2_1.REC",
                 "test.mgz", "small.mnc"):
        shutil.copy(NIBABEL_DATA / name, folder / name)
    nib.Nifti1Pair(np.ones((8, 8, 8), np.float32), np.eye(4)).to_filename(folder / "pair.hdr")
    (folder / "notes.hdr").write_text("not a header of anything\n")
    found = sorted(entry.relative.name for entry in find_inputs([folder]).inputs)
    assert found == ["example4d+orig.HEAD", "pair.hdr", "phantom_EPI_asc_CLEAR_2_1.PAR", "small.mnc", "test.mgz"]
    out = tmp_path / "out"
    assert main(["denoise", "--modality", "mri", "--method", "nlm", str(folder), "-o", str(out)]) == 0
    written = sorted(path.name for path in out.rglob("*.nii.gz") if not path.name.endswith(".tsnr.nii.gz"))
    assert written == ["example4d+orig.nii.gz", "pair.nii.gz", "phantom_EPI_asc_CLEAR_2_1.nii.gz", "small.nii.gz", "test.nii.gz"]
    record = json.loads((out / "small.nii.gz.json").read_text())
    restored = read_image(out / "small.nii.gz")
    np.testing.assert_allclose(restored.affine, nib.load(NIBABEL_DATA / "small.mnc").affine, atol=1e-5)
    assert record["method"] == "nlm" and restored.shape == (18, 28, 29)


def test_gzip_compressed_pairs_read_from_either_file(tmp_path: Path) -> None:
    """FSL's ``NIFTI_PAIR_GZ`` (``.hdr.gz`` + ``.img.gz``), written by nibabel. A compressed header alone is named
    with its missing half, and a batch counts the pair once."""
    values = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    affine = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -4], [0, 0, 3, 7], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Pair(values, affine), tmp_path / "fsl.img.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fsl.hdr.gz", "fsl.img.gz"]
    for name in ("fsl.hdr.gz", "fsl.img.gz"):
        image = read_image(tmp_path / name)
        assert image.metadata["format"] == "nifti-pair"
        np.testing.assert_array_equal(image.numpy(), values)
        np.testing.assert_allclose(image.affine, affine)
    assert [entry.path.name for entry in find_inputs([tmp_path]).inputs] == ["fsl.hdr.gz"]
    (tmp_path / "fsl.img.gz").unlink()
    with pytest.raises(InputError, match=r"fsl\.hdr\.gz: is a NIfTI/Analyze \.hdr/\.img header; its data file fsl\.img\.gz is not beside it"):
        read_image(tmp_path / "fsl.hdr.gz")


def test_a_corrupt_gzip_stream_is_named_not_a_traceback(tmp_path: Path) -> None:
    """nibabel's ``test.mgz`` with one byte of its deflate stream changed: zlib's error (not an OSError) escaped as a
    traceback."""
    payload = bytearray((NIBABEL_DATA / "test.mgz").read_bytes())
    payload[22] = 250  # the byte the fuzzing harness changed
    (tmp_path / "broken.mgz").write_bytes(bytes(payload))
    with pytest.raises(InputError, match=r"broken\.mgz: content is not valid MGH/MGZ"):
        read_image(tmp_path / "broken.mgz")


def test_a_pattern_matching_both_halves_of_a_pair_names_the_header_once(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Pair(np.zeros((4, 4, 4), np.int16), np.eye(4)), tmp_path / "spm.img")
    nib.save(nib.Nifti1Pair(np.zeros((4, 4, 4), np.int16), np.eye(4)), tmp_path / "fsl.img.gz")
    inventory = find_inputs([str(tmp_path / "*")])
    assert sorted(entry.path.name for entry in inventory.inputs) == ["fsl.hdr.gz", "spm.hdr"] and inventory.ignored == 2
    assert [entry.path.name for entry in find_inputs([str(tmp_path / "*.img")]).inputs] == ["spm.img"]  # a half alone: kept
