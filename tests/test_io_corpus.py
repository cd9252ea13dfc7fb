"""Files medrestore did not write: every one reads with the right geometry or fails with one InputError naming it.

Sources: pydicom's test files (and ``pydicom-data`` when installed), nibabel's and dipy's test
data, scikit-image's sample images, the real sets in ``../shared/data`` and k-space written by
the ``bart`` binary. For each file the invariant is:

* ``read_image`` returns an image whose geometry matches the reference library (NIfTI, and the formats nibabel reads
  for us, MGZ, MINC, PAR/REC, AFNI: shape and affine equal nibabel's, allowing for a one-slice volume read as 2-D; DICOM: rows, columns and
  pixel spacing equal pydicom's tags; NumPy: the array's shape), or raises exactly one
  :class:`InputError` whose one-line message names the file; never another exception;
* the input's bytes and modification time do not change.

:data:`MUST_READ` lists files that must read (a refusal there is a regression, not a pass).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import read_image, read_kspace
from medrestore.io.common import single_slice_affine
from medrestore.io.neuro import NEURO_FORMATS

SKIPPED_SUFFIXES = (".py", ".pyc", ".pyi")


def _package_folder(module: str, *parts: str) -> Path | None:
    """``<installed module>/<parts>`` or ``None`` when the package or folder is absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent.joinpath(*parts)
    return folder if folder.is_dir() else None


SOURCES: dict[str, Path | None] = {
    "pydicom": _package_folder("pydicom", "data", "test_files"),
    "pydicom-data": _package_folder("data_store", "data"),  # the pydicom-data package installs as data_store
    "nibabel": _package_folder("nibabel", "tests", "data"),
    "dipy": _package_folder("dipy", "data", "files"),
    "skimage": _package_folder("skimage", "data"),
    "scipy-matlab": _package_folder("scipy", "io", "matlab", "tests", "data"),  # MAT-files MATLAB wrote, and broken ones
}

MUST_READ: dict[str, tuple[str, ...]] = {
    "pydicom": (
        "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
        "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm",
        "ExplVR_BigEnd.dcm", "JPEG2000.dcm", "JPGExtended.dcm", "JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm",
        "693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "J2K_pixelrep_mismatch.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm",
        "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm", "examples_ybr_color.dcm",
        "examples_palette.dcm", "liver_1frame.dcm", "image_dfl.dcm", "rtdose.dcm", "rtdose_1frame.dcm", "rtdose_rle.dcm",
        "dicomdirtests/77654033/CT2/17106", "dicomdirtests/98892003/MR700/4467", "zipMR.gz",
    ),
    "pydicom-data": (
        "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "MR2_J2KI.dcm", "MR2_J2KR.dcm", "MR2_UNCR.dcm", "RG1_J2KI.dcm", "RG1_UNCI.dcm",
        "RG3_J2KI.dcm", "US1_J2KI.dcm", "US1_UNCI.dcm", "emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm", "liver.dcm",
    ),
    "nibabel": (
        "anatomical.nii", "example4d.nii.gz", "example_nifti2.nii.gz", "functional.nii", "reoriented_anat_moved.nii",
        "standard.nii.gz", "0.dcm", "1.dcm", "test.mgz", "minc1_1_scale.mnc", "minc1_4d.mnc", "minc2_4d.mnc", "minc2-4d-d.mnc",
        "small.mnc", "tiny.mnc", "minc1-no-att.mnc", "minc2_baddim.mnc", "phantom_EPI_asc_CLEAR_2_1.PAR", "phantom_EPI_asc_CLEAR_2_1.REC",
        "phantom_varscale.PAR", "phantom_varscale.REC", "example4d+orig.HEAD", "example4d+orig.BRIK.gz", "scaled+tlrc.HEAD",
        "scaled+tlrc.BRIK",
    ),
    "dipy": (
        "S0_10slices.nii.gz", "aniso_vox.nii.gz", "small_101D.nii.gz", "small_25.nii.gz", "small_64D.nii", "test_piesno.nii.gz",
        "t1_coronal_slice.npy", "circle.npy",
    ),
    "skimage": ("camera.png", "astronaut.png", "retina.jpg", "multipage.tif", "multipage_rgb.tif", "text.png"),
    "scipy-matlab": (
        "test3dmatrix_6.1_SOL2.mat", "test3dmatrix_7.4_GLNX86.mat", "testmatrix_4.2c_SOL2.mat", "testmatrix_6.1_SOL2.mat",
        "testmatrix_7.4_GLNX86.mat", "testmulti_7.4_GLNX86.mat", "big_endian.mat", "little_endian.mat",
    ),
    "shared": (
        "nm-nmqc/FourBar.dcm", "nm-nmqc/Jaszack.dcm", "nm-nmqc/Lin_X", "nm-nmqc/Spatial_Resol_X.dcm",
        "nm-nmqc/UNIFORMIDAD_1.dcm", "brain-mri-ants/ch2.nii.gz", "brain-mri-ants/r16slice.jpg", "oct-duke-bioptigen/1/test.tif",
        "oct-duke-bioptigen/1/average.tif",
    ),
}  # fmt: skip
"""Files that must read (relative to their source). Refusals elsewhere are allowed, if they follow the invariant."""

