"""MATLAB MAT-files (``medrestore.io.matlab``): files MATLAB itself wrote (scipy's test data: v4, v5 from MATLAB
6.1 on Solaris to 7.4 on Linux, v7.3 HDF5), and the layouts public OCT sets use (several arrays, ``images`` among
annotations of the same size), checked against the same frames as a multi-page TIFF."""

from __future__ import annotations

import re

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.io import detect_format, read_image

MATLAB_FILES = Path(scipy.io.__file__).parent / "matlab" / "tests" / "data"
# scipy's expected value of test3dmatrix: MATLAB's reshape(1:24, 2, 3, 4)
TEST3DMATRIX = np.transpose(np.reshape(np.arange(1, 25), (4, 3, 2)))


@pytest.mark.parametrize("name", ["test3dmatrix_6.1_SOL2.mat", "test3dmatrix_6.5.1_GLNX86.mat", "test3dmatrix_7.1_GLNX86.mat",
                                  "test3dmatrix_7.4_GLNX86.mat"])  # fmt: skip
def test_matlab_written_3d_arrays_read_as_frames_of_rows_by_columns(name: str) -> None:
    image = read_image(MATLAB_FILES / name)
    assert detect_format(MATLAB_FILES / name) == "mat" and image.spatial_ndim == 3 and image.shape == (4, 2, 3)
    for frame in range(4):  # frame k is MATLAB's A(:, :, k)
        np.testing.assert_array_equal(image.numpy()[frame], TEST3DMATRIX[:, :, frame])
    assert image.metadata["dtype"] == "float64" and image.metadata["mat"]["variable"] == "test3dmatrix"
    assert image.metadata["spacing_source"] == "none" and image.spacing == (1.0, 1.0, 1.0)


def test_v4_file_without_signature_and_big_endian_v5() -> None:
    v4 = read_image(MATLAB_FILES / "testmatrix_4.2c_SOL2.mat")
    expected = np.zeros((3, 5))  # scipy's expected value: first row 1..5, first column 1..3
    expected[0], expected[:, 0] = np.arange(1, 6), np.arange(1, 4)
    np.testing.assert_array_equal(v4.numpy(), expected)
    assert v4.metadata["dtype"] == "float64"
    floats = read_image(MATLAB_FILES / "big_endian.mat")  # a 2×2 single beside a cell of strings
    assert floats.metadata["mat"] == {"variable": "floats", "matlab_shape": [2, 2], "other_variables": ["strings"]}
    assert floats.metadata["dtype"] == "float32"


@pytest.mark.parametrize(("name", "listed"), [
    ("testdouble_7.4_GLNX86.mat", "testdouble (1×9 double)"),
    ("testhdf5_7.4_GLNX86.mat", "testdouble (1×9 double)"),  # MATLAB's own v7.3 file: HDF5 shape (9, 1) reversed
    ("testsparse_7.4_GLNX86.mat", "testsparse (3×5 sparse)"),
    ("testcell_7.4_GLNX86.mat", "testcell (1×4 cell)"),
])  # fmt: skip
def test_files_without_an_image_array_are_refused_with_their_contents(name: str, listed: str) -> None:
    with pytest.raises(InputError, match=rf"{re.escape(name)}: MAT-file holds no numeric image array .*{re.escape(listed)}"):
        read_image(MATLAB_FILES / name)


def _duke_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The layout of Duke's public SD-OCT sets: ``images`` (rows, A-scans, B-scans) uint8 beside manual
    annotations of the same size and layer boundaries (8, A-scans, B-scans)."""
    images = rng.integers(0, 256, size=(40, 32, 3), dtype=np.uint8)
    return {"images": images, "manualFluid1": rng.random((40, 32, 3)), "manualLayers1": rng.random((8, 32, 3))}


def test_duke_layout_reads_images_like_the_tiff_of_its_b_scans(tmp_path: Path) -> None:
    arrays = _duke_like(np.random.default_rng(0))
    scipy.io.savemat(tmp_path / "subject.mat", arrays, do_compression=True)
    tifffile.imwrite(tmp_path / "subject.tif", np.moveaxis(arrays["images"], 2, 0), photometric="minisblack")
    image, pages = read_image(tmp_path / "subject.mat"), read_image(tmp_path / "subject.tif")
    assert image.metadata["mat"]["variable"] == "images" and image.metadata["dtype"] == "uint8"
    np.testing.assert_array_equal(image.numpy(), pages.numpy())
    assert image.shape == (3, 40, 32)


def _write_v73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MAT-file in MATLAB's v7.3 layout: a 512-byte user block with the descriptive text, then HDF5 datasets
    holding each array with its axes reversed and its class in ``MATLAB_class``."""
    with h5py.File(path, "w", userblock_size=512) as mat:
        for name, value in arrays.items():
            dataset = mat.create_dataset(name, data=np.ascontiguousarray(value.transpose()))
            dataset.attrs["MATLAB_class"] = np.bytes_({"uint8": "uint8", "float64": "double"}[value.dtype.name])
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 12:00:00 2026 HDF5 schema 1.00 .")


