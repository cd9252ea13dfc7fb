"""``benchmarks/mri_denoise_default.py``: its scores are the metrics' own, and its volumes are what it says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mri_denoise_default as bench  # noqa: E402


def test_scores_are_psnr_and_mean_ssim_inside_the_mask() -> None:
    generator = np.random.default_rng(0)
    clean = np.zeros((24, 26, 22), np.float32)
    clean[4:20, 5:21, 3:19] = generator.uniform(50.0, 100.0, (16, 16, 16))
    output = clean + generator.normal(0.0, 3.0, clean.shape).astype(np.float32)
    mask = clean > 0
    scores = bench.scores(output, clean, mask)
    peak = float(clean.max())
    assert scores["psnr"] == pytest.approx(peak_signal_noise_ratio(clean[mask], output[mask], data_range=peak), abs=1e-6)
    full = structural_similarity(clean.astype(np.float64), output.astype(np.float64), data_range=peak, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, full=True)[1]
    interior = np.zeros_like(mask)
    interior[5:-5, 5:-5, 5:-5] = True  # skimage leaves out the Gaussian window's half-width (5 voxels at σ = 1.5); so do we
    assert scores["ssim"] == pytest.approx(float(full[mask & interior].mean()), abs=1e-4)


def test_phantom_volume_is_the_brain_phantom_on_colin27s_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colin27 = bench.DATA / "brain-mri-ants" / "ch2.nii.gz"
    if not colin27.exists():
        pytest.skip("../shared/data is not here")
    monkeypatch.setattr(bench, "WORK", tmp_path)
    path, mask = bench.clean_volume("phantom")
    from medrestore.data.mri_phantom import brain_phantom
    from medrestore.io import read_image

    written = read_image(path).data.numpy()
    colin = read_image(colin27).data.numpy()
    expected = brain_phantom(colin.shape, seed=3)[0] * float(colin.max())
    np.testing.assert_allclose(written, expected, rtol=1e-6)
    np.testing.assert_array_equal(mask, expected > 0)
    with pytest.raises(SystemExit, match="--icbm152"):
        bench.clean_volume("icbm152")
