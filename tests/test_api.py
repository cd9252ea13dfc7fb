"""The public in-memory API (:mod:`medrestore.api`): each call gives what the task (and so the
command line) gives on the same input, leaves its input alone, and the README example runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

import medrestore
from medrestore.core.errors import InputError
from medrestore.core.image import affine_from_spacing
from medrestore.core.random import make_generator
from medrestore.data.phantoms import shepp_logan
from medrestore.io import read_image, write_image, write_kspace
from medrestore.physics.mri import MaskSpec, sample_mask
from medrestore.physics.mri.simulation import birdcage_coil_maps, simulate_kspace
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.tasks.degrade import degrade_file
from medrestore.tasks.denoise import denoise_file
from medrestore.tasks.evaluate import evaluate_files
from medrestore.tasks.radial import RadialSimulation, simulate_radial
from medrestore.tasks.recon import ReconOptions, reconstruct, reconstruct_file

torch.set_num_threads(1)
README = Path(__file__).resolve().parents[1] / "README.md"


def _phantom(size: int = 64, modality: str = "mri") -> medrestore.Image:
    return medrestore.Image(torch.from_numpy(shepp_logan(size)), affine_from_spacing((0.9, 1.1)), 2, modality)


def test_degrade_and_denoise_match_the_file_workflows(tmp_path: Path) -> None:
    clean = _phantom()
    kept = clean.data.clone()
    noisy, how = medrestore.degrade(clean, "rician", sigma=0.05, seed=3)
    assert torch.equal(clean.data, kept)  # the input is not modified
    write_image(clean, tmp_path / "clean.nii.gz")
    record = degrade_file(tmp_path / "clean.nii.gz", tmp_path / "noisy.nii.gz", "rician", {"sigma": 0.05}, seed=3)
    assert torch.equal(noisy.data, read_image(tmp_path / "noisy.nii.gz").data)
    assert how["degradation"] == record["degradation"] and how["input"] == how["output"] == "<memory>"
    np.testing.assert_allclose(noisy.affine, clean.affine)

    denoised, done = medrestore.denoise(noisy, modality="mri", method="nlm", sigma=0.05, device="cpu")
    expected = denoise_file(tmp_path / "noisy.nii.gz", tmp_path / "denoised.nii.gz", "mri", method="nlm", sigma=0.05, device="cpu")
    torch.testing.assert_close(denoised.data, read_image(tmp_path / "denoised.nii.gz").data)
    assert (done["method"], done["model"], done["sigmas"]) == (expected.method, expected.model, list(expected.sigmas))
    json.dumps(done)  # the record is JSON-ready
    assert "source_path" not in denoised.metadata


def test_a_path_input_is_named_in_the_record(tmp_path: Path) -> None:
    write_image(_phantom(), tmp_path / "clean.nii.gz")
    noisy, how = medrestore.degrade(tmp_path / "clean.nii.gz", "gaussian", sigma=0.1, seed=0)
    assert how["input"] == str(tmp_path / "clean.nii.gz") and how["output"] == "<memory>"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clean.nii.gz"]  # nothing written beside it


def test_evaluate_matches_skimage() -> None:
    clean = _phantom()
    noisy = clean.with_data(clean.data + 0.05 * torch.randn(clean.data.shape, generator=make_generator(0)))
    scores, record = medrestore.evaluate(noisy, clean)
    reference = clean.data.numpy().astype(np.float64)
    expected = peak_signal_noise_ratio(reference, noisy.data.numpy().astype(np.float64), data_range=float(np.ptp(reference)))
    assert scores["psnr"] == pytest.approx(expected, abs=1e-6)
    assert record["convention"] == "default" and record["shape"] == [64, 64]
    with pytest.raises(InputError, match="does not match the reference of shape"):
        medrestore.evaluate(_phantom(32), clean)


def test_evaluate_scores_a_series_as_the_command_does(tmp_path: Path) -> None:
    """A 4-D series ``(X, Y, Z, T)`` is scored frame by frame in memory exactly as ``medrestore evaluate`` scores its files."""
    generator = np.random.default_rng(0)
    reference = generator.random((24, 20, 16, 3)).astype(np.float32)
    reference[..., 1] *= 3.0  # frames of different ranges: scoring the wrong axes would change the numbers
    prediction = (reference + 0.05 * generator.standard_normal(reference.shape)).astype(np.float32)
    images = [medrestore.Image(torch.from_numpy(array), np.eye(4), 3, "mri") for array in (prediction, reference)]
    for image, name in zip(images, ("pred.nii.gz", "ref.nii.gz"), strict=True):
        write_image(image, tmp_path / name)
    in_memory = medrestore.evaluate(*images).output
    from_files = evaluate_files(tmp_path / "pred.nii.gz", tmp_path / "ref.nii.gz")["metrics"]
    assert in_memory == pytest.approx(from_files, rel=1e-6)
    expected = peak_signal_noise_ratio(reference.astype(np.float64), prediction.astype(np.float64), data_range=float(np.ptp(reference)))
    assert in_memory["psnr"] == pytest.approx(expected, abs=1e-4)  # the default convention: one PSNR over the stack


def test_recon_matches_the_task() -> None:
    clean = torch.from_numpy(shepp_logan(64))
    maps = birdcage_coil_maps((64, 64), 8, 1.5)
    mask = sample_mask(MaskSpec("equispaced", 4, 0.08, 0), (64, 64))
    kspace = medrestore.KSpace(simulate_kspace(clean.to(torch.complex64), maps, 0.005, make_generator(1)) * mask, (64, 64), mask)
    image, record = medrestore.recon(kspace, method="cs-wavelet", device="cpu")
    expected = reconstruct(kspace, ReconOptions(method="cs-wavelet", device="cpu"))
    torch.testing.assert_close(image.data, expected.image.data)
    assert (record["method"], record["lambda"], record["iterations"]) == ("cs-wavelet", expected.lam, expected.iterations)
    zero_filled, _ = medrestore.recon(kspace, method="zero-filled", device="cpu")

    def psnr(result: torch.Tensor) -> float:
        return float(peak_signal_noise_ratio(clean.numpy(), (result / result.max()).numpy(), data_range=1.0))

    assert psnr(image.data) > psnr(zero_filled.data) + 3.0


def test_recon_takes_radial_kspace_as_the_command_does(tmp_path: Path) -> None:
    """Radial k-space with a gradient delay: the call estimates and corrects it and records what the command writes."""
    clean = _phantom(32)
    kspace = simulate_radial(clean, RadialSimulation(spokes=24, coils=4, delay=GradientDelay(0.4, -0.3, 0.0), seed=2))
    image, record = medrestore.recon(kspace, method="cs-tv", device="cpu")
    assert image.shape == (32, 32)
    assert record["method"] == "cs-tv" and record["lambda_selection"]["rule"] == "k-space hold-out"
    assert record["delay"][:2] == pytest.approx([0.4, -0.3], abs=0.02)  # RING on the simulated delay
    path = tmp_path / "radial.npz"
    write_kspace(kspace, path)
    from_file = reconstruct_file(path, tmp_path / "out.npy", ReconOptions(method="cs-tv", device="cpu"))
    assert from_file["delay"] == record["delay"] and from_file["lambda"] == pytest.approx(record["lambda"])


def test_an_in_memory_image_is_named_in_errors() -> None:
    with pytest.raises(InputError, match=r"^in-memory image: gamma-camera needs square pixels; the spacing is 0.9 x 1.1 mm$"):
        medrestore.degrade(_phantom(64, "nm"), "gamma-camera", peak_counts=100.0)


def test_nan_is_refused_naming_the_option_and_zeroed_on_request() -> None:
    clean = _phantom()
    holed = clean.with_data(torch.where(torch.arange(64) == 5, torch.nan, clean.data))
    with pytest.raises(InputError, match=r"^in-memory image: contains 64 NaN.*pass --nonfinite zero \(Python: nonfinite=\"zero\"\)"):
        medrestore.degrade(holed, "gaussian", sigma=0.1)
    noisy, how = medrestore.degrade(holed, "gaussian", sigma=0.0, seed=0, nonfinite="zero")
    assert how["nonfinite_replaced"]["nan"] == 64 and bool(torch.isfinite(noisy.data).all())
    assert float(noisy.data[:, 5].abs().max()) == 0.0


def test_superres_keeps_the_counts() -> None:
    activity = _phantom(128, "nm")
    activity = medrestore.Image(activity.data, affine_from_spacing((0.6, 0.6)), 2, "nm")
    counts, _ = medrestore.degrade(activity, "gamma-camera", peak_counts=100.0, seed=1)
    fine, record = medrestore.superres(counts, scale=4, device="cpu")
    assert tuple(fine.shape) == (128, 128) and record["method"] == "dct-mlem"
    assert float(fine.data.sum()) == pytest.approx(float(counts.data.sum()), rel=1e-5)
    np.testing.assert_allclose(fine.spacing, np.asarray(counts.spacing) / 4)


def test_import_stays_light() -> None:
    """``import medrestore`` loads no torch; the API is loaded when first used."""
    probe = "import sys, medrestore; assert 'torch' not in sys.modules; medrestore.denoise; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
    assert {"denoise", "recon", "superres", "harmonize", "degrade", "evaluate"} <= set(medrestore.__all__)


def test_readme_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(README), "exec"), namespace)  # noqa: S102 - the project's own README
    lines = capsys.readouterr().out.splitlines()
    gain = re.match(r"nlm: PSNR ([\d.]+) → ([\d.]+) dB", lines[0])
    assert gain is not None and float(gain.group(2)) > float(gain.group(1)) + 5.0
    assert lines[1].startswith("dct-mlem (128, 128)")
    counts = re.search(r"(\d+) of (\d+) counts", lines[1])
    assert counts is not None and counts.group(1) == counts.group(2)
    assert lines[2] == "cs-wavelet (128, 128)"
    harmonised = namespace["harmonised"]
    assert isinstance(harmonised, medrestore.Image) and tuple(harmonised.shape) == (128, 128)


def test_output_writes_the_file_and_its_record(tmp_path: Path) -> None:
    """``output=`` writes the result (and ``OUTPUT.json``) where asked, for an in-memory input too; the result is that path."""
    clean = _phantom()
    path, how = medrestore.degrade(clean, "gaussian", sigma=0.1, seed=4, output=tmp_path / "noisy.nii.gz")
    assert path == tmp_path / "noisy.nii.gz" and how["input"] == "<memory>" and how["output"] == str(path)
    assert json.loads((tmp_path / "noisy.nii.gz.json").read_text())["degradation"] == how["degradation"]
    torch.testing.assert_close(read_image(path).data, medrestore.degrade(clean, "gaussian", sigma=0.1, seed=4).output.data)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["noisy.nii.gz", "noisy.nii.gz.json"]  # no temporary left

    maps = birdcage_coil_maps((32, 32), 4, 1.5)
    mask = sample_mask(MaskSpec("equispaced", 2, 0.16, 0), (32, 32))
    kspace = medrestore.KSpace(simulate_kspace(clean.data[::2, ::2].to(torch.complex64), maps, 0.0, make_generator(0)) * mask, (32, 32), mask)
    written, record = medrestore.recon(kspace, "zero-filled", device="cpu", output=tmp_path / "zf.npy")
    assert written == tmp_path / "zf.npy" and record["input"] == "<memory>" and record["method"] == "zero-filled"
    torch.testing.assert_close(read_image(written).data, medrestore.recon(kspace, "zero-filled", device="cpu").output.data)
    with pytest.raises(InputError, match="overwrite"):
        medrestore.degrade(tmp_path / "noisy.nii.gz", "gaussian", sigma=0.1, output=tmp_path / "noisy.nii.gz")


def test_an_image_scaled_on_reading_goes_to_the_workflow_unclipped(tmp_path: Path) -> None:
    """An in-memory image read from an int16 NIfTI with scl_slope (values to ~150 000) was handed to the workflow
    cast to int16, every value above 32 767 clipped before denoising."""
    import nibabel

    values = np.clip(np.random.default_rng(1).normal(100_000, 15_000, size=(20, 20, 12)), 0, None)
    scaled = nibabel.Nifti1Image(values, np.eye(4))
    scaled.set_data_dtype(np.int16)
    nibabel.save(scaled, tmp_path / "scaled.nii")
    image = read_image(tmp_path / "scaled.nii")
    assert image.metadata["dtype"] == "int16" and float(image.data.max()) > 100_000
    denoised, record = medrestore.denoise(image, modality="mri", method="nlm")
    assert record["output_dtype"] == "float32" and float(denoised.data.mean()) == pytest.approx(float(values.mean()), rel=0.02)
