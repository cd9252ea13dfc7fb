"""Cartesian BART k-space written by the real `bart` binary: singleton placement, batch dimensions, undersampling.

Every file here is made by BART itself (`phantom`, `transpose`, `join`, `poisson`, `fmac`), and our
reconstructions are compared with BART's own (`fft -i` + `rss`, `pics`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bart_helpers import bart, needs_bart
from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.io import read_kspace, write_kspace
from medrestore.io.raw_bart import read_bart_array, read_cfl, write_cfl

pytestmark = needs_bart

MATRIX = 64
COILS = 4


def bart_rss(folder: Path, kspace: str, flags: int) -> np.ndarray:
    """BART's zero-filled image: `fft -i FLAGS` then `rss` over coils, as a squeezed magnitude array."""
    bart(folder, "fft", "-i", flags, kspace, f"{kspace}_coils")
    bart(folder, "rss", 8, f"{kspace}_coils", f"{kspace}_rss")
    return np.abs(read_cfl(folder / f"{kspace}_rss")).squeeze()


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """``‖a·x − y‖ / ‖y‖`` after the least-squares gain ``a`` (BART's FFT is not unitary, ours is)."""
    gain = float((ours * reference).sum() / (ours * ours).sum())
    return float(np.linalg.norm(gain * ours - reference) / np.linalg.norm(reference))


@pytest.fixture()
def phantom(tmp_path: Path) -> Path:
    """`bart phantom -k -x 64 -s 4 k`: [64, 64, 1, 4] k-space, plus the same slice stored as [1, 64, 64, 4] and [64, 1, 64, 4]."""
    bart(tmp_path, "phantom", "-k", "-x", MATRIX, "-s", COILS, "k")
    bart(tmp_path, "transpose", 0, 2, "k", "k_read1")
    bart(tmp_path, "transpose", 1, 2, "k", "k_phase1")
    return tmp_path


