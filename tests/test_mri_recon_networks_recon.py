"""``recon --method unet|vgg-unet|unrolled``: the shipped zoo networks on a small simulated acquisition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.kspace import KSpace
from medrestore.core.random import make_generator
from medrestore.io import write_kspace
from medrestore.physics.mri import MaskSpec, cartesian_sense, sample_mask
from medrestore.physics.mri.simulation import align_phase_to_coil, birdcage_coil_maps, simulate_kspace, smooth_phase
from medrestore.tasks.recon import ReconOptions, reconstruct, score_reconstruction
from medrestore.tasks.recon_networks import NETWORK_MODELS, network_available, network_reconstruction

torch.set_num_threads(1)
METHODS = tuple(NETWORK_MODELS)


def _head(size: int = 64) -> torch.Tensor:
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    image = 0.8 * ((rows / 0.42) ** 2 + (cols / 0.36) ** 2 < size**2).astype(np.float32)
    image -= 0.5 * ((rows / 0.37) ** 2 + (cols / 0.31) ** 2 < size**2)
    for centre, radius, value in (((-8, -6), 5, 0.6), ((6, 8), 4, 0.9), ((10, -10), 3, 0.3)):
        image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2] = value
    return torch.from_numpy(np.clip(image, 0, None))


def _problem() -> tuple[KSpace, torch.Tensor, torch.Tensor]:
    """Undersampled 8-coil k-space (equispaced 4×), aligned coil maps and the reference magnitude."""
    magnitude = _head()
    maps = birdcage_coil_maps((64, 64), 8, 1.5)
    full = simulate_kspace(torch.polar(magnitude, smooth_phase((64, 64), make_generator(0))), maps, 0.005, make_generator(1))
    mask = sample_mask(MaskSpec("equispaced", 4, 0.08, 0), (64, 64))
    return KSpace(full * mask, (64, 64), mask), align_phase_to_coil(maps), magnitude


def _require(method: str) -> None:
    if not network_available(method):
        pytest.skip(f"the zoo has no {NETWORK_MODELS[method]} model")


@pytest.mark.parametrize("method", METHODS)
def test_network_recon_runs_and_is_scale_invariant(method: str, tmp_path: Path) -> None:
    _require(method)
    kspace, maps, reference = _problem()
    maps_path = tmp_path / "maps.npy"
    np.save(maps_path, maps.numpy())
    result = reconstruct(kspace, ReconOptions(method=method, coil_maps=str(maps_path)))
    assert result.method == method and tuple(result.image.data.shape) == (64, 64)
    assert torch.isfinite(result.image.data).all()
    zero_filled = reconstruct(kspace, ReconOptions(method="zero-filled"))
    network_psnr = score_reconstruction(result.image.data, reference)["psnr"]
    zero_filled_psnr = score_reconstruction(zero_filled.image.data, reference)["psnr"]
    assert network_psnr > zero_filled_psnr - 3.0, (network_psnr, zero_filled_psnr)
    # inputs are scaled by the zero-filled image's 99th percentile: the output follows the data's units
    image = network_reconstruction(method, kspace.data, maps, kspace.mask)
    scaled = network_reconstruction(method, kspace.data * 1e-4, maps, kspace.mask)
    torch.testing.assert_close(scaled * 1e4, image, rtol=1e-3, atol=1e-3 * float(image.abs().max()))


def test_unrolled_network_beats_zero_filled_and_fits_the_data(tmp_path: Path) -> None:
    _require("unrolled")
    kspace, maps, reference = _problem()
    image = network_reconstruction("unrolled", kspace.data, maps, kspace.mask)
    operator = cartesian_sense(maps, kspace.mask)
    zero_filled = operator.H(kspace.data)
    residual = float((operator(image) - kspace.data).abs().norm() / kspace.data.abs().norm())
    assert residual < 0.1, residual
    psnr = score_reconstruction(image.abs(), reference)["psnr"]
    assert psnr > score_reconstruction(zero_filled.abs(), reference)["psnr"] + 1.0


def test_recon_cli_with_a_network_and_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    method = next((name for name in ("unrolled", "unet", "vgg-unet") if network_available(name)), None)
    if method is None:
        pytest.skip("the zoo has no MRI reconstruction network")
    kspace, maps, reference = _problem()
    source = write_kspace(kspace, tmp_path / "brain-4x.npz")
    np.save(tmp_path / "maps.npy", maps.numpy())
    np.save(tmp_path / "reference.npy", reference.numpy())
    argv = ["recon", str(source), "-o", str(tmp_path / "out.nii.gz"), "--method", method, "--coil-maps", str(tmp_path / "maps.npy"),
            "--ref", str(tmp_path / "reference.npy"), "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == method and np.isfinite(report["metrics"]["psnr"])


@pytest.mark.slow
def test_unrolled_on_the_real_16_coil_slice(shared_data: Path) -> None:
    """Poisson-disc 4× on the measured brain: benchmarks/history.md records 29.08 dB / 0.654 (zero-filled 23.10, CS-TV 30.84)."""
    _require("unrolled")
    pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")
    from medrestore.core.fft import ifftc, rss
    from medrestore.io import read_kspace

    full = read_kspace(shared_data / "mri-raw-pulseq" / "2024-02-06-164128.dat").data
    reference = rss(ifftc(full), 0)
    full, reference = full / reference.max(), reference / reference.max()
    mask = sample_mask(MaskSpec("poisson", 4, 0.08, 0), (128, 128))
    kspace = KSpace(full * mask, (128, 128), mask)
    metrics = score_reconstruction(reconstruct(kspace, ReconOptions(method="unrolled")).image.data, reference)
    assert metrics["psnr"] == pytest.approx(29.08, abs=0.05) and metrics["ssim"] == pytest.approx(0.654, abs=0.005)
