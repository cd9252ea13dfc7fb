"""ESPIRiT: recovers known coil maps on simulated data; matches sigpy's EspiritCalib and BART's ecalib (one and two map sets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.fft import fftc, ifftc, rss
from medrestore.io.raw_bart import read_bart_array
from medrestore.physics.mri import (
    BART_ESPIRIT, EspiritOptions, calibration_region, calibration_shape, espirit_map_sets, espirit_maps, poisson_disc_mask,
)
from medrestore.physics.mri.masks import random_line_mask
from test_mri_operators import _coil_maps
from bart_helpers import bart, needs_bart

BRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri-raw-pulseq" / "2024-02-06-164128.dat"


def _phantom(shape: tuple[int, int]) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, shape[0]), torch.linspace(-1, 1, shape[1]), indexing="ij")
    image = ((x / 0.8) ** 2 + (y / 0.9) ** 2 < 1).float() + 0.5 * ((x - 0.2) ** 2 + y**2 < 0.1).float()
    return (image * torch.exp(1j * 0.5 * x)).to(torch.complex64)


def test_espirit_recovers_simulated_maps() -> None:
    """Inside the object the estimated maps equal the true ones up to one phase per pixel."""
    shape = (48, 48)
    true_maps = _coil_maps(6, shape)
    image = _phantom(shape)
    kspace = fftc(true_maps * image)
    maps, eigenvalues = espirit_maps(kspace, None, EspiritOptions(calibration_width=24, kernel_width=6, crop=0.9))
    inside = image.abs() > 0.5
    inner = inner_erode(inside)
    correlation = (maps.conj() * true_maps).sum(0).abs()
    assert float(correlation[inner].min()) > 0.98
    assert torch.allclose((maps.abs() ** 2).sum(0)[inner], torch.ones(int(inner.sum())), atol=1e-4)
    assert float(eigenvalues[inner].min()) > 0.9
    assert torch.all(maps[0][maps[0].abs() > 0].imag.abs() < 1e-4)  # coil 0 carries no phase


def inner_erode(mask: torch.Tensor) -> torch.Tensor:
    """The mask shrunk by 3 pixels (edges of the support are excluded from the comparison)."""
    eroded = mask.clone()
    for _ in range(3):
        eroded = eroded & torch.roll(eroded, 1, 0) & torch.roll(eroded, -1, 0) & torch.roll(eroded, 1, 1) & torch.roll(eroded, -1, 1)
    return eroded


def test_calibration_region_follows_mask() -> None:
    mask = random_line_mask((64, 48), 4, 0.125, 0, axis=-2)  # 8 centre lines
    assert calibration_shape(mask, (64, 48), 24) == (8, 24)
    assert calibration_shape(None, (64, 48), 24) == (24, 24)
    box = torch.zeros(64, 64, dtype=torch.bool)
    box[28:36, 28:36] = True
    box[32, 10:50] = True  # a sampled run along the centre row must not widen the box
    assert calibration_region(box, (64, 64), 24) == (slice(28, 36), slice(28, 36))
    pattern = poisson_disc_mask((64, 64), 4, (8, 8), seed=0)
    region = calibration_region(pattern, (64, 64), 24)
    assert bool(pattern[region].all()) and calibration_shape(pattern, (64, 64), 24) >= (8, 8)
    with pytest.raises(ValueError, match="smaller than the ESPIRiT kernel"):
        espirit_maps(torch.ones(2, 64, 48, dtype=torch.complex64) * mask, mask, EspiritOptions(kernel_width=10))


def test_espirit_matches_sigpy_on_brain() -> None:
    """Real 16-coil brain slice: identical support and maps (|Δ| < 1e-4) to sigpy's EspiritCalib defaults."""
    sigpy_mri = pytest.importorskip("sigpy.mri", reason="sigpy (optional benchmark dependency) is not installed")
    pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")
    if not BRAIN.is_file():
        pytest.skip(f"real data {BRAIN} is not present")
    from medrestore.io import read_kspace

    kspace = read_kspace(BRAIN).data
    ours, _ = espirit_maps(kspace)
    theirs = torch.from_numpy(sigpy_mri.app.EspiritCalib(kspace.numpy(), show_pbar=False).run()).to(torch.complex64)
    support_ours, support_theirs = ours.abs().sum(0) > 0, theirs.abs().sum(0) > 0
    assert float((support_ours == support_theirs).float().mean()) > 0.999
    common = support_ours & support_theirs
    assert float((ours - theirs)[:, common].abs().max()) < 1e-4
    combined = (ifftc(kspace) * ours.conj()).sum(0).abs()
    reference = rss(ifftc(kspace), 0)
    bright = common & (reference > 0.2 * reference.max())
    np.testing.assert_allclose(combined[bright].numpy(), reference[bright].numpy(), rtol=0.1)


