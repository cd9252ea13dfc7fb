"""Scanner-appearance simulator: parameters, statistics, catalogue and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.errors import ConfigError
from medrestore.core.image import Image
from medrestore.core.random import make_generator
from medrestore.io import read_image, write_image
from medrestore.physics import ScannerAppearance, build_degradation, degradation_from_record
from medrestore.physics.scanner import (
    PROFILES,
    bias_field,
    brain_mask,
    contrast_curve,
    correlated_rician_noise,
    estimate_noise_sigma,
    hyperintensity_centre,
    hyperintensity_map,
    match_noise,
)

torch.set_num_threads(1)


def phantom_brain(size: int = 96) -> torch.Tensor:
    """An ellipse 'brain' (white matter 1.0) with a darker ring 'cortex' (0.6) on a zero background."""
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    centre = (size - 1) / 2
    radius = ((rows - centre) / (0.40 * size)) ** 2 + ((cols - centre) / (0.32 * size)) ** 2
    image = torch.zeros(size, size)
    image[radius <= 1.0] = 0.6
    image[radius <= 0.6] = 1.0
    return image


def test_profiles_differ_as_field_strengths_do() -> None:
    a, b = PROFILES["a"], PROFILES["b"]
    assert b.gamma > a.gamma and b.noise_sigma < a.noise_sigma and b.blur_fwhm < a.blur_fwhm
    assert b.bias_strength > a.bias_strength and b.hyperintensity > 0 == a.hyperintensity


def test_record_round_trip_and_profile_defaults() -> None:
    transform = build_degradation("scanner", {"scanner": "B", "noise_sigma": 0.02})
    record = transform.record(seed=3)
    assert record["scanner"] == "b" and record["noise_sigma"] == 0.02 and record["gamma"] == PROFILES["b"].gamma
    rebuilt, seed = degradation_from_record(record)
    assert rebuilt == transform and seed == 3
    with pytest.raises(ConfigError, match="scanner must be one of"):
        build_degradation("scanner", {"scanner": "c"})
    with pytest.raises(ConfigError, match="gamma"):
        build_degradation("scanner", {"gamma": 0.0})


def test_white_rician_noise_has_the_requested_sigma() -> None:
    x = torch.full((1, 256, 256), 10.0, dtype=torch.float64)  # high SNR: Rician ≈ Gaussian
    y = correlated_rician_noise(x, 0.5, 0.0, make_generator(0))
    assert float((y - x).std()) == pytest.approx(0.5, rel=0.02)
    neighbours = np.corrcoef((y - x)[0, :, :-1].flatten(), (y - x)[0, :, 1:].flatten())[0, 1]
    assert abs(neighbours) < 0.02


def test_correlated_noise_keeps_sigma_and_is_correlated() -> None:
    x = torch.full((1, 256, 256), 10.0, dtype=torch.float64)
    noise = (correlated_rician_noise(x, 0.5, 0.8, make_generator(1)) - x)[0, 8:-8, 8:-8]
    assert float(noise.std()) == pytest.approx(0.5, rel=0.05)
    neighbours = np.corrcoef(noise[:, :-1].flatten(), noise[:, 1:].flatten())[0, 1]
    expected = math.exp(-1 / (4 * 0.8**2))  # Gaussian-filtered white noise: ρ(1) = exp(−1/(4σ²))
    assert neighbours == pytest.approx(expected, abs=0.05)


def test_rician_background_has_the_rayleigh_mean() -> None:
    x = torch.zeros(1, 256, 256, dtype=torch.float64)
    y = correlated_rician_noise(x, 0.1, 0.0, make_generator(2))
    assert float(y.mean()) == pytest.approx(0.1 * math.sqrt(math.pi / 2), rel=0.02)


def test_bias_field_is_smooth_and_has_the_requested_range() -> None:
    field = bias_field(128, 128, 0.2, math.pi / 3, torch.float64)
    log_field = torch.log(field)
    assert float(log_field.mean()) == pytest.approx(0.0, abs=1e-12)
    # exp(β (cos θ u + sin θ v − (u² + v²)/2)): the log-field's Laplacian is −2β per unit², tiny per pixel
    laplacian = log_field[2:, 1:-1] + log_field[:-2, 1:-1] + log_field[1:-1, 2:] + log_field[1:-1, :-2] - 4 * log_field[1:-1, 1:-1]
    step = 2.0 / 127
    assert float(laplacian.abs().max()) == pytest.approx(2 * 0.2 * step**2, rel=1e-6)
    assert 0.2 < float(log_field.max() - log_field.min()) < 0.2 * 3


def test_contrast_curve_is_monotone_and_fixes_the_reference() -> None:
    x = torch.linspace(0, 2, 101)
    y = contrast_curve(x, 1.5, torch.tensor(1.0))
    assert bool((y[1:] >= y[:-1]).all()) and float(y[50]) == pytest.approx(1.0)
    assert float(y[25]) == pytest.approx(0.5**1.5)


def test_hyperintensity_sits_in_the_posterior_brain_with_its_amplitude() -> None:
    brain = phantom_brain()
    mask = brain_mask(brain[None])[0]
    row, col = hyperintensity_centre(mask, 0.08)
    rows = torch.nonzero(mask.any(dim=1)).flatten()
    assert row > float(rows.float().mean()) + 0.25 * float(rows[-1] - rows[0])  # posterior = large rows
    assert col == pytest.approx((brain.shape[1] - 1) / 2, abs=1.0)
    bump = hyperintensity_map(mask[None], 0.35, 0.08)[0]
    assert float(bump.max()) == pytest.approx(0.35, rel=0.02)
    assert float(bump[~mask].abs().max()) == 0.0
    peak = torch.nonzero(bump == bump.max())[0]
    assert abs(float(peak[0]) - row) <= 1.5


def test_simulated_scanner_b_has_a_bright_occipital_region() -> None:
    brain = phantom_brain()[None]
    plain = ScannerAppearance(scanner="b", hyperintensity=0.0, noise_sigma=0.0)(brain, make_generator(0))
    bright = ScannerAppearance(scanner="b", noise_sigma=0.0)(brain, make_generator(0))
    ratio = (bright / plain.clamp_min(1e-6))[0]
    mask = brain_mask(brain)[0]
    row, col = hyperintensity_centre(mask, 0.08)
    assert float(ratio[round(row), round(col)]) == pytest.approx(1.35, rel=0.03)
    assert float(ratio[10:30, round(col)][mask[10:30, round(col)]].max()) < 1.01  # anterior brain untouched


def test_scanner_a_noise_level_is_relative_to_the_brain_maximum() -> None:
    brain = phantom_brain(128)[None].double()
    clean = ScannerAppearance(scanner="a", noise_sigma=0.0)(brain, make_generator(0))
    noisy = ScannerAppearance(scanner="a")(brain, make_generator(0))
    mask = brain_mask(brain)[0]
    inner = torch.nn.functional.avg_pool2d(mask[None, None].double(), 9, 1, 4)[0, 0] == 1  # away from edges
    residual = (noisy - clean)[0][inner & (clean[0] > 0.9)]
    assert float(residual.std()) == pytest.approx(0.03, rel=0.1)


def test_same_seed_same_output_and_volume_orientation() -> None:
    transform = ScannerAppearance(scanner="b")
    brain = phantom_brain(64)[None]
    first = transform(brain, make_generator(5))
    assert torch.equal(first, transform(brain, make_generator(5)))
    assert not torch.equal(first, transform(brain, make_generator(6)))
    # a RAS+ volume (X, Y, Z): posterior = small Y, the bump must land there
    volume = brain[0].flip(0).T[:, :, None].repeat(1, 1, 3)
    image = Image.from_array(volume.numpy(), spacing=(1.0, 1.0, 1.0))
    output = ScannerAppearance(scanner="b", noise_sigma=0.0, bias_strength=0.0, gamma=1.0, gain=1.0).apply_image(image, 0)
    change = (output.data - image.data)[:, :, 1]
    y_of_peak = int(torch.nonzero(change == change.max())[0][1])
    assert y_of_peak < volume.shape[1] // 3


def test_cli_degrade_kind_scanner(tmp_path: Path) -> None:
    source = tmp_path / "brain.nii.gz"
    write_image(Image.from_array(phantom_brain(64).numpy(), spacing=(1.0, 1.0)), source)
    for scanner in ("a", "b"):
        output = tmp_path / f"{scanner}.nii.gz"
        assert main(["degrade", str(source), "-o", str(output), "--kind", "scanner", "--scanner", scanner, "--seed", "1"]) == 0
        record = json.loads(Path(f"{output}.json").read_text())
        assert record["degradation"]["kind"] == "scanner" and record["degradation"]["scanner"] == scanner
        image = read_image(output)
        assert image.shape == (64, 64) and image.metadata["dtype"] == "float32"


def test_noise_estimate_and_noise_matching() -> None:
    brain = phantom_brain(128)[None].repeat(3, 1, 1).double()
    noisy = ScannerAppearance(scanner="a", gamma=1.0, bias_strength=0.0, blur_fwhm=0.0)(brain, make_generator(0))
    assert estimate_noise_sigma(noisy).tolist() == pytest.approx([0.03] * 3, rel=0.1)
    smooth = ScannerAppearance(scanner="a", noise_sigma=0.005, bias_strength=0.0)(brain, make_generator(1))
    matched = match_noise(smooth, 0.03, make_generator(2))
    assert estimate_noise_sigma(matched).tolist() == pytest.approx([0.03] * 3, rel=0.1)
    assert torch.equal(match_noise(noisy, 0.01, make_generator(3)), noisy)  # already noisier: unchanged