@pytest.mark.parametrize(("name", "flags"), [("k", 3), ("k_read1", 6), ("k_phase1", 5)])
def test_a_slice_is_2d_wherever_its_singleton_sits(phantom: Path, name: str, flags: int, capsys: pytest.CaptureFixture[str]) -> None:
    """[nx, ny, 1], [1, ny, nz] and [nx, 1, nz] are all 2-D slices; zero-filled and auto equal BART's fft -i + rss."""
    kspace = read_kspace(phantom / f"{name}.cfl")
    assert tuple(kspace.data.shape) == (COILS, MATRIX, MATRIX) and kspace.image_shape == (MATRIX, MATRIX)
    assert kspace.mask is None and kspace.metadata["batch_axes"] == []
    if name == "k_read1":  # transpose 0 2: our grid is (BART PHS2, BART PHS1) = the original (x, y)
        np.testing.assert_array_equal(kspace.data.numpy(), read_kspace(phantom / "k.cfl").data.numpy().swapaxes(-1, -2))
    reference = bart_rss(phantom, name, flags)
    for method in ("zero-filled", "auto"):
        output = phantom / f"{name}_{method}.npy"
        assert main(["recon", str(phantom / f"{name}.cfl"), "-o", str(output), "--method", method, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["method"] == "zero-filled"  # fully sampled: auto is zero-filled
        assert relative_error(np.load(output), reference) < 1e-5


def test_poisson_undersampled_slice_reconstructs_like_bart_pics(phantom: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """[1, 64, 64, 4] under BART's variable-density Poisson-disc pattern: the mask is read from the zeros, auto runs CS.

    Against the fully sampled RSS (least-squares gain, PSNR with its maximum) BART's `pics -l1 -r 0.01`
    with `ecalib` maps scores about 34 dB and zero filling about 24 dB; auto must reach 32 dB.
    """
    bart(phantom, "poisson", "-Y", MATRIX, "-Z", MATRIX, "-y", 2, "-z", 2, "-C", 16, "-v", "-e", "-s", 1, "pattern")
    bart(phantom, "fmac", "k_read1", "pattern", "k_under")
    pattern = np.abs(read_cfl(phantom / "pattern")).squeeze() > 0  # [1, PHS1, PHS2] in C order: our (PHS2, PHS1)
    kspace = read_kspace(phantom / "k_under.cfl")
    np.testing.assert_array_equal(kspace.mask.numpy(), pattern)
    truth = bart_rss(phantom, "k_read1", 6)
    bart(phantom, "ecalib", "-m1", "k_under", "maps")
    bart(phantom, "pics", "-S", "-l1", "-r", 0.01, "k_under", "maps", "bart_pics")

    def psnr(image: np.ndarray) -> float:
        error = relative_error(np.abs(image).squeeze(), truth) * np.linalg.norm(truth)
        return float(10 * np.log10(truth.max() ** 2 * truth.size / error**2))

    output = phantom / "auto.npy"
    assert main(["recon", str(phantom / "k_under.cfl"), "-o", str(output), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "cs-wavelet"
    ours, theirs, zero_filled = psnr(np.load(output)), psnr(read_cfl(phantom / "bart_pics")), psnr(bart_rss(phantom, "k_under", 6))
    assert zero_filled < 26.0 and theirs > 32.0 and ours > 32.0
    bart(phantom, "ecalib", "k_under", "two_maps")  # [1, 64, 64, 4, 2]: the first map set is used
    with_bart_maps = phantom / "with_bart_maps.npy"
    argv = ["recon", str(phantom / "k_under.cfl"), "-o", str(with_bart_maps), "--coil-maps", str(phantom / "two_maps.cfl")]
    assert main(argv) == 0 and psnr(np.load(with_bart_maps)) > 32.0


def test_slices_echoes_and_averages_are_batch_axes(phantom: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SLICE (13) → a stack, TE (5) → a further batch axis, AVG (14) kept apart unless averaging is asked for."""
    bart(phantom, "scale", 0.5, "k", "k_half")
    bart(phantom, "join", 13, "k", "k_half", "stack")
    stack = read_kspace(phantom / "stack.cfl")
    assert tuple(stack.data.shape) == (2, COILS, MATRIX, MATRIX) and stack.metadata["batch_axes"] == ["slice"]
    np.testing.assert_allclose(stack.data[1].numpy(), 0.5 * stack.data[0].numpy(), rtol=1e-6)
    output = phantom / "stack_image.npy"
    assert main(["recon", str(phantom / "stack.cfl"), "-o", str(output), "--method", "zero-filled"]) == 0
    images, reference = np.load(output), bart_rss(phantom, "stack", 3)  # BART: [x, y, 1, 1, ..., slices] → (slices, y, x)
    assert images.shape == (2, MATRIX, MATRIX) and relative_error(images, reference) < 1e-5

    bart(phantom, "join", 5, "stack", "stack", "echoes")
    echoes = read_kspace(phantom / "echoes.cfl")
    assert tuple(echoes.data.shape) == (2, 2, COILS, MATRIX, MATRIX) and echoes.metadata["batch_axes"] == ["slice", "contrast"]
    assert main(["recon", str(phantom / "echoes.cfl"), "-o", str(phantom / "echo_images.npy"), "--method", "zero-filled"]) == 0
    echo_images = np.load(phantom / "echo_images.npy")  # the slices stay the stack, echoes go last
    assert echo_images.shape == (2, MATRIX, MATRIX, 2)
    np.testing.assert_allclose(echo_images[1, ..., 0], 0.5 * echo_images[0, ..., 1], rtol=1e-5)

    bart(phantom, "join", 14, "k", "k_half", "averages")
    kept = read_kspace(phantom / "averages.cfl")
    assert kept.metadata["batch_axes"] == ["average"] and kept.data.shape[0] == 2
    averaged = read_kspace(phantom / "averages.cfl", average=True)
    np.testing.assert_allclose(averaged.data.numpy(), 0.75 * kept.data[0].numpy(), rtol=1e-6)
    argv = ["recon", str(phantom / "averages.cfl"), "-o", str(phantom / "averaged_image.npy"), "--method", "zero-filled", "--average"]
    assert main(argv) == 0
    assert np.load(phantom / "averaged_image.npy").shape == (MATRIX, MATRIX)
    capsys.readouterr()


def test_undersampled_output_keeps_bart_dims(phantom: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`undersample` on BART input writes BART with the input's dims (BART reads it back); stacks go to .npz and ISMRMRD too."""
    output = phantom / "under.cfl"
    assert main(["undersample", str(phantom / "k_read1.cfl"), "-o", str(output), "--accel", "4", "--seed", "1"]) == 0
    _, dims = read_bart_array(output)
    assert dims[:4] == [1, MATRIX, MATRIX, COILS] and all(size == 1 for size in dims[4:])
    bart(phantom, "fft", "-i", 6, "under", "under_image")  # BART itself reads our file
    under = read_kspace(output)
    assert tuple(under.mask.shape) == (MATRIX, 1) and under.acceleration > 2.5

    bart(phantom, "join", 13, "k", "k", "stack")
    for suffix in (".npz", ".cfl", ".h5"):
        target = phantom / f"stack_under{suffix}"
        assert main(["undersample", str(phantom / "stack.cfl"), "-o", str(target), "--accel", "4", "--seed", "2"]) == 0
        back = read_kspace(target)
        assert tuple(back.data.shape) == (2, COILS, MATRIX, MATRIX) and back.acceleration > 2.5
        assert back.metadata["batch_axes"] == ["slice"]
    assert read_bart_array(phantom / "stack_under.cfl")[1][13] == 2
    capsys.readouterr()


def test_unreadable_layouts_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """MAPS above 1, a 1-D array and a truncated file: one line naming the file and the dimension, no traceback."""
    values = np.ones((2, 3, 1, 8, 8), dtype=np.complex64)  # C order of BART [8, 8, 1, 3, 2]: two ESPIRiT maps
    write_cfl(values, tmp_path / "maps")
    with pytest.raises(InputError, match=r"maps\.hdr: BART dimension 4 \(MAPS\) has size 2"):
        read_kspace(tmp_path / "maps.cfl")
    write_cfl(np.ones((3, 1, 1, 8), dtype=np.complex64), tmp_path / "line")
    with pytest.raises(InputError, match=r"line\.hdr: .*1 of READ/PHS1/PHS2 exceed 1"):
        read_kspace(tmp_path / "line.cfl")
    (tmp_path / "short.hdr").write_text("# Dimensions\n8 8 1 2\n")
    (tmp_path / "short.cfl").write_bytes(b"\x00" * 16)
    assert main(["recon", str(tmp_path / "short.cfl"), "-o", str(tmp_path / "x.npy")]) == 2
    error = capsys.readouterr().err
    assert "short.cfl: holds 16 bytes" in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "x.npy").exists()


def test_written_stack_without_bart_origin_uses_the_slice_dimension(tmp_path: Path) -> None:
    """k-space read from elsewhere (here .npz) with a slice axis is written with the slices in BART's SLICE dimension."""
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((3, 2, 8, 6)) + 1j * rng.standard_normal((3, 2, 8, 6))).astype(np.complex64)
    np.savez(tmp_path / "stack.npz", kspace=data)
    write_kspace(read_kspace(tmp_path / "stack.npz"), tmp_path / "stack.cfl")
    values, dims = read_bart_array(tmp_path / "stack.cfl")
    assert dims[:4] == [6, 8, 1, 2] and dims[13] == 3
    np.testing.assert_array_equal(read_kspace(tmp_path / "stack.cfl").data.numpy(), data)
