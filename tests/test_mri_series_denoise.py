"""4-D MRI denoising along the volume axis (MP-PCA, Patch2Self via dipy), tSNR maps and thin slice stacks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from medrestore.core.errors import InputError
from medrestore.data.bold import block_design, block_design_series
from medrestore.data.mri_phantom import brain_phantom
from medrestore.metrics.repeated import design_response, temporal_snr_map
from medrestore.models.series_denoise import mppca_series, patch2self_series
from medrestore.physics.noise import add_rician_noise
from medrestore.tasks.denoise import denoise_file
from medrestore.tasks.denoise_mri import series_mask, tsnr_map_path

pytest.importorskip("dipy")
pytest.importorskip("sklearn")

SHAPE = (20, 24, 14)
VOLUMES = 30


def bold_series(amplitude: float = 0.04, sigma: float = 0.02, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The phantom whose ``active`` voxels rise by ``amplitude`` in blocks of 5 volumes on, 5 off: clean series, noisy
    series, design and active mask."""
    clean = brain_phantom(SHAPE, seed=3)[0]
    active = np.zeros(SHAPE, bool)
    active[6:12, 8:14, 5:9] = True
    active &= clean > 0.3
    series, noisy, design = block_design_series(clean, active, amplitude, VOLUMES, 5, sigma, seed)
    return series, noisy, design, active


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return bold_series()


def test_mppca_removes_noise_and_keeps_the_bold_response(simulated: tuple[np.ndarray, ...]) -> None:
    clean, noisy, design, active = simulated
    denoised, sigma = mppca_series(noisy)
    tissue = clean[..., 0] > 0.3
    error_before = np.mean((noisy[tissue] - clean[tissue]) ** 2)
    error_after = np.mean((denoised[tissue] - clean[tissue]) ** 2)
    assert error_after < error_before / 5  # > 7 dB
    assert float(np.median(sigma[tissue])) == pytest.approx(0.02, rel=0.25)  # the Marchenko–Pastur noise estimate
    assert design_response(clean, design, active) == pytest.approx(0.04)
    assert block_design(6, 2).tolist() == [0, 0, 1, 1, 0, 0]
    assert design_response(denoised, design, active) == pytest.approx(0.04, rel=0.1)  # the 4 % response stays within 10 %


def test_patch2self_fits_each_volume_from_the_others_and_damps_a_local_response(simulated: tuple[np.ndarray, ...]) -> None:
    clean, noisy, design, active = simulated
    denoised = patch2self_series(noisy)
    assert np.array_equal(denoised, patch2self_series(noisy))  # the sketch's hashes are seeded
    # reference: the ordinary least-squares prediction of volume 0 from the others (with an intercept)
    voxels = noisy.reshape(-1, VOLUMES).astype(np.float64)
    regressors = np.c_[voxels[:, 1:], np.ones(len(voxels))]
    prediction = regressors @ np.linalg.lstsq(regressors, voxels[:, 0], rcond=None)[0]
    tissue = clean[..., 0] > 0.3
    assert np.corrcoef(denoised[..., 0][tissue], prediction.reshape(SHAPE)[tissue])[0, 1] > 0.99
    assert np.mean(denoised[tissue]) == pytest.approx(np.mean(clean[tissue]), rel=0.02)
    # one regression over all voxels predicts the time course the whole volume shares, so a response confined to a
    # few voxels is damped (benchmarks/mri-series-denoise.md: the simulated BOLD check)
    assert design_response(denoised, design, active) < 0.6 * 0.04  # about half of it goes


def test_series_methods_from_the_command_write_the_tsnr_map(tmp_path: Path, simulated: tuple[np.ndarray, ...]) -> None:
    _, noisy, _, _ = simulated
    source = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(noisy, np.diag([2.0, 2.0, 2.5, 1.0])), source)
    output = tmp_path / "out.nii.gz"
    result = denoise_file(source, output, "mri", method="mppca")
    assert result.method == "mppca" and result.volumes == VOLUMES and result.tsnr_gain is not None and result.tsnr_gain > 3
    denoised = nib.load(output).get_fdata()
    mask = series_mask(torch.from_numpy(noisy).movedim(-1, 0))
    assert 0 < mask.sum() < mask.size
    assert np.allclose(denoised, mppca_series(noisy, mask=mask)[0], atol=1e-4)  # patches fitted inside the object only
    far = ~ndimage.binary_dilation(mask, structure=np.ones((5, 5, 5), bool))
    assert np.array_equal(denoised[far], noisy[far])
    maps = nib.load(tsnr_map_path(output))
    assert maps.shape == (*SHAPE, 2) and np.allclose(maps.affine, np.diag([2.0, 2.0, 2.5, 1.0]))
    before = noisy.mean(-1) / noisy.std(-1, ddof=1)
    spread = denoised.std(-1, ddof=1)
    after = np.divide(denoised.mean(-1), spread, out=np.zeros_like(spread), where=spread > 0)  # 0 for a constant course
    assert np.allclose(maps.get_fdata()[..., 0], before, rtol=1e-4)
    assert np.allclose(maps.get_fdata()[..., 1], after, rtol=1e-3)
    assert np.array_equal(temporal_snr_map(np.ones((2, 3))), np.zeros(2, np.float32))  # constant course: 0


