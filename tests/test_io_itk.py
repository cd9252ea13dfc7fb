"""NRRD and MetaImage (``medrestore.io.itk``), checked against files other tools wrote.

References: dcm2niix ``-e y`` (Debian; its NRRD export beside its own NIfTI of the same real Philips 3 T series),
ITK's own writers (SimpleITK, converting nibabel's test files, read back against nibabel's reading of the
originals), and hand-written headers whose affine follows from the formats' specifications in closed form.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from dicom_helpers import DCM2NIIX
from test_io_dicom_series4d import _fmri_files, gunzip_files, philips_folder

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import detect_format, read_image, write_image
from medrestore.io.inventory import find_inputs

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"


def _dcm2niix(source: Path, out: Path, *options: str) -> Path:
    """dcm2niix's conversion of the DICOM folder ``source`` (its defaults, plus ``options``) → the one file written."""
    if DCM2NIIX is None:
        pytest.skip("dcm2niix is not installed (Debian/Ubuntu: apt-get install dcm2niix)")
    out.mkdir(parents=True)
    subprocess.run([DCM2NIIX, *options, "-b", "n", "-z", "n", "-f", "converted", "-o", str(out), str(source)], check=True,
                   capture_output=True)  # fmt: skip
    (written,) = sorted(out.glob("converted.*"))
    return written