def test_v73_hdf5_file_reads_the_same_as_v5(tmp_path: Path) -> None:
    arrays = _duke_like(np.random.default_rng(1))
    _write_v73(tmp_path / "v73.mat", arrays)
    scipy.io.savemat(tmp_path / "v5.mat", arrays)
    v73, v5 = read_image(tmp_path / "v73.mat"), read_image(tmp_path / "v5.mat")
    np.testing.assert_array_equal(v73.numpy(), v5.numpy())
    assert v73.metadata["mat"] == v5.metadata["mat"]
    assert v73.metadata["mat"]["other_variables"] == ["manualFluid1", "manualLayers1"]


def test_ambiguous_and_complex_arrays_are_refused(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "two.mat", {"before": np.zeros((8, 8)), "after": np.ones((8, 8))})
    with pytest.raises(InputError, match=r"several image arrays of the same size .*after \(8×8 double\)"):
        read_image(tmp_path / "two.mat")
    scipy.io.savemat(tmp_path / "bigger.mat", {"mask": np.zeros((8, 8)), "recon": np.ones((16, 8))})
    assert read_image(tmp_path / "bigger.mat").metadata["mat"]["variable"] == "recon"  # strictly the most elements
    scipy.io.savemat(tmp_path / "complex.mat", {"img": np.ones((8, 8)) * (1 + 2j)})
    with pytest.raises(InputError, match="complex-valued data"):
        read_image(tmp_path / "complex.mat")
    (tmp_path / "text.mat").write_bytes(b"not a mat-file at all" * 10)
    with pytest.raises(InputError, match=r"text\.mat: cannot read the MAT-file"):
        read_image(tmp_path / "text.mat")


def test_oct_denoise_of_a_mat_stack_equals_that_of_its_tiff(tmp_path: Path) -> None:
    """The command on a MAT-file gives, bit for bit, what it gives on the TIFF export of the same B-scans; a batch
    writes ``.tif`` for it (MAT-files are read, not written)."""
    rng = np.random.default_rng(2)
    images = np.clip(rng.normal(120, 30, size=(48, 40, 2)), 0, 255).astype(np.uint8)
    scipy.io.savemat(tmp_path / "scan.mat", {"images": images})
    tifffile.imwrite(tmp_path / "scan.tif", np.moveaxis(images, 2, 0), photometric="minisblack")
    assert main(["denoise", "--modality", "oct", str(tmp_path / "scan.mat"), "-o", str(tmp_path / "from-mat.tif")]) == 0
    assert main(["denoise", "--modality", "oct", str(tmp_path / "scan.tif"), "-o", str(tmp_path / "from-tif.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "from-mat.tif"), tifffile.imread(tmp_path / "from-tif.tif"))
    assert main(["denoise", "--modality", "oct", str(tmp_path / "scan.mat"), "-o", str(tmp_path / "out.mat")]) != 0
    assert not (tmp_path / "out.mat").exists()


def test_a_variable_claiming_more_bytes_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    """An HDF5 dataset never written reads as its fill value: a 2-kB v7.3 file can claim terabytes."""
    path = tmp_path / "claims.mat"
    with h5py.File(path, "w", userblock_size=512) as mat:
        mat.create_dataset("images", shape=(100, 100_000, 100_000), dtype="f8").attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .")
    with pytest.raises(InputError, match=r"claims 8,000,000,000,000 bytes of array data"):
        read_image(path)