MUST_READ_WITH_ZERO = {"nibabel": ("resampled_anat_moved.nii",), "dipy": ("small_64D.gradients.npy",)}
"""Files refused for NaN values that ``nonfinite="zero"`` reads."""

SHARED_SAMPLE = ("nm-nmqc", "brain-mri-ants", "oct-duke-bioptigen/1", "mri-raw-pulseq", "mri-philips-3t")
"""Folders of ``../shared/data`` walked by default (the big series folders are read as series, and only when slow)."""


def _walk(root: Path) -> list[Path]:
    """Every file under ``root`` except Python sources, sorted; folders named ``mprage``/``fmri`` are not entered."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES and "__pycache__" not in path.parts:
            if not {"mprage", "fmri"} & set(path.relative_to(root).parts[:-1]):
                files.append(path)
    return files


def _cases() -> Iterator[tuple[str, Path, Path]]:
    for source, root in SOURCES.items():
        if root is not None:
            for path in _walk(root):
                yield source, root, path


CASES = list(_cases())


def fingerprint(path: Path) -> list[tuple[str, str, int]]:
    """``(name, sha256, mtime_ns)`` of the file, or of every file in the folder."""
    members = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [(str(m), hashlib.sha256(m.read_bytes()).hexdigest(), m.stat().st_mtime_ns) for m in members]


def read_or_refuse(path: Path, nonfinite: str = "refuse") -> Image | InputError:
    """``read_image(path)`` under the invariant: an image or one InputError naming the file; input unchanged."""
    before = fingerprint(path)
    try:
        outcome: Image | InputError = read_image(path, nonfinite=nonfinite)
    except InputError as error:
        message = str(error)
        assert str(path) in message, f"{path}: the error does not name the file: {message}"
        assert "\n" not in message, f"{path}: the error is not one line: {message!r}"
        outcome = error
    except Exception as error:  # noqa: BLE001 - the invariant under test
        pytest.fail(f"{path}: {type(error).__name__} escaped instead of InputError: {error}")
    assert fingerprint(path) == before, f"{path}: reading changed the input"
    return outcome


def expected_layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], int | None]:
    """A NIfTI/NumPy shape as read: trailing singletons past the 4th axis dropped, a one-slice volume squeezed."""
    shape = tuple(shape)
    while len(shape) > 4 and shape[-1] == 1:
        shape = shape[:-1]
    spatial = shape[:3]
    singletons = [axis for axis, size in enumerate(spatial) if size == 1]
    if len(spatial) == 3 and len(singletons) == 1:
        axis = singletons[0]
        return shape[:axis] + shape[axis + 1 :], axis
    return shape, None


def check_nifti(path: Path, image: Image) -> None:
    reference = nib.load(path)
    shape, squeezed = expected_layout(reference.shape)
    assert image.shape == shape, f"{path}: shape {image.shape}, nibabel {reference.shape}"
    affine = image.affine if squeezed is None else single_slice_affine(image.affine, squeezed)
    assert np.allclose(affine, reference.affine, atol=1e-5), f"{path}: affine differs from nibabel's"


def _pixel_spacing(dataset: pydicom.Dataset) -> list[float] | None:
    """PixelSpacing of the data set, or of its shared functional groups (enhanced multi-frame)."""
    if "PixelSpacing" in dataset:
        return [float(v) for v in dataset.PixelSpacing]
    shared = dataset.get("SharedFunctionalGroupsSequence")
    measures = shared[0].get("PixelMeasuresSequence") if shared else None
    if measures and "PixelSpacing" in measures[0]:
        return [float(v) for v in measures[0].PixelSpacing]
    return None


def check_dicom(path: Path, image: Image) -> None:
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if compressed else open(path, "rb") as stream, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes about odd encodings; the reader under test keeps them
        dataset = pydicom.dcmread(stream, force=True, stop_before_pixels=True)
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    planes = image.spatial_shape[-2:]
    assert planes == (rows, columns), f"{path}: in-plane shape {planes}, tags Rows/Columns {(rows, columns)}"
    spacing = _pixel_spacing(dataset)
    if spacing is not None and min(spacing) > 0:
        assert image.spacing[-2:] == pytest.approx(spacing, rel=1e-4), f"{path}: spacing {image.spacing}, PixelSpacing {spacing}"


def check_geometry(path: Path, image: Image) -> None:
    """The format's reference library agrees with the image (module docstring)."""
    assert image.spatial_ndim in (2, 3) and image.data.dtype == torch.float32
    format_name = image.metadata["format"]
    if format_name == "nifti":
        check_nifti(path, image)
    elif format_name == "dicom":
        check_dicom(path, image)
    elif format_name in NEURO_FORMATS:  # nibabel reads them; MINC's time axis comes last here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel's notes (MINC's spacing declarations); the reader keeps them
            reference = nib.load(path)
        assert image.data.numel() == int(np.prod(reference.shape)), f"{path}: shape {image.shape}, nibabel {reference.shape}"
        assert np.allclose(image.affine, reference.affine, atol=1e-5), f"{path}: affine differs from nibabel's"
    elif format_name == "npy":
        assert image.shape == expected_layout(np.load(path, mmap_mode="r").shape)[0]


