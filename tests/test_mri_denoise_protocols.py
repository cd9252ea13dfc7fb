"""``medrestore denoise-eval``: leave-one-out on repetitions and HMRF tissue agreement, JSON + PNG."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.data.mri_phantom import brain_phantom
from medrestore.metrics.tissue import class_jaccard, gaussian_mixture_segmentation, hmrf_segmentation
from medrestore.physics.noise import add_rician_noise
from medrestore.tasks.denoise_protocols import ProtocolSettings, figure_path, leave_one_out_file, tissue_agreement_file

pytest.importorskip("dipy")

SHAPE = (36, 40, 30)


def textured_phantom() -> tuple[np.ndarray, np.ndarray]:
    """The brain phantom with a smooth texture inside each class (a piecewise-constant image gives a tissue class no
    intensity spread to fit), and its labels (0 background, 1 CSF, 2 GM, 3 WM)."""
    clean, labels = brain_phantom(SHAPE, seed=3)
    texture = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal(SHAPE), 2.0)
    return (clean + 0.2 * texture * (labels > 0)).clip(0).astype(np.float32), labels


def write(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), path)
    return path


def test_leave_one_out_scores_each_repetition_against_the_mean_of_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean, _ = textured_phantom()
    source = write(tmp_path / "clean.nii.gz", clean)
    output = tmp_path / "loo.json"
    argv = ["denoise-eval", "leave-one-out", str(source), "-o", str(output), "--simulate", "3", "--relative-sigma", "0.05", "--device", "cpu"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out and figure_path(output).stat().st_size > 1000
    record = json.loads(output.read_text())
    assert record["protocol"] == "leave-one-out" and record["method"] == "nlm" and len(record["scores"]) == 3
    # the noisy scores by hand: the draws of the same seed, the mean of the other two, MSE inside the mask
    generator = torch.Generator().manual_seed(0)
    draws = [add_rician_noise(torch.from_numpy(clean), 0.05 * float(clean.max()), generator).numpy() for _ in range(3)]
    row = record["scores"][1]
    assert row["index"] == 1
    from medrestore.tasks.denoise_protocols import brain_mask

    mask = brain_mask(torch.from_numpy(np.stack(draws)))
    assert record["mask_voxels"] == int(mask.sum())
    expected = np.mean((draws[1] - (draws[0] + draws[2]) / 2)[mask].astype(np.float64) ** 2)
    assert row["noisy"]["mse"] == pytest.approx(expected, rel=1e-5)
    assert record["mean"]["denoised"]["psnr"] > record["mean"]["noisy"]["psnr"] + 2.0
    assert record["mean"]["denoised"]["ssim"] > record["mean"]["noisy"]["ssim"]


def test_series_methods_are_scored_on_interleaved_halves(tmp_path: Path) -> None:
    clean = brain_phantom((24, 28, 20), seed=3)[0]
    generator = torch.Generator().manual_seed(2)
    series = np.stack([add_rician_noise(torch.from_numpy(clean), 0.05, generator).numpy() for _ in range(12)], axis=-1)
    source = write(tmp_path / "series.nii.gz", series)
    record = leave_one_out_file(source, tmp_path / "halves.json", ProtocolSettings(method="mppca"))
    assert record["protocol"] == "interleaved-halves" and [row["index"] for row in record["scores"]] == list(range(0, 12, 2))
    assert record["mean"]["denoised"]["psnr"] > record["mean"]["noisy"]["psnr"] + 2.0


def test_hmrf_segmentation_beats_the_mixture_on_noise_and_the_tissue_protocol_runs(tmp_path: Path) -> None:
    clean, labels = textured_phantom()
    noisy = add_rician_noise(torch.from_numpy(clean), 0.1, torch.Generator().manual_seed(1)).numpy()
    mask = labels > 0
    spatial = class_jaccard(hmrf_segmentation(noisy, mask), labels)
    mixture = class_jaccard(gaussian_mixture_segmentation(noisy, mask)[0], labels)
    assert spatial["mean"] > mixture["mean"] + 0.05 and spatial["mean"] > 0.75
    record = tissue_agreement_file(write(tmp_path / "clean.nii.gz", clean), tmp_path / "tissue.json",
                                   ProtocolSettings(method="nlm", simulate=2, relative_sigma=0.08, device="cpu"))  # fmt: skip
    assert record["reference"] == "clean" and figure_path(tmp_path / "tissue.json").exists()
    assert record["jaccard"]["denoised"]["mean"] > record["jaccard"]["noisy"]["mean"]


def test_a_single_volume_without_simulate_is_refused_by_name(tmp_path: Path) -> None:
    source = write(tmp_path / "single.nii.gz", textured_phantom()[0])
    with pytest.raises(InputError, match="single.nii.gz.*repetitions"):
        leave_one_out_file(source, tmp_path / "out.json")


def test_on_nibabels_real_three_slice_fmri_the_default_does_not_lose_to_the_noisy_volumes(tmp_path: Path) -> None:
    """nibabel's ``functional.nii`` (17 × 21 × 3 slices of 4 × 4 × 8 mm, 20 volumes): σ bounded by the series' time
    courses (the slices' wavelet estimates read their coarse anatomy as noise, 2–3× the bound); the per-volume default
    then scores within 0.1 dB of the noisy repetitions (it lost 3 dB with the unbounded σ), and SSIM is computed on
    the slices."""
    spec = importlib.util.find_spec("nibabel")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent / "tests" / "data" / "functional.nii"
    if not source.is_file():
        pytest.skip("nibabel does not ship tests/data/functional.nii")
    record = leave_one_out_file(source, tmp_path / "loo.json", ProtocolSettings(repetitions=6))
    noisy, denoised = record["mean"]["noisy"], record["mean"]["denoised"]
    assert denoised["psnr"] > noisy["psnr"] - 0.1
    assert denoised["ssim"] is not None and denoised["ssim"] > noisy["ssim"] - 0.002
