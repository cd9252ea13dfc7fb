"""`medrestore recon` coil-map options against BART: eigenvalue crop, two map sets, virtual coils, 3-D k-space."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.fft import fftc
from medrestore.core.kspace import KSpace
from medrestore.io import read_image, read_kspace, write_kspace
from medrestore.io.raw_bart import read_cfl, write_cfl
from test_mri_operators import _coil_maps
from bart_helpers import bart

pytestmark = pytest.mark.skipif(shutil.which("bart") is None,
                                reason="needs the BART command line tool (Debian package 'bart'), which is not installed")


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """``‖a·x − y‖ / ‖y‖`` of magnitudes after the least-squares gain ``a`` (BART scales its images its own way)."""
    x, y = np.abs(ours).squeeze().astype(np.float64), np.abs(theirs).squeeze().astype(np.float64)
    gain = float((x * y).sum() / (x * x).sum())
    return float(np.linalg.norm(gain * x - y) / np.linalg.norm(y))


def recon(capsys: pytest.CaptureFixture[str], *argv: object) -> dict:
    assert main(["recon", *map(str, argv), "--json", "--threads", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_crop_cleans_the_background(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """BART's 8-coil phantom with noise, 4× Poisson-disc around a 16×16 centre: with the default crop the image is
    exactly zero away from the maps' support, so against a reference with a clean background (the RSS masked to
    BART's `ecalib` support) SSIM rises above the whole-field maps' (`--espirit-crop 0`)."""
    bart(tmp_path, "phantom", "-k", "-s", 8, "-x", 64, "k")
    bart(tmp_path, "noise", "-s", 2, "-n", 50, "k", "kn")
    bart(tmp_path, "ecalib", "-m", 1, "kn", "maps")
    support = np.abs(read_cfl(tmp_path / "maps")).sum(0).squeeze() > 0
    recon(capsys, tmp_path / "kn.cfl", "-o", tmp_path / "full.npy", "--method", "zero-filled")
    np.save(tmp_path / "clean.npy", np.load(tmp_path / "full.npy") * support)
    argv = ["undersample", str(tmp_path / "kn.cfl"), "-o", str(tmp_path / "under.cfl"), "--mask", "poisson", "--accel", "4",
            "--center-fraction", "0.25"]
    assert main(argv) == 0
    capsys.readouterr()
    ssim = {}
    for crop in ("0.8", "0"):
        report = recon(capsys, tmp_path / "under.cfl", "-o", tmp_path / f"crop{crop}.npy", "--method", "sense",
                       "--espirit-crop", crop, "--ref", tmp_path / "clean.npy")
        ssim[crop] = report["metrics"]["ssim"]
    background = ~_dilate(support, 8)
    assert float(np.abs(np.load(tmp_path / "crop0.8.npy")[background]).max()) == 0.0
    assert float(np.abs(np.load(tmp_path / "crop0.npy")[background]).min()) > 0.0
    assert ssim["0.8"] > ssim["0"] + 0.02


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(radius):
        grown = grown | np.roll(grown, 1, 0) | np.roll(grown, -1, 0) | np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
    return grown


def test_two_map_sets_reconstruct_like_bart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A field of view halved along y folds BART's phantom onto itself, where ESPIRiT finds a second map set:
    `recon --maps 2` (one image per set, root-sum-of-squares) equals `bart ecalib` + `pics -l2` + `rss 16`
    to < 1 % (ESPIRiT and CG-SENSE; < 0.5 % with BART's own maps), one set alone does not (> 1 %)."""
    bart(tmp_path, "phantom", "-k", "-s", 8, "-x", 96, "k")
    write_cfl(read_cfl(tmp_path / "k")[:, :, ::2, :], tmp_path / "folded")  # [96, 48, 1, 8]: every other ky line
    bart(tmp_path, "ecalib", "folded", "maps")  # BART's default: two sets
    bart(tmp_path, "pics", "-l2", "-r", 0.001, "-i", 10, "folded", "maps", "pics")
    bart(tmp_path, "rss", 16, "pics", "pics_rss")
    theirs = read_cfl(tmp_path / "pics_rss")
    recon(capsys, tmp_path / "folded.cfl", "-o", tmp_path / "two.npy", "--method", "sense", "--maps", 2)
    recon(capsys, tmp_path / "folded.cfl", "-o", tmp_path / "one.npy", "--method", "sense")
    recon(capsys, tmp_path / "folded.cfl", "-o", tmp_path / "bart_maps.npy", "--method", "sense", "--maps", 2,
          "--coil-maps", tmp_path / "maps.cfl")
    assert relative_difference(np.load(tmp_path / "two.npy"), theirs) < 0.01
    assert relative_difference(np.load(tmp_path / "bart_maps.npy"), theirs) < 0.005
    assert relative_difference(np.load(tmp_path / "one.npy"), theirs) > 0.01
    report = recon(capsys, tmp_path / "folded.cfl", "-o", tmp_path / "cs.npy", "--method", "cs-wavelet", "--maps", 2, "--iterations", 20)
    assert report["method"] == "cs-wavelet" and np.isfinite(np.load(tmp_path / "cs.npy")).all()