@pytest.mark.parametrize(("source", "root", "path"), CASES, ids=[f"{s}:{p.relative_to(r)}" for s, r, p in CASES])
def test_installed_corpus_file(source: str, root: Path, path: Path) -> None:
    outcome = read_or_refuse(path)
    name = str(path.relative_to(root))
    if isinstance(outcome, Image):
        check_geometry(path, outcome)
    elif name in MUST_READ.get(source, ()):
        pytest.fail(f"{name} must read: {outcome}")
    if name in MUST_READ_WITH_ZERO.get(source, ()):
        replaced = read_or_refuse(path, "zero")
        assert isinstance(replaced, Image) and replaced.metadata["nonfinite_replaced"]["count"] > 0
        check_geometry(path, replaced)


def test_must_read_lists_name_existing_files() -> None:
    for source, names in {**MUST_READ, **MUST_READ_WITH_ZERO}.items():
        root = SOURCES.get(source)
        if root is not None:
            missing = [name for name in names if not (root / name).is_file()]
            assert not missing, f"{source}: {missing}"


def test_dicom_folders_read_as_series() -> None:
    root = SOURCES["pydicom"]
    if root is None:
        pytest.skip("pydicom's test files are not installed")
    folders = sorted({path.parent for path in (root / "dicomdirtests").rglob("*") if path.is_file()} - {root / "dicomdirtests"})
    read = 0
    for folder in folders:
        outcome = read_or_refuse(folder)
        if isinstance(outcome, Image):
            read += 1
            member = next(p for p in sorted(folder.iterdir()) if p.is_file())
            check_dicom(member, outcome)
    assert read >= 4  # the others mix series or orientations, or hold no pixels: refused, naming the folder or file


def test_shared_data_files(shared_data: Path) -> None:
    outcomes = {}
    for folder in SHARED_SAMPLE:
        if (shared_data / folder).is_dir():
            for path in _walk(shared_data / folder):
                outcome = read_or_refuse(path)
                if isinstance(outcome, Image):
                    check_geometry(path, outcome)
                outcomes[str(path.relative_to(shared_data))] = outcome
    must = [name for name in MUST_READ["shared"] if (shared_data / name).exists()]
    assert must and all(isinstance(outcomes[name], Image) for name in must), {n: str(outcomes[n]) for n in must}