@pytest.mark.shared_data
def test_dcm2niix_nrrd_of_a_real_mprage_equals_its_nifti(tmp_path: Path) -> None:
    """dcm2niix keeps the Philips rescale (slope 133.88) in ``oldmin``/``oldmax``; mapped back, the values equal
    its NIfTI's scaled values, and the RAS affine (NRRD ``space: right-anterior-superior``) its NIfTI's."""
    plain = gunzip_files(sorted(philips_folder("mprage").glob("*.dcm.gz")), tmp_path / "plain")
    nrrd = read_image(_dcm2niix(plain, tmp_path / "nrrd", "-e", "y"))
    nifti = read_image(_dcm2niix(plain, tmp_path / "nifti"))
    assert nrrd.metadata["format"] == "nrrd" and nrrd.metadata["dtype"] == "int16" and nrrd.modality == "mri"
    assert nrrd.shape == nifti.shape == (170, 256, 256)
    assert nrrd.metadata["itk"]["unquantized"]["oldmin"] == pytest.approx(-4387031.0)
    np.testing.assert_allclose(nrrd.numpy(), nifti.numpy(), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(nrrd.affine, nifti.affine, atol=1e-3)  # mm; dcm2niix prints 6 significant digits


@pytest.mark.shared_data
def test_dcm2niix_nrrd_list_axis_is_the_time_axis(tmp_path: Path) -> None:
    """A 4-D fMRI subset (3 time points): ``kinds: space space space list`` becomes the trailing time axis."""
    plain = gunzip_files(_fmri_files(range(3)), tmp_path / "plain")
    nrrd = read_image(_dcm2niix(plain, tmp_path / "nrrd", "-e", "y"))
    nifti = read_image(_dcm2niix(plain, tmp_path / "nifti"))
    assert nrrd.shape == nifti.shape == (96, 96, 63, 3) and nrrd.spatial_ndim == 3
    np.testing.assert_allclose(nrrd.numpy(), nifti.numpy(), rtol=1e-6, atol=1e-2)
    np.testing.assert_allclose(nrrd.affine, nifti.affine, atol=1e-3)


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd", ".nhdr"])
@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz", "reoriented_anat_moved.nii", "functional.nii"])
def test_itk_written_files_equal_nibabel_reading_the_originals(tmp_path: Path, name: str, suffix: str) -> None:
    """ITK reads nibabel's test NIfTI files with its own NIfTI reader and writes them in both formats; read back
    here, values and RAS affine equal nibabel's reading of the originals (the LPS ↔ RAS turn included)."""
    original = NIBABEL_DATA / name
    converted = tmp_path / f"converted{suffix}"
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    sitk.WriteImage(sitk.ReadImage(str(original)), str(converted))
    reference = nibabel.load(original)
    image = read_image(converted)
    assert image.metadata["format"] == ("nrrd" if suffix.startswith(".n") else "metaimage")
    np.testing.assert_array_equal(image.numpy(), np.asarray(reference.dataobj, dtype=np.float32))
    np.testing.assert_allclose(image.affine, reference.affine, atol=1e-5)


def _write_raw(path: Path, values: np.ndarray) -> None:
    path.write_bytes(values.tobytes(order="F"))  # both formats store the first axis fastest


def test_hand_written_mhd_with_big_endian_raw_follows_the_metaio_convention(tmp_path: Path) -> None:
    """MetaIO's ``TransformMatrix`` lists each axis' direction in turn (ITK ``MetaImageIO``: axis ``i`` is entries
    ``3i … 3i+2``), in LPS; ``Offset`` is the first voxel's centre. Axis 0 runs along +P, axis 1 along −L = +R:

        A_RAS = diag(−1, −1, 1, 1) · [[0, −0.75, 0, 10], [0.5, 0, 0, 20], [0, 0, 2, 30], [0, 0, 0, 1]].
    """
    values = (np.arange(24).reshape(4, 3, 2, order="F") * 7 - 50).astype(">i2")
    _write_raw(tmp_path / "volume.raw", values)
    (tmp_path / "volume.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = True\nCompressedData = False\n"
        "TransformMatrix = 0 1 0 -1 0 0 0 0 1\nOffset = 10 20 30\nElementSpacing = 0.5 0.75 2\nDimSize = 4 3 2\n"
        "Modality = MET_MOD_CT\nElementType = MET_SHORT\nElementDataFile = volume.raw\n"
    )
    image = read_image(tmp_path / "volume.mhd")
    expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.array([[0, -0.75, 0, 10], [0.5, 0, 0, 20], [0, 0, 2, 30], [0, 0, 0, 1]])
    np.testing.assert_allclose(image.affine, expected)
    np.testing.assert_array_equal(image.numpy(), values.astype(np.float32))
    assert image.modality == "ct" and image.metadata["dtype"] == "int16"


def test_hand_written_nhdr_in_ras_space_with_gzip_data(tmp_path: Path) -> None:
    """A detached NRRD header in ``right-anterior-superior`` space: its directions and origin are the RAS affine
    itself; the data file is gzip-encoded, uint8, quantized from [−1, 1] (``oldmin``/``oldmax``):
    v = −1 + 2 n / 255."""
    values = np.arange(60, dtype=np.uint8).reshape(5, 4, 3, order="F") * 4
    (tmp_path / "scan.raw.gz").write_bytes(gzip.compress(values.tobytes(order="F")))
    (tmp_path / "scan.nhdr").write_text(
        "NRRD0004\ntype: uint8\ndimension: 3\nspace: right-anterior-superior\nsizes: 5 4 3\n"
        "space directions: (0,1.5,0) (0,0,2.5) (0.8,0,0)\nkinds: domain domain domain\nendian: little\n"
        "encoding: gzip\nspace origin: (-5,6,-7)\noldmin: -1\noldmax: 1\ndata file: scan.raw.gz\n"
    )
    image = read_image(tmp_path / "scan.nhdr")
    expected = np.array([[0, 0, 0.8, -5], [1.5, 0, 0, 6], [0, 2.5, 0, -7], [0, 0, 0, 1]])
    np.testing.assert_allclose(image.affine, expected, atol=1e-12)
    np.testing.assert_allclose(image.numpy(), -1 + 2 * values.astype(np.float64) / 255.0, rtol=1e-6, atol=1e-7)
    assert image.metadata["dtype"] == "uint8"


def test_missing_data_file_and_wrong_content_are_named(tmp_path: Path) -> None:
    header = tmp_path / "lonely.mhd"
    header.write_text("ObjectType = Image\nNDims = 2\nDimSize = 4 4\nElementType = MET_UCHAR\nElementDataFile = lonely.raw\n")
    with pytest.raises(InputError, match=r"lonely\.mhd.*detached MetaImage header; its data file lonely\.raw is not beside"):
        detect_format(header)
    nhdr = tmp_path / "cut.nhdr"
    nhdr.write_text("NRRD0004\ntype: short\ndimension: 2\nsizes: 3 3\nencoding: raw\ndata file: cut.raw\n")
    (tmp_path / "cut.raw").write_bytes(b"\0" * 5)  # 18 bytes are needed
    with pytest.raises(InputError, match=r"cut\.nhdr: cannot read NRRD"):
        read_image(nhdr)
    fake = tmp_path / "fake.nrrd"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(InputError, match="content is PNG but the extension says NRRD"):
        detect_format(fake)


def test_content_without_extension_is_recognised(tmp_path: Path) -> None:
    stray = tmp_path / "exported"
    sitk.WriteImage(sitk.Image(4, 5, sitk.sitkUInt8), str(tmp_path / "exported.nrrd"), False)
    (tmp_path / "exported.nrrd").rename(stray)
    assert detect_format(stray) == "nrrd"


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_round_trip_keeps_values_geometry_time_and_modality(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(3)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation * [0.7, 1.1, 2.5]
    affine[:3, 3] = [12.0, -30.0, 4.5]
    data = rng.normal(size=(6, 5, 4, 3)).astype(np.float32)
    image = Image(data=data, affine=affine, spatial_ndim=3, modality="ct")
    path = write_image(image, tmp_path / f"out{suffix}")
    back = read_image(path)
    np.testing.assert_array_equal(back.numpy(), data)
    np.testing.assert_allclose(back.affine, affine, atol=1e-9)
    assert back.modality == "ct" and back.spatial_ndim == 3
    assert sitk.ReadImage(str(path)).GetNumberOfComponentsPerPixel() == 3  # ITK itself sees the time axis
    slice_2d = Image(data=data[:, :, 0, 0], affine=affine, spatial_ndim=2, modality="mri")
    back_2d = read_image(write_image(slice_2d, tmp_path / f"plane{suffix}", dtype="int16"))
    np.testing.assert_array_equal(back_2d.numpy(), np.rint(data[:, :, 0, 0]))
    assert back_2d.metadata["dtype"] == "int16" and back_2d.spatial_ndim == 2


def test_detached_outputs_and_shear_are_refused(tmp_path: Path) -> None:
    image = Image(data=np.zeros((4, 4, 4), np.float32), affine=np.eye(4), spatial_ndim=3, modality="mri")
    with pytest.raises(InputError, match=r"detached NRRD header is read, not written; write a single \.nrrd"):
        write_image(image, tmp_path / "out.nhdr")
    with pytest.raises(InputError, match=r"single \.mha file"):
        write_image(image, tmp_path / "out.mhd")
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(InputError, match="sheared axes"):
        write_image(Image(data=image.data, affine=sheared, spatial_ndim=3, modality="mri"), tmp_path / "out.nrrd")
    assert not list(tmp_path.iterdir())


def test_batch_counts_a_detached_header_once(tmp_path: Path) -> None:
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    for name in ("a.nhdr", "b.mhd", "c.nrrd", "d.mha"):
        sitk.WriteImage(sitk.Image(6, 6, 3, sitk.sitkInt16), str(tmp_path / name))
    inventory = find_inputs([tmp_path])
    names = sorted(entry.path.name for entry in inventory.inputs)
    assert names == ["a.nhdr", "b.mhd", "c.nrrd", "d.mha"] and inventory.ignored == 2, names  # a.raw, b.raw


def test_a_header_claiming_more_voxels_than_its_data_hold_is_refused_before_allocating(tmp_path: Path) -> None:
    """A 1-kB MetaImage claiming 10⁴ × 10⁴ × 10⁴ voxels: refused from the header (ITK would first allocate the image;
    at 1500³ it took 22 GB). ITK's NRRD reader (teem) refuses such a file itself while reading the header."""
    noise = np.random.default_rng(0).bytes(1000)
    meta = tmp_path / "claims.mha"
    meta.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 10000 10000 10000\nElementType = MET_SHORT\n"
                     b"CompressedData = True\nElementDataFile = LOCAL\n" + noise)  # fmt: skip
    with pytest.raises(InputError, match=r"claims 2,000,000,000,000 bytes of voxels but the data hold 1,\d{3} bytes \(compressed\)"):
        read_image(meta)
    nrrd = tmp_path / "claims.nrrd"
    nrrd.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10000 10000 10000\nencoding: gzip\n\n" + noise)
    with pytest.raises(InputError, match=r"claims\.nrrd: cannot read NRRD"):
        read_image(nrrd)


@pytest.mark.parametrize("ndims", ["100000", "-1", "1e30", "0"])
def test_metaimage_dimension_counts_that_crash_metaio_are_refused_first(tmp_path: Path, ndims: str) -> None:
    """MetaIO trusts ``NDims``: 100000 or −1 made the process die (segmentation fault) inside ITK."""
    path = tmp_path / "crash.mha"
    path.write_bytes(f"ObjectType = Image\nNDims = {ndims}\nDimSize = 5 4 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n".encode()
                     + bytes(120))  # fmt: skip
    with pytest.raises(InputError, match=r"crash\.mha: MetaImage NDims"):
        read_image(path)
    path.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 5 0 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n" + bytes(120))
    with pytest.raises(InputError, match="DimSize must hold 3 sizes of at least 1"):
        read_image(path)


def test_a_pattern_matching_both_halves_names_the_header_once(tmp_path: Path) -> None:
    """``'scans/*'`` matches ``a.mhd`` and ``a.raw``: one input, the header (the data file alone is not an image)."""
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    sitk.WriteImage(sitk.Image(6, 6, 3, sitk.sitkInt16), str(tmp_path / "a.mhd"))
    sitk.WriteImage(sitk.Image(6, 6, 3, sitk.sitkInt16), str(tmp_path / "b.nhdr"))
    inventory = find_inputs([str(tmp_path / "*")])
    assert [entry.path.name for entry in inventory.inputs] == ["a.mhd", "b.nhdr"] and inventory.ignored == 2


def test_integer_output_that_would_clip_is_refused(tmp_path: Path) -> None:
    """dcm2niix's NRRD of a Philips volume reads to 159 000 from int16; written back as int16 it would be clipped."""
    image = Image(data=np.full((4, 4, 4), 150_000.0, np.float32), affine=np.eye(4), spatial_ndim=3, modality="mri")
    with pytest.raises(InputError, match=r"values 150000 to 150000 do not fit int16, and NRRD stores no rescale"):
        write_image(image, tmp_path / "out.nrrd", dtype="int16")
    assert read_image(write_image(image, tmp_path / "out.nrrd")).numpy().max() == 150_000.0
