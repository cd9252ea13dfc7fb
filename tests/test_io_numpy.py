"""NumPy .npy/.npz reading and writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import read_image, write_image


@pytest.mark.parametrize(
    ("shape", "spatial_ndim", "n_frames"), [((4, 5), 2, 1), ((3, 4, 5), 3, 1), ((3, 4, 5, 2), 3, 2)]
)
def test_npy_axes_and_unit_spacing(tmp_path: Path, shape: tuple[int, ...], spatial_ndim: int, n_frames: int) -> None:
    array = np.random.default_rng(0).random(shape).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    image = read_image(tmp_path / "a.npy")
    assert image.spatial_ndim == spatial_ndim and image.n_frames == n_frames
    assert image.spacing == (1.0,) * spatial_ndim
    np.testing.assert_array_equal(image.numpy(), array)
    again = read_image(write_image(image, tmp_path / "b.npy"))
    np.testing.assert_array_equal(again.numpy(), array)
    assert np.load(tmp_path / "b.npy").dtype == np.float32


def test_npy_integer_source_dtype_exact(tmp_path: Path) -> None:
    array = np.array([[0, 1, 65535], [300, 2, 7]], np.uint16)
    np.save(tmp_path / "u16.npy", array)
    image = read_image(tmp_path / "u16.npy")
    assert image.metadata["dtype"] == "uint16"
    write_image(image, tmp_path / "out.npy", dtype="source")
    stored = np.load(tmp_path / "out.npy")
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, array)


def test_npz_round_trip_keeps_affine_spatial_ndim_modality(tmp_path: Path) -> None:
    affine = np.array([[0.0, 0.5, 0.0, -3.0], [0.8, 0.0, 0.0, 4.0], [0.0, 0.0, 2.0, 1.5], [0, 0, 0, 1.0]])
    data = np.random.default_rng(1).random((4, 6, 3)).astype(np.float32)
    image = Image(data, affine, 2, "oct", {})  # 2-D + T=3
    written = write_image(image, tmp_path / "x.npz")
    again = read_image(written)
    assert again.spatial_ndim == 2 and again.n_frames == 3 and again.modality == "oct"
    np.testing.assert_array_equal(again.numpy(), data)
    np.testing.assert_array_equal(again.affine, affine)
    assert read_image(written, modality="mri").modality == "mri"


def test_npz_single_array_and_ambiguous_members(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", volume=np.ones((2, 3, 4), np.int16))
    image = read_image(tmp_path / "one.npz")
    assert image.shape == (2, 3, 4) and image.metadata["dtype"] == "int16"
    np.savez(tmp_path / "two.npz", a=np.ones((2, 3)), b=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"two\.npz.*no 'data' array"):
        read_image(tmp_path / "two.npz")
    np.savez(tmp_path / "bad_affine.npz", data=np.ones((2, 3)), affine=np.eye(3))
    with pytest.raises(InputError, match=r"bad_affine\.npz.*affine"):
        read_image(tmp_path / "bad_affine.npz")


def test_bad_numpy_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "full.npy", np.arange(1000, dtype=np.float32).reshape(10, 100))
    payload = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(payload[: len(payload) - 100])
    with pytest.raises(InputError, match=r"cut\.npy.*truncated"):
        read_image(tmp_path / "cut.npy")

    with_nan = np.ones((3, 3), np.float32)
    with_nan[0, 0], with_nan[1, 1] = np.nan, np.inf
    np.save(tmp_path / "nan.npy", with_nan)
    with pytest.raises(InputError, match=r"nan\.npy.*1 NaN, 1 \+Inf and 0 -Inf.*--nonfinite zero"):
        read_image(tmp_path / "nan.npy")
    assert np.isinf(read_image(tmp_path / "nan.npy", nonfinite="keep").numpy()[1, 1])

    objects = np.empty((2, 2), dtype=object)
    np.save(tmp_path / "objects.npy", objects, allow_pickle=True)
    with pytest.raises(InputError, match=r"objects\.npy.*pickled"):
        read_image(tmp_path / "objects.npy")
    np.savez(tmp_path / "objects.npz", data=objects)
    with pytest.raises(InputError, match=r"objects\.npz.*pickled"):
        read_image(tmp_path / "objects.npz")

    np.save(tmp_path / "complex.npy", np.ones((4, 4), np.complex64))
    with pytest.raises(InputError, match=r"complex\.npy.*complex"):
        read_image(tmp_path / "complex.npy")

    np.save(tmp_path / "line.npy", np.ones(5))
    with pytest.raises(InputError, match=r"line\.npy.*not an image"):
        read_image(tmp_path / "line.npy")

    np.savez(tmp_path / "whole.npz", data=np.random.default_rng(0).random((50, 50)))
    zipped = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(zipped[: len(zipped) // 2])
    with pytest.raises(InputError, match=r"cut\.npz"):
        read_image(tmp_path / "cut.npz")
