"""The OCT default's domain check (``medrestore.inference.oct_domain``): closed-form statistics, and on the real Duke
eyes what the command does with a dimmer export and with an averaged B-scan (``benchmarks/oct-domain.md``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F

from medrestore.inference.oct_domain import OCT_DOMAIN, check_bscan, from_domain, speckle_level, to_domain
from medrestore.metrics import evaluate
from medrestore.tasks.denoise import denoise_file


def test_speckle_level_of_white_noise_is_its_standard_deviation() -> None:
    """Local standard deviations of i.i.d. noise of σ over 81 pixels: E ≈ σ·√(80/81) (population form), median
    within a few per cent; a constant image has none; a ×2 bilinear grid keeps most of it (a finest-scale
    estimate would lose most)."""
    rng = np.random.default_rng(0)
    noise = 100.0 + rng.normal(0.0, 20.0, size=(300, 400))
    assert speckle_level(noise) == pytest.approx(20.0 * np.sqrt(80 / 81), rel=0.03)
    assert speckle_level(np.full((64, 64), 90.0)) == 0.0
    finer = F.interpolate(torch.from_numpy(noise)[None, None], scale_factor=2, mode="bilinear", align_corners=False)[0, 0]
    assert 0.5 * 20.0 < speckle_level(finer.numpy()) < 20.0


def test_brightness_mapping_is_exact_and_inverts() -> None:
    rng = np.random.default_rng(1)
    ramp = np.linspace(10.0, 100.0, 160)[None, :] + rng.normal(0.0, 3.0, size=(120, 160))  # a dim B-scan's range
    dim = torch.from_numpy(ramp)
    check = check_bscan(dim)
    assert check.high < OCT_DOMAIN.bright_min and check.gain == pytest.approx(
        (OCT_DOMAIN.target_high - OCT_DOMAIN.target_low) / (check.high - check.low))
    mapped = to_domain(dim[None], check)[0]
    np.testing.assert_allclose(mapped.numpy(), OCT_DOMAIN.target_low + (dim.numpy() - check.low) * check.gain)
    np.testing.assert_allclose(from_domain(mapped, check).numpy(), dim.numpy(), atol=1e-9)
    bright = check_bscan(dim * 2.5)
    assert bright.gain == 1.0 and torch.equal(to_domain(dim[None], bright), dim[None])
    flat = check_bscan(torch.full((64, 64), 20.0, dtype=torch.float64) + torch.from_numpy(rng.normal(0, 1, (64, 64))))
    assert flat.gain == OCT_DOMAIN.gain_max  # a nearly flat image is not stretched beyond ×3


@pytest.mark.shared_data
def test_single_b_scan_is_untouched_and_the_average_goes_to_nlm(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "oct-duke-bioptigen" / "9"
    single = denoise_file(folder / "test.tif", tmp_path / "single.tif", "oct")
    assert single.classical_images == 0 and single.brightened_images == 0 and single.domain[0]["restored_by"] == "network"
    averaged = denoise_file(folder / "average.tif", tmp_path / "average.tif", "oct")
    record = json.loads((tmp_path / "average.tif.json").read_text())
    assert averaged.classical_images == 1 and record["domain"][0]["restored_by"] == "nlm"
    assert record["domain"][0]["speckle_level"] < OCT_DOMAIN.speckle_min < single.domain[0]["speckle_level"]
    average = tifffile.imread(folder / "average.tif")
    kept = evaluate(tifffile.imread(tmp_path / "average.tif"), average, convention="oct")["psnr"]
    assert kept > 33.0  # the unchecked network changed the average by 31.2 dB (benchmark)


@pytest.mark.shared_data
def test_a_dimmer_export_is_restored_through_the_training_brightness(shared_data: Path, tmp_path: Path) -> None:
    """Eye 9 shown through a display window half as wide: the unchecked network scored 29.11 dB against the average
    seen the same way, non-local means 30.75; mapped onto the training brightness and back, 31.52 dB."""
    folder = shared_data / "oct-duke-bioptigen" / "9"
    dim = np.rint(tifffile.imread(folder / "test.tif") * 0.5).astype(np.uint8)
    tifffile.imwrite(tmp_path / "dim.tif", dim)
    result = denoise_file(tmp_path / "dim.tif", tmp_path / "out.tif", "oct")
    assert result.brightened_images == 1 and result.domain[0]["gain"] > 1.5
    reference = tifffile.imread(folder / "average.tif") * 0.5
    assert evaluate(tifffile.imread(tmp_path / "out.tif"), reference, convention="oct")["psnr"] > 31.0