def test_series_methods_refuse_a_single_volume(tmp_path: Path) -> None:
    source = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(brain_phantom(SHAPE, seed=3)[0].astype(np.float32), np.eye(4)), source)
    with pytest.raises(InputError, match="one.nii.gz.*4-D series"):
        denoise_file(source, tmp_path / "out.nii.gz", "mri", method="patch2self")


def test_a_three_slice_stack_is_denoised_slice_by_slice_in_2d(tmp_path: Path) -> None:
    clean = brain_phantom((48, 44, 3), seed=3)[0]
    noisy = add_rician_noise(torch.from_numpy(clean), 0.05, torch.Generator().manual_seed(0)).numpy().astype(np.float32)
    source = tmp_path / "stack.nii.gz"
    nib.save(nib.Nifti1Image(noisy, np.eye(4)), source)
    result = denoise_file(source, tmp_path / "out.nii.gz", "mri", method="auto", sigma="0.05")
    assert result.method == "nlm"
    denoised = nib.load(tmp_path / "out.nii.gz").get_fdata()
    for index in range(3):  # each slice as its own 2-D image gives the same values
        plane = tmp_path / f"plane{index}.nii.gz"
        nib.save(nib.Nifti1Image(noisy[:, :, index : index + 1], np.eye(4)), plane)
        denoise_file(plane, tmp_path / f"plane{index}-out.nii.gz", "mri", method="nlm", sigma="0.05")
        assert np.allclose(denoised[:, :, index], nib.load(tmp_path / f"plane{index}-out.nii.gz").get_fdata()[:, :, 0], atol=1e-6)
    tissue = clean > 0
    assert np.mean((denoised[tissue] - clean[tissue]) ** 2) < np.mean((noisy[tissue] - clean[tissue]) ** 2) / 2


def _test_file(module: str, *parts: str) -> Path:
    """A test file shipped inside an installed package (skips when it is absent)."""
    spec = importlib.util.find_spec(module)
    path = Path(spec.origin).parent.joinpath(*parts) if spec is not None and spec.origin is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"{module} does not ship {'/'.join(parts)}")
    return path


@pytest.mark.parametrize(
    ("module", "parts"),
    [
        ("nibabel", ("tests", "data", "functional.nii")),  # 17 × 21 × 3 slices × 20 volumes (fMRI)
        ("nibabel", ("tests", "data", "example4d.nii.gz")),  # 128 × 96 × 24 × 2
        ("nibabel", ("tests", "data", "anatomical.nii")),
        ("dipy", ("data", "files", "small_25.nii.gz")),  # 10 × 8 × 2 slices × 26 diffusion volumes
        ("dipy", ("data", "files", "S0_10slices.nii.gz")),
    ],
)
def test_other_tools_test_series_denoise_with_every_default(module: str, parts: tuple[str, ...], tmp_path: Path) -> None:
    """nibabel's and dipy's own MRI test files, σ and method left to the command: each is denoised (none refused),
    keeps its shape, and stays finite and non-negative; the thin stacks go slice by slice."""
    source = _test_file(module, *parts)
    before = nib.load(source)
    target = tmp_path / "out.nii.gz"
    result = denoise_file(source, target, "mri")
    after = np.asarray(nib.load(target).dataobj, dtype=np.float64)
    assert after.shape == before.shape
    assert np.isfinite(after).all() and after.min() >= 0
    assert all(sigma > 0 for sigma in result.sigmas)
    if len(before.shape) == 4 and before.shape[3] > 1:  # a series: its tSNR maps too
        assert tsnr_map_path(target).is_file()
    if len(before.shape) == 4 and before.shape[3] >= 3:  # and σ at most its temporal bound
        assert result.sigma_temporal is not None and max(result.sigmas) <= result.sigma_temporal


def test_a_series_without_an_object_has_no_temporal_bound_and_is_still_denoised(tmp_path: Path) -> None:
    """Pure Rayleigh noise in every volume: no series mask, so no temporal bound, and σ per volume as before."""
    noise = add_rician_noise(torch.zeros(5, 24, 24, 12), 0.05, torch.Generator().manual_seed(2)).numpy()
    source = tmp_path / "noise.nii.gz"
    nib.save(nib.Nifti1Image(np.moveaxis(noise, 0, -1).astype(np.float32), np.eye(4)), source)
    result = denoise_file(source, tmp_path / "out.nii.gz", "mri", method="nlm")
    assert result.sigma_temporal is None and len(result.sigmas) == 5
