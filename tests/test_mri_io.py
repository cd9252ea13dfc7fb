"""Raw k-space readers/writers: twix (real file), fastMRI HDF5, ISMRMRD, BART, NumPy; bad inputs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.core.fft import ifftc, rss
from medrestore.core.kspace import KSpace
from medrestore.io import kspace_format, read_coil_maps, read_fastmri_reference, read_kspace, write_kspace
from medrestore.io.raw_bart import read_cfl, write_cfl
from medrestore.io.raw_common import infer_mask

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri-raw-pulseq"

FASTMRI_HEADER = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>32</x><y>24</y><z>1</z></matrixSize>
<fieldOfView_mm><x>280</x><y>140</y><z>4.5</z></fieldOfView_mm></encodedSpace>
<reconSpace><matrixSize><x>16</x><y>16</y><z>1</z></matrixSize>
<fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm></reconSpace>
</encoding></ismrmrdHeader>"""


def _kspace(coils: int = 3, shape: tuple[int, int] = (16, 12), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((coils, *shape)) + 1j * rng.standard_normal((coils, *shape))).astype(np.complex64)


def test_twix_brain(shared_data: Path) -> None:
    """The 16-coil brain: 128 × 128 fully sampled, 2 mm pixels, header kept, RSS image has the head in the FOV."""
    pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")
    kspace = read_kspace(shared_data / "mri-raw-pulseq" / "2024-02-06-164128.dat")
    assert tuple(kspace.data.shape) == (16, 128, 128) and kspace.mask is None
    assert kspace.metadata["vendor"] == "Siemens" and kspace.metadata["readout_oversampling_removed"] is False
    assert kspace.metadata["flip_angle_deg"] == 15.0 and abs(kspace.metadata["field_strength_t"] - 2.89) < 0.01
    np.testing.assert_allclose(np.diag(kspace.affine)[:3], [2.0, 2.0, 3.0])
    image = rss(ifftc(kspace.data), 0)
    assert float(image[40:90, 40:90].mean()) > 10 * float(image[:8, :8].mean())  # brain centre vs background corner
    body = read_kspace(shared_data / "mri-raw-pulseq" / "2024-02-06-164120.dat")
    assert tuple(body.data.shape) == (2, 128, 128)


def test_fastmri_layout(tmp_path: Path) -> None:
    """A file in fastMRI's multi-coil layout: slices, width as phase-encode axis, mask dataset, header, reference."""
    data = np.stack([_kspace(4, (32, 24), seed) for seed in range(2)])
    data[..., 1::2] = 0  # lines along the width not acquired
    path = tmp_path / "file1000000.h5"
    reference = np.random.default_rng(1).random((2, 16, 16)).astype(np.float32)
    with h5py.File(path, "w") as handle:
        handle["kspace"] = data
        handle["reconstruction_rss"] = reference
        handle["ismrmrd_header"] = FASTMRI_HEADER.encode()
        handle.attrs["acquisition"] = "CORPD_FBK"
        handle.attrs["max"] = 0.5
    kspace = read_kspace(path)
    assert kspace_format(path) == "fastmri"
    assert tuple(kspace.data.shape) == (2, 4, 32, 24) and kspace.image_shape == (32, 24)
    assert tuple(kspace.mask.shape) == (1, 24) and kspace.mask[0, ::2].all() and not kspace.mask[0, 1::2].any()
    assert kspace.metadata["phase_encode_axis"] == -1 and kspace.metadata["recon_shape"] == (16, 16)
    assert kspace.metadata["acquisition"] == "CORPD_FBK"
    np.testing.assert_allclose(np.diag(kspace.affine)[:2], [140 / 16, 140 / 16])
    np.testing.assert_array_equal(kspace.data.numpy(), data)
    np.testing.assert_array_equal(read_fastmri_reference(path).numpy(), reference)


def test_fastmri_mask_dataset_and_single_coil(tmp_path: Path) -> None:
    path = tmp_path / "single.h5"
    with h5py.File(path, "w") as handle:
        handle["kspace"] = _kspace(1, (10, 8))  # (slices=1, height, width): single-coil
        handle["mask"] = np.array([1, 0, 1, 0, 1, 1, 0, 0], dtype=np.float32)
    kspace = read_kspace(path)
    assert tuple(kspace.data.shape) == (1, 10, 8)
    assert kspace.mask[0].tolist() == [True, False, True, False, True, True, False, False]


def test_ismrmrd_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("ismrmrd", reason="the 'ismrmrd' package is not installed")
    data = _kspace(3, (16, 12))
    mask = np.zeros((16, 1), dtype=bool)
    mask[::2] = True
    original = KSpace(torch.from_numpy(data * mask), (16, 12), torch.from_numpy(mask), None, np.diag([1.5, 0.5, 2.0, 1.0]))
    path = write_kspace(original, tmp_path / "raw.h5")
    loaded = read_kspace(path)
    assert kspace_format(path) == "ismrmrd"
    np.testing.assert_array_equal(loaded.data.numpy(), data * mask)
    np.testing.assert_array_equal(torch.broadcast_to(loaded.mask, (16, 12)).numpy(), np.broadcast_to(mask, (16, 12)))
    np.testing.assert_allclose(np.diag(loaded.affine)[:3], [1.5, 0.5, 2.0])
    trajectory = torch.rand(5, 12, 2) * 16 - 8
    radial = KSpace(torch.from_numpy(_kspace(2, (5, 12))), (16, 16), None, trajectory)
    loaded_radial = read_kspace(write_kspace(radial, tmp_path / "radial.mrd"))
    assert loaded_radial.image_shape == (16, 16)
    torch.testing.assert_close(loaded_radial.trajectory, trajectory)


