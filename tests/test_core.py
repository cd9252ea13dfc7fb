"""Core data types, FFT, files and registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.fft import fftc, ifftc, rss
from medrestore.core.files import atomic_path, atomic_write_text, sha256_file
from medrestore.core.image import Image, affine_from_spacing
from medrestore.core.kspace import KSpace
from medrestore.core.registry import Entry, Registry


def _oblique_affine() -> np.ndarray:
    angle = np.deg2rad(20.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.5, 0.8, 2.0])
    affine[:3, 3] = [-10.0, 4.0, 7.5]
    return affine


def test_image_spacing_comes_from_affine() -> None:
    image = Image(torch.zeros(4, 5, 6), _oblique_affine(), 3)
    assert image.spacing == pytest.approx((0.5, 0.8, 2.0))
    assert image.spatial_shape == (4, 5, 6) and image.n_frames == 1


def test_permute_keeps_world_position_of_every_voxel() -> None:
    data = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(4, 5, 6)
    image = Image(data, _oblique_affine(), 3)
    permuted = image.permute((2, 0, 1))
    index = (3, 1, 4)
    value = data[index]
    new_index = (index[2], index[0], index[1])
    assert permuted.data[new_index] == value
    world = image.affine @ np.array([*index, 1.0])
    new_world = permuted.affine @ np.array([*new_index, 1.0])
    np.testing.assert_allclose(world, new_world)
    assert permuted.spacing == pytest.approx((2.0, 0.5, 0.8))


def test_time_series_and_frames() -> None:
    image = Image.from_array(np.random.default_rng(0).random((3, 4, 5, 7)).astype(np.float32), spatial_ndim=3)
    assert image.n_frames == 7 and image.frame(2).shape == (3, 4, 5)


def test_image_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="axes"):
        Image(torch.zeros(2, 3, 4, 5, 6), np.eye(4), 3)
    with pytest.raises(InputError, match="complex"):
        Image(torch.zeros(3, 3, dtype=torch.complex64), np.eye(4), 2)
    with pytest.raises(InputError, match="modality"):
        Image(torch.zeros(3, 3), np.eye(4), 2, modality="xray")
    with pytest.raises(InputError, match="affine"):
        Image(torch.zeros(3, 3), np.full((4, 4), np.nan), 2)


def test_image_is_immutable_and_metadata_read_only() -> None:
    image = Image.from_array(np.zeros((2, 2), np.float32), metadata={"a": 1})
    with pytest.raises(Exception):
        image.metadata["a"] = 2  # type: ignore[index]
    with pytest.raises(ValueError):
        image.affine[0, 0] = 3.0
    assert image.with_metadata(b=2).metadata == {"a": 1, "b": 2}


def test_kspace_mask_and_acceleration() -> None:
    data = torch.randn(4, 8, 16, dtype=torch.complex64)
    mask = torch.zeros(8, 1, dtype=torch.bool)
    mask[::2] = True
    kspace = KSpace.from_array(data, mask=mask)
    assert kspace.n_coils == 4 and kspace.is_cartesian and kspace.acceleration == pytest.approx(2.0)
    assert kspace.image_shape == (8, 16)
    with pytest.raises(InputError, match="mask"):
        KSpace.from_array(data, mask=torch.ones(3, 1, dtype=torch.bool))


def test_kspace_trajectory_shape_checked() -> None:
    data = torch.zeros(2, 10, 32, dtype=torch.complex64)
    trajectory = torch.zeros(10, 32, 2)
    kspace = KSpace(data, (32, 32), trajectory=trajectory)
    assert not kspace.is_cartesian and kspace.samples_shape == (10, 32) and kspace.n_coils == 2
    with pytest.raises(InputError, match="trajectory"):
        KSpace(data, (32, 32), trajectory=torch.zeros(10, 31, 2))
    with pytest.raises(InputError, match="complex"):
        KSpace(torch.zeros(2, 4, 4), (4, 4))


def test_fftc_is_orthonormal_centred_and_adjoint() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 12, 10, dtype=torch.complex64, generator=generator)
    y = torch.randn(3, 12, 10, dtype=torch.complex64, generator=generator)
    forward = fftc(x)
    assert torch.allclose(forward.norm(), x.norm(), rtol=1e-5)
    lhs = torch.vdot(forward.flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), ifftc(y).flatten())
    assert abs(lhs - rhs) <= 1e-5 * forward.norm() * y.norm()
    assert torch.allclose(ifftc(forward), x, atol=1e-5)
    constant = torch.ones(8, 8, dtype=torch.complex64)
    spectrum = fftc(constant)
    assert spectrum[4, 4].real == pytest.approx(8.0) and spectrum.abs().sum() == pytest.approx(8.0)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(forward.numpy(), expected, atol=1e-5)


def test_rss_closed_form() -> None:
    coils = torch.tensor([[3.0 + 0j], [4.0j]], dtype=torch.complex64)
    assert rss(coils).item() == pytest.approx(5.0)


def test_atomic_path_leaves_previous_file_on_failure(tmp_path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert sha256_file(target) == "a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e"


def test_registry_rejects_duplicates_and_lists_names() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register(Entry("a", lambda: 1, task="denoise", modality="mri", description=""))
    registry.register(Entry("b", lambda: 2, task="recon", modality="any", description=""))
    assert registry.names(modality="mri") == ["a", "b"] and registry.names(task="recon") == ["b"]
    with pytest.raises(MedrestoreError, match="twice"):
        registry.register(Entry("a", lambda: 3, task="x", modality="y", description=""))
    with pytest.raises(MedrestoreError, match="available: a, b"):
        registry.get("c")


def test_affine_from_spacing_origin() -> None:
    affine = affine_from_spacing((0.5, 2.0), origin=(1.0, 2.0, 3.0))
    np.testing.assert_allclose(np.diag(affine), [0.5, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(affine[:3, 3], [1.0, 2.0, 3.0])


def test_atomic_output_has_ordinary_permissions(tmp_path) -> None:
    import os

    target = atomic_write_text(tmp_path / "p.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("content", [b"hello world\nnot a checkpoint\n", b"x", b'{"a": 1}'])
def test_load_torch_file_names_the_file_for_any_non_checkpoint(tmp_path, content: bytes) -> None:
    """Text and other bytes give one clear error naming the file, whatever torch's reader raises inside."""
    from medrestore.core.errors import InputError
    from medrestore.core.files import load_torch_file

    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="cannot read the file as a torch checkpoint") as caught:
        load_torch_file(path)
    assert str(path) in str(caught.value)