def _check_series(folder: Path, shape: tuple[int, ...]) -> None:
    """A gzip-compressed DICOM series folder reads as one image of ``shape`` with its first file's in-plane geometry."""
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    image = read_or_refuse(folder)
    assert isinstance(image, Image), image
    assert image.shape == shape
    check_dicom(sorted(folder.iterdir())[0], image)


def test_shared_data_3d_series(shared_data: Path) -> None:
    _check_series(shared_data / "mri-philips-3t" / "mprage", (170, 256, 256))


@pytest.mark.slow
def test_shared_data_4d_series(shared_data: Path) -> None:
    _check_series(shared_data / "mri-philips-3t" / "fmri", (63, 96, 96, 75))


# -- BART ------------------------------------------------------------------------------------------
BART_COMMANDS: dict[str, list[list[str]]] = {
    "image": [["phantom", "-x", "32", "image"]],
    "coils": [["phantom", "-k", "-s", "4", "-x", "32", "coils"]],
    "volume": [["phantom", "-3", "-k", "-s", "2", "-x", "16", "volume"]],
    "noisy": [["phantom", "-k", "-s", "2", "-x", "32", "clean"], ["noise", "-n", "0.01", "clean", "noisy"]],
}


@pytest.fixture(scope="module")
def bart_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = shutil.which("bart")
    if binary is None:
        pytest.skip("the bart binary is not installed (Debian package 'bart'); BART files cannot be made")
    folder = tmp_path_factory.mktemp("bart")
    for commands in BART_COMMANDS.values():
        for command in commands:
            subprocess.run([binary, *command], cwd=folder, check=True, capture_output=True, timeout=60)
    trajectory = [["traj", "-r", "-x", "32", "-y", "21", "trajectory"], ["phantom", "-k", "-s", "2", "-t", "trajectory", "radial"]]
    for command in trajectory:
        subprocess.run([binary, *command], cwd=folder, check=True, capture_output=True, timeout=60)
    return folder


def _bart_dims(header: Path) -> list[int]:
    lines = [line for line in header.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [int(value) for value in lines[0].split()]


@pytest.mark.parametrize("name", sorted(BART_COMMANDS))
def test_bart_kspace_reads_with_its_dims(bart_folder: Path, name: str) -> None:
    header, payload = bart_folder / f"{name}.hdr", bart_folder / f"{name}.cfl"
    before = fingerprint(header) + fingerprint(payload)
    kspace = read_kspace(payload)
    assert fingerprint(header) + fingerprint(payload) == before
    dims = _bart_dims(header)
    nx, ny, nz, coils = dims[:4]
    grid = (nz, ny, nx) if nz > 1 else (ny, nx)
    assert tuple(kspace.data.shape) == (coils, *grid) and tuple(kspace.image_shape) == grid
    raw = np.fromfile(payload, dtype=np.complex64).reshape(dims[::-1])
    assert np.array_equal(kspace.data.numpy(), raw.reshape(coils, *grid))


def test_bart_radial_kspace_with_its_trajectory(bart_folder: Path) -> None:
    kspace = read_kspace(bart_folder / "radial.cfl", trajectory=bart_folder / "trajectory.cfl")
    dims = _bart_dims(bart_folder / "radial.hdr")
    assert not kspace.is_cartesian and tuple(kspace.data.shape) == (dims[3], dims[2], dims[1])
    assert tuple(kspace.trajectory.shape[:2]) == (dims[2], dims[1])


def test_bart_image_files_are_refused_as_images(bart_folder: Path) -> None:
    outcome = read_or_refuse(bart_folder / "image.cfl")
    assert isinstance(outcome, InputError)


# -- the command line on a sample ------------------------------------------------------------------
def _cli_sample() -> list[Path]:
    """Every 7th small installed file (at most 1 MB): refused and readable ones alike."""
    small = [path for _, _, path in CASES if path.stat().st_size <= 1_000_000]
    return small[::7]


@pytest.mark.parametrize("path", _cli_sample(), ids=lambda p: p.name)
def test_evaluate_command_on_a_sample(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = fingerprint(path)
    code = main(["evaluate", "--pred", str(path), "--ref", str(path), "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 0:
        assert captured.err.count("medrestore: error") == 0
    else:
        lines = captured.err.splitlines()
        assert code == 2 and len(lines) == 1, captured.err
        assert lines[0].startswith(f"medrestore: error: {path}: "), lines[0]
    assert fingerprint(path) == before
