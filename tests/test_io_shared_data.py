"""The real files in ../shared/data read correctly (skipped when the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import PIL.Image
import pytest
import tifffile

from medrestore.core.files import sha256_file
from medrestore.io import detect_format, read_image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"real data folder {SHARED_DATA} is absent"),
]


def test_oct_tiff() -> None:
    path = SHARED_DATA / "oct-duke-bioptigen" / "1" / "test.tif"
    before = sha256_file(path)
    image = read_image(path, modality="oct")
    assert sha256_file(path) == before
    assert detect_format(path) == "tiff"
    assert image.shape == (450, 900) and image.spatial_ndim == 2 and image.modality == "oct"
    assert image.metadata["dtype"] == "uint8"
    np.testing.assert_array_equal(image.numpy(), tifffile.imread(path).astype(np.float32))
    # The file declares 72 pixels per inch: 25.4 / 72 mm.
    # the file declares 72 dpi, a software default that says nothing about the anatomy
    assert image.spacing == pytest.approx((1.0, 1.0))
    assert "software-default" in image.metadata["spacing_source"]


def test_colin27_nifti() -> None:
    path = SHARED_DATA / "brain-mri-ants" / "ch2.nii.gz"
    before = sha256_file(path)
    image = read_image(path)
    assert sha256_file(path) == before
    reference = nibabel.load(path)
    assert image.shape == (181, 217, 181) and image.metadata["dtype"] == "float32" and image.modality == "mri"
    assert image.spacing == pytest.approx((1.0, 1.0, 1.0))
    np.testing.assert_array_equal(image.numpy(), reference.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(image.affine, reference.affine)


def test_brain_slice_jpeg() -> None:
    path = SHARED_DATA / "brain-mri-ants" / "r16slice.jpg"
    image = read_image(path)
    assert image.shape == (256, 256) and image.metadata["dtype"] == "uint8"
    with PIL.Image.open(path) as picture:
        np.testing.assert_array_equal(image.numpy(), np.asarray(picture, dtype=np.float32))