def test_virtual_coils_keep_quality(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """BART's phantom image seen by 16 simulated coils (BART simulates at most 8), 4× lines: 8 virtual coils
    (svd and geometric) lose < 0.5 dB against all 16 coils, and the report names the coils used."""
    bart(tmp_path, "phantom", "-x", 64, "image")
    image = torch.from_numpy(read_cfl(tmp_path / "image").reshape(64, 64))
    kspace = fftc(_coil_maps(16, (64, 64)) * image)
    kspace = kspace + 0.02 * float(kspace.abs().max()) / 64 * torch.randn(kspace.shape, dtype=torch.complex64,
                                                                          generator=torch.Generator().manual_seed(0))
    write_kspace(KSpace(kspace, (64, 64)), tmp_path / "k.npz")
    recon(capsys, tmp_path / "k.npz", "-o", tmp_path / "reference.npy", "--method", "zero-filled")
    assert main(["undersample", str(tmp_path / "k.npz"), "-o", str(tmp_path / "under.npz"), "--mask", "equispaced",
                 "--accel", "4", "--center-fraction", "0.25"]) == 0
    capsys.readouterr()
    psnr = {}
    for label, options in {"all": [], "svd": ["--virtual-coils", 8, "--compression", "svd"],
                           "geometric": ["--virtual-coils", 8, "--compression", "geometric"]}.items():
        report = recon(capsys, tmp_path / "under.npz", "-o", tmp_path / f"{label}.npy", "--method", "sense",
                       "--ref", tmp_path / "reference.npy", *options)
        psnr[label] = report["metrics"]["psnr"]
        assert report["coils"] == (16 if label == "all" else 8)
    assert psnr["svd"] > psnr["all"] - 0.5 and psnr["geometric"] > psnr["all"] - 0.5


def test_volume_matches_bart_and_keeps_its_affine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """BART's 3-D phantom (4 coils, 32³): zero-filled equals `bart fft -i 7` + `rss 8`; Poisson-undersampled in
    ky–kz, SENSE and CS (2-D maps per readout position) beat zero filling; the output keeps the k-space's affine."""
    bart(tmp_path, "phantom", "-3", "-k", "-s", 4, "-x", 32, "k")
    bart(tmp_path, "fft", "-i", 7, "k", "coils")
    bart(tmp_path, "rss", 8, "coils", "rss")
    recon(capsys, tmp_path / "k.cfl", "-o", tmp_path / "zf.npy")
    assert relative_difference(np.load(tmp_path / "zf.npy"), read_cfl(tmp_path / "rss")) < 1e-5
    bart(tmp_path, "poisson", "-Y", 32, "-Z", 32, "-y", 2, "-z", 2, "-C", 10, "-v", "-e", "-s", 1, "pattern")
    bart(tmp_path, "fmac", "k", "pattern", "under")
    psnr = {}
    for method in ("zero-filled", "sense", "cs-wavelet"):
        report = recon(capsys, tmp_path / "under.cfl", "-o", tmp_path / f"{method}.npy", "--method", method,
                       "--ref", tmp_path / "zf.npy")
        psnr[method] = report["metrics"]["psnr"]
    assert psnr["sense"] > psnr["zero-filled"] + 1 and psnr["cs-wavelet"] > psnr["zero-filled"] + 3
    kspace = read_kspace(tmp_path / "under.cfl")
    geometry = np.diag([1.2, 0.9, 2.5, 1.0])
    write_kspace(KSpace(kspace.data, kspace.image_shape, kspace.mask, None, geometry), tmp_path / "scaled.npz")
    recon(capsys, tmp_path / "scaled.npz", "-o", tmp_path / "volume.nii.gz", "--method", "sense")
    volume = read_image(tmp_path / "volume.nii.gz")
    assert volume.shape == (32, 32, 32)
    np.testing.assert_allclose(volume.affine, geometry, atol=1e-6)
    np.testing.assert_allclose(volume.data.numpy(), np.load(tmp_path / "sense.npy"), rtol=1e-4, atol=1e-4 * float(volume.data.max()))


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad option combinations and data are refused with a message naming the problem."""
    bart(tmp_path, "phantom", "-k", "-s", 4, "-x", 32, "k")
    assert main(["undersample", str(tmp_path / "k.cfl"), "-o", str(tmp_path / "p.cfl"), "--mask", "poisson", "--accel", "2"]) == 0
    bart(tmp_path, "phantom", "-3", "-k", "-s", 4, "-x", 16, "v")
    bart(tmp_path, "phantom", "-3", "-k", "-s", 2, "-x", 16, "body")
    volume = read_kspace(tmp_path / "v.cfl")
    mask = torch.rand(16, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5
    write_kspace(KSpace(volume.data * mask, volume.image_shape, mask), tmp_path / "kx_under.npz")
    capsys.readouterr()
    cases = [
        (["--espirit-crop", "1.5"], "k.cfl", "crop must lie in [0, 1)"),
        (["--maps", "2", "--method", "unet"], "p.cfl", "one set of coil maps"),
        (["--virtual-coils", "2", "--coil-energy", "0.9"], "p.cfl", "not both"),
        (["--virtual-coils", "2", "--compression", "geometric", "--method", "sense"], "p.cfl", "complete along the readout"),
        (["--coil-maps", str(tmp_path / "body.cfl"), "--method", "sense"], "p.cfl", "grid"),
        (["--method", "sense"], "kx_under.npz", "fully sampled along the readout"),
    ]
    for options, source, message in cases:
        assert main(["recon", str(tmp_path / source), "-o", str(tmp_path / "x.npy"), *options]) == 2, options
        assert message in capsys.readouterr().err, options
