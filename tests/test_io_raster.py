"""TIFF, PNG and JPEG reading/writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import tifffile

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import read_image, write_image


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# -- TIFF ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_single_page_round_trip(tmp_path: Path, rng: np.random.Generator, dtype: type) -> None:
    plane = (rng.random((5, 7)) * 200).astype(dtype)
    tifffile.imwrite(tmp_path / "in.tif", plane, resolution=(10 / 0.25, 10 / 0.5), resolutionunit="CENTIMETER")
    image = read_image(tmp_path / "in.tif")
    assert image.spatial_ndim == 2 and image.metadata["dtype"] == np.dtype(dtype).name
    assert image.spacing == pytest.approx((0.5, 0.25))  # (row spacing from Y, column spacing from X)
    np.testing.assert_array_equal(image.numpy(), plane.astype(np.float32))
    written = write_image(image, tmp_path / "out.tif", dtype="source")
    assert tifffile.imread(written).dtype == dtype
    again = read_image(written)
    np.testing.assert_array_equal(again.numpy(), plane.astype(np.float32))
    assert again.spacing == pytest.approx((0.5, 0.25))


def test_tiff_multi_page_and_imagej_spacing(tmp_path: Path, rng: np.random.Generator) -> None:
    pages = rng.integers(0, 4000, size=(4, 6, 5)).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "stack.tif",
        pages,
        imagej=True,
        resolution=(1 / 0.3, 1 / 0.2),
        metadata={"spacing": 1.5, "unit": "mm"},
    )
    image = read_image(tmp_path / "stack.tif")
    assert image.shape == (4, 6, 5) and image.spatial_ndim == 3
    assert image.spacing == pytest.approx((1.5, 0.2, 0.3))
    np.testing.assert_array_equal(image.numpy(), pages)


def test_tiff_written_keeps_oblique_affine_float32_and_time_axis(tmp_path: Path, rng: np.random.Generator) -> None:
    affine = np.array([[0.0, 0.6, 0.1, 5.0], [0.9, 0.0, 0.0, -2.0], [0.0, -0.1, 0.6, 7.5], [0, 0, 0, 1.0]])
    data = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    image = Image(data, affine, 3, "oct", {})
    written = write_image(image, tmp_path / "volume.tiff")
    assert tifffile.imread(written).dtype == np.float32
    again = read_image(written)
    assert again.shape == (3, 4, 5, 2) and again.spatial_ndim == 3 and again.modality == "oct"
    np.testing.assert_array_equal(again.numpy(), data)
    np.testing.assert_array_equal(again.affine, affine)


def test_corrupt_and_truncated_tiff(tmp_path: Path, rng: np.random.Generator) -> None:
    tifffile.imwrite(tmp_path / "whole.tif", rng.integers(0, 255, size=(64, 64)).astype(np.uint8))
    payload = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(InputError, match=r"cut\.tif"):
        read_image(tmp_path / "cut.tif")
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00" + b"\xff" * 200)
    with pytest.raises(InputError, match=r"corrupt\.tif: corrupt TIFF"):
        read_image(tmp_path / "corrupt.tif")


# -- PNG -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_gray_round_trip(tmp_path: Path, rng: np.random.Generator, dtype: type) -> None:
    plane = rng.integers(0, np.iinfo(dtype).max, size=(6, 9), endpoint=True).astype(dtype)
    PIL.Image.fromarray(plane).save(tmp_path / "in.png", dpi=(25.4 / 0.25, 25.4 / 0.5))
    image = read_image(tmp_path / "in.png")
    assert image.metadata["dtype"] == np.dtype(dtype).name and image.spatial_ndim == 2
    assert image.spacing == pytest.approx((0.5, 0.25), rel=1e-3)  # pHYs holds whole pixels per metre
    np.testing.assert_array_equal(image.numpy(), plane)
    written = write_image(image.with_data(image.data + 0.4), tmp_path / "out.png")  # source dtype, rounded
    stored = np.array(PIL.Image.open(written))
    assert stored.dtype == dtype
    np.testing.assert_array_equal(stored, plane)
    np.testing.assert_array_equal(read_image(written).affine, image.affine)  # exact via the text chunk


def test_colour_png_and_tiff_become_luminance(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, size=(4, 5, 3)).astype(np.uint8)
    PIL.Image.fromarray(rgb, mode="RGB").save(tmp_path / "colour.png")
    image = read_image(tmp_path / "colour.png")
    expected = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-4)
    assert image.metadata["converted_from"] == "RGB" and image.metadata["dtype"] == "uint8"
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 128, np.uint8)], axis=-1)
    PIL.Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    np.testing.assert_allclose(read_image(tmp_path / "alpha.png").numpy(), expected, atol=1e-4)
    tifffile.imwrite(tmp_path / "colour.tif", rgb, photometric="rgb")
    colour_tiff = read_image(tmp_path / "colour.tif")
    assert colour_tiff.shape == (4, 5) and colour_tiff.metadata["converted_from"] == "RGB"
    np.testing.assert_allclose(colour_tiff.numpy(), expected, atol=1e-4)


def test_png_refuses_float_source_without_dtype_and_3d(tmp_path: Path) -> None:
    image = Image.from_array(np.full((3, 3), 0.5, np.float32), metadata={"dtype": "float32"})
    with pytest.raises(InputError, match=r"out\.png.*pass dtype"):
        write_image(image, tmp_path / "out.png")
    write_image(image.with_data(image.data * 100), tmp_path / "out.png", dtype="uint8")
    np.testing.assert_array_equal(np.array(PIL.Image.open(tmp_path / "out.png")), np.full((3, 3), 50, np.uint8))
    with pytest.raises(InputError, match=r"vol\.png.*2-D plane"):
        write_image(Image.from_array(np.zeros((2, 3, 3), np.float32)), tmp_path / "vol.png", dtype="uint8")


# -- JPEG ------------------------------------------------------------------------------------------
def test_jpeg_read_only(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))
    PIL.Image.fromarray(ramp).save(tmp_path / "ramp.jpg", quality=100)
    image = read_image(tmp_path / "ramp.jpg")
    assert image.shape == (16, 32) and image.metadata["format"] == "jpeg"
    assert np.abs(image.numpy() - ramp).max() <= 3  # lossy, but close at quality 100
    with pytest.raises(InputError, match=r"out\.jpg.*write PNG"):
        write_image(image, tmp_path / "out.jpg")