def _bart_maps(folder: Path, kspace: str, *flags: object) -> tuple[np.ndarray, np.ndarray]:
    """`bart ecalib FLAGS kspace maps ev` → maps ``(sets, coils, ny, nx)`` and eigenvalues ``(sets, ny, nx)``."""
    bart(folder, "ecalib", *flags, kspace, f"{kspace}_maps", f"{kspace}_ev")
    values, dims = read_bart_array(folder / f"{kspace}_maps")
    maps = values.reshape(dims[4], dims[3], dims[1], dims[0])
    return maps, np.abs(read_bart_array(folder / f"{kspace}_ev")[0]).reshape(dims[4], dims[1], dims[0])


def _agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Dice of the supports, per-pixel |<ours, theirs>| (1 = equal up to a phase) and |ours − theirs| on the common support."""
    support_ours, support_theirs = np.abs(ours).sum(0) > 0, np.abs(theirs).sum(0) > 0
    dice = 2 * float((support_ours & support_theirs).sum()) / float(support_ours.sum() + support_theirs.sum())
    common = support_ours & support_theirs
    correlation = np.abs((ours.conj() * theirs).sum(0))[common]
    return dice, correlation, np.linalg.norm(ours - theirs, axis=0)[common]


@needs_bart
def test_espirit_matches_bart_ecalib_on_bart_phantom(tmp_path: Path) -> None:
    """`bart phantom -k -s 8 -x 128`: BART's defaults (crop 0.8, t 0.001, principal-component phase) give BART's maps.

    Same support (Dice 1.0000 measured), maps equal to ~1e-6 (not only up to a phase) and the same
    eigenvalues; with two sets (`ecalib` default `-m 2`) the second set's small support agrees too.
    """
    bart(tmp_path, "phantom", "-k", "-s", 8, "-x", 128, "k")
    kspace = torch.from_numpy(read_bart_array(tmp_path / "k")[0].reshape(8, 128, 128))
    theirs, their_values = _bart_maps(tmp_path, "k")
    ours, our_values = espirit_map_sets(kspace, None, dataclasses.replace(BART_ESPIRIT, maps=2))
    dice, correlation, difference = _agreement(ours[0].numpy(), theirs[0])
    assert dice > 0.999 and np.median(correlation) > 0.99999 and np.median(difference) < 1e-4
    assert float(np.percentile(correlation, 1)) > 0.98  # BART's 30 orthogonal iterations stop short where two eigenvalues meet
    assert float(np.abs(our_values.numpy() - their_values).mean()) < 1e-3
    dice, correlation, _ = _agreement(ours[1].numpy(), theirs[1])
    assert 300 < int((ours[1].abs().sum(0) > 0).sum()) < 500 and dice > 0.99 and np.median(correlation) > 0.99


@needs_bart
def test_espirit_matches_bart_ecalib_on_brain(tmp_path: Path) -> None:
    """Real 16-coil slice written as BART k-space: supports agree (Dice 0.997) and maps to a correlation > 0.999."""
    pytest.importorskip("twixtools", reason="reading twix needs the 'twixtools' package")
    if not BRAIN.is_file():
        pytest.skip(f"real data {BRAIN} is not present")
    from medrestore.io import read_kspace, write_kspace

    kspace = read_kspace(BRAIN)
    write_kspace(kspace, tmp_path / "brain.cfl")
    theirs, _ = _bart_maps(tmp_path, "brain", "-m", 1)
    ours, _ = espirit_maps(kspace.data, None, BART_ESPIRIT)
    dice, correlation, difference = _agreement(ours.numpy(), theirs[0])
    assert dice > 0.995 and float(np.percentile(correlation, 1)) > 0.999 and np.median(difference) < 0.01


def test_kernel_width_follows_calibration_rows() -> None:
    """min_rows_per_column: the widest kernel (6…3) with enough calibration rows per column; below half of it no crop."""
    from medrestore.physics.mri.espirit import crop_is_reliable, kernel_width_for, rows_per_column

    options = EspiritOptions(kernel_width=None, crop=0.8, min_rows_per_column=0.5)
    assert rows_per_column((24, 24), 16, 6) == pytest.approx(19 * 19 / (16 * 36))
    assert kernel_width_for(options, (24, 24), 16) == 6  # 0.63 rows per column
    assert kernel_width_for(options, (24, 24), 32) == 5  # 0.31 at width 6, 0.50 at 5
    assert kernel_width_for(options, (12, 12), 16) == 3  # widths 5, 4 leave 0.16, 0.32
    assert kernel_width_for(options, (10, 24), 8) == 4  # at most the centre's own rule (10 // 2 − 1)
    assert crop_is_reliable(options, (8, 8), 16) and not crop_is_reliable(options, (6, 6), 16)
    shape = (48, 48)
    kspace = fftc(_coil_maps(8, shape) * _phantom(shape))
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[21:27, 22:26] = True  # a 6×4 centre: too small to crop by
    maps, _ = espirit_maps(kspace * mask, mask, options)
    assert bool((maps.abs().sum(0) > 0).all())