def test_bart_round_trip_and_layout(tmp_path: Path) -> None:
    """Writing then reading is exact; the byte layout is BART's column-major [x, y, z, coils]."""
    data = _kspace(3, (8, 6))
    original = KSpace(torch.from_numpy(data), (8, 6))
    stem = write_kspace(original, tmp_path / "kspace.cfl")
    dims = (tmp_path / "kspace.hdr").read_text().splitlines()[1].split()
    assert dims[:4] == ["6", "8", "1", "3"] and len(dims) == 16
    raw = np.fromfile(tmp_path / "kspace.cfl", dtype=np.complex64).reshape(6, 8, 1, 3, order="F")
    np.testing.assert_array_equal(raw[:, :, 0, :].transpose(2, 1, 0), data)
    loaded = read_kspace(stem)
    np.testing.assert_array_equal(loaded.data.numpy(), data)
    write_cfl(np.arange(6, dtype=np.complex64).reshape(2, 3), tmp_path / "small")
    np.testing.assert_array_equal(read_cfl(tmp_path / "small.hdr"), np.arange(6).reshape(2, 3))


@pytest.mark.skipif(shutil.which("bart") is None, reason="the BART command line tool is not installed")
def test_bart_tool_reads_our_files(tmp_path: Path) -> None:
    """BART's own `fft -u -i` of our file equals our centred inverse FFT (unitary, centred)."""
    data = _kspace(2, (8, 8))
    write_kspace(KSpace(torch.from_numpy(data), (8, 8)), tmp_path / "k.cfl")
    subprocess.run(["bart", "fft", "-u", "-i", "3", str(tmp_path / "k"), str(tmp_path / "img")], check=True, capture_output=True)
    image = read_cfl(tmp_path / "img")  # (coils, 1, ny, nx)
    np.testing.assert_allclose(image.reshape(2, 8, 8), ifftc(torch.from_numpy(data)).numpy(), atol=1e-5)


def test_numpy_formats_and_mask_inference(tmp_path: Path) -> None:
    data = _kspace(2, (12, 10))
    data[:, 3] = 0
    data[:, 7:9] = 0
    np.save(tmp_path / "k.npy", data)
    loaded = read_kspace(tmp_path / "k.npy")
    expected = np.ones((12, 1), dtype=bool)
    expected[[3, 7, 8]] = False
    np.testing.assert_array_equal(loaded.mask.numpy(), expected)
    round_trip = read_kspace(write_kspace(loaded.with_data(loaded.data, metadata={"note": (1, 2)}), tmp_path / "k.npz"))
    np.testing.assert_array_equal(round_trip.data.numpy(), data)
    assert round_trip.metadata["note"] == [1, 2] and torch.equal(round_trip.mask, loaded.mask)


def test_infer_mask_patterns() -> None:
    data = np.ones((2, 6, 5), dtype=np.complex64)
    assert infer_mask(data) is None
    data[:, :, 1] = 0
    assert infer_mask(data).shape == (1, 5)
    data[:, 2, 3] = 0
    assert infer_mask(data).shape == (6, 5)


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as handle:
        handle["image"] = np.zeros((4, 4))
    with pytest.raises(InputError, match=r"empty\.h5: HDF5 file holds no k-space"):
        read_kspace(empty)
    nan = _kspace(2, (6, 6))
    nan[0, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(InputError, match=r"nan\.npy: k-space contains 1 NaN"):
        read_kspace(tmp_path / "nan.npy")
    np.save(tmp_path / "real.npy", np.zeros((2, 6, 6)))
    with pytest.raises(InputError, match=r"real\.npy: k-space must be complex"):
        read_kspace(tmp_path / "real.npy")
    kspace = KSpace(torch.from_numpy(_kspace(3, (8, 8))), (8, 8))
    np.save(tmp_path / "maps.npy", np.ones((2, 8, 8), dtype=np.complex64))
    with pytest.raises(InputError, match=r"maps\.npy: coil maps of shape \(2, 8, 8\) do not match"):
        read_coil_maps(tmp_path / "maps.npy", kspace)
    np.save(tmp_path / "good.npy", np.ones((3, 8, 8), dtype=np.complex64))
    assert tuple(read_coil_maps(tmp_path / "good.npy", kspace).shape) == (3, 8, 8)
    (tmp_path / "scan.dat").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match=r"scan\.dat"):
        read_kspace(tmp_path / "scan.dat")
    with pytest.raises(InputError, match="file not found"):
        read_kspace(tmp_path / "missing.npz")


def test_readout_oversampling_removal_crops_the_image_centre() -> None:
    """Removing 2× readout oversampling keeps the central half of the readout field of view."""
    from medrestore.io.raw_twix import _remove_oversampling

    rng = np.random.default_rng(3)
    image = np.zeros((2, 8, 32), dtype=np.complex128)
    image[..., 8:24] = rng.standard_normal((2, 8, 16)) + 1j * rng.standard_normal((2, 8, 16))
    lines = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(image, axes=-1), axis=-1, norm="ortho"), axes=-1)
    cropped = _remove_oversampling(lines, 2.0)
    back = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(cropped, axes=-1), axis=-1, norm="ortho"), axes=-1)
    assert cropped.shape == (2, 8, 16)
    np.testing.assert_allclose(back, image[..., 8:24], atol=1e-12)
