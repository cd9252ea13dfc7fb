"""k-space hold-out cross-validation of the regularisation weight: the split, the density weights,
the parabola refinement (closed forms), and a reconstruction at the chosen weight that is as good
as the best of a weight sweep scored against the truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from medrestore.core.fft import fftc, ifftc, rss
from medrestore.metrics import psnr
from medrestore.physics.mri.masks import MaskSpec, sample_mask
from medrestore.physics.mri.sense import cartesian_sense
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.solvers.holdout import (
    HoldoutProblem, HoldoutSettings, _refine, holdout_reconstruction, sampling_density, split_holdout,
)
from medrestore.solvers.reconstruction import WaveletOptions, l1_wavelet_reconstruction

WAVELET = WaveletOptions(random_shifts=True)


def test_split_is_a_partition_of_the_acquired_samples() -> None:
    mask = torch.rand(40, 30, generator=torch.Generator().manual_seed(0)) < 0.4
    training, held = split_holdout(mask, 0.1, seed=3)
    assert not (training & held).any() and torch.equal(training | held, mask)
    assert int(held.sum()) == round(0.1 * int(mask.sum()))
    assert torch.equal(split_holdout(mask, 0.1, seed=3)[1], held)


def test_density_of_full_and_alternate_masks() -> None:
    assert torch.allclose(sampling_density(torch.ones(20, 20, dtype=torch.bool), 3), torch.ones(20, 20))
    lines = torch.zeros(40, 40, dtype=torch.bool)
    lines[::2] = True
    interior = sampling_density(lines, 2)[10:30, 10:30]
    assert sorted(interior.unique().tolist()) == pytest.approx([0.4, 0.6])  # 2 or 3 of the 5 rows in the box


def test_refinement_finds_a_parabola_vertex_in_log_lambda() -> None:
    candidates = [8.0, 4.0, 2.0, 1.0, 0.5]
    vertex = math.log(1.5)
    errors = [(math.log(c) - vertex) ** 2 + 7.0 for c in candidates]
    assert _refine(candidates, errors, 2) == pytest.approx(1.5, rel=1e-9)
    assert _refine(candidates, errors, 0) == 8.0  # an end point is kept


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="descending"):
        HoldoutSettings(factors=(1.0, 2.0, 4.0))
    with pytest.raises(ValueError, match="fraction"):
        HoldoutSettings(fraction=0.7)


@pytest.fixture(scope="module")
def acquisition() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shepp–Logan 96², 4 coils, 3 % noise, Poisson-disc 3×: ``(data, mask, maps, truth magnitude)``."""
    truth = torch.from_numpy(resize(shepp_logan_phantom(), (96, 96), anti_aliasing=True).astype(np.float32))
    maps = birdcage_coil_maps((96, 96), 4)
    maps = maps / rss(maps, coil_axis=0).clamp_min(1e-6)  # unit-norm maps: the truth is the SENSE image
    clean = fftc(maps * truth.to(torch.complex64), 2)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(clean.shape, dtype=torch.complex64, generator=generator) * 0.03 * float(clean.abs().square().mean().sqrt())
    mask = torch.broadcast_to(sample_mask(MaskSpec("poisson", 3.0, 0.1, 0), (96, 96)), (96, 96)).clone()
    return (clean + noise) * mask, mask, maps, truth


def test_cross_validated_weight_is_as_good_as_the_best_of_a_sweep(acquisition) -> None:  # type: ignore[no-untyped-def]
    data, mask, maps, truth = acquisition
    operator = cartesian_sense(maps, mask)

    def solve(op, y, lam, iterations, initial):  # type: ignore[no-untyped-def]
        return l1_wavelet_reconstruction(op, y, lam, iterations, WAVELET, initial=initial)[0]

    def score(image: torch.Tensor) -> float:
        return float(psnr(image.abs(), truth, data_range=float(truth.max())))

    start = 0.01 * float(operator.adjoint(data).abs().max())
    full = cartesian_sense(maps, torch.ones(96, 96, dtype=torch.bool))
    problem = HoldoutProblem(solve, lambda m: cartesian_sense(maps, m), full.forward, data, mask)
    image, choice = holdout_reconstruction(problem, operator, start)
    sweep = {factor: score(solve(operator, data, factor * start, 100, None)) for factor in (1 / 16, 1 / 4, 1, 4, 16)}
    assert choice.candidates[0] > choice.lam > choice.candidates[-1] or choice.lam in choice.candidates
    assert score(image) >= max(sweep.values()) - 0.3, (score(image), sweep, choice.lam / start)
    assert score(ifftc(data, 2).abs().square().sum(0).sqrt()) < score(image) - 3.0  # far above zero filling


def test_recon_reports_the_cross_validated_weight(acquisition, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``recon`` chooses the CS weight by hold-out and records it; ``--lam`` sets it without validation."""
    import json

    from medrestore.cli.main import main
    from medrestore.core.kspace import KSpace
    from medrestore.io import write_kspace

    data, mask, _, _ = acquisition
    source = write_kspace(KSpace(data, (96, 96), mask), tmp_path / "k.npz")
    assert main(["recon", str(source), "-o", str(tmp_path / "auto.nii.gz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    selection = report["lambda_selection"]
    assert selection["rule"] == "k-space hold-out" and report["lambda"] == pytest.approx(selection["lambda"])
    assert min(selection["candidates"]) <= report["lambda"] <= max(selection["candidates"])
    assert len(selection["errors"]) == len(selection["candidates"]) >= 3
    assert report["method"] == "cs-wavelet" and "no shipped network" in report["auto_decision"]
    assert main(["recon", str(source), "-o", str(tmp_path / "fixed.nii.gz"), "--lam", "0.5", "--json"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert "lambda_selection" not in fixed and fixed["lambda"] == 0.5
