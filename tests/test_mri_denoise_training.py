"""Short training runs of the MRI denoisers: the loss falls for every network, GAN runs resume exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.data.mri_phantom import brain_phantom
from medrestore.models.patch_discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from medrestore.training.adversarial import AdversarialTrainer
from medrestore.training.checkpoint import load_checkpoint
from medrestore.training.config import config_from_mapping
from medrestore.training.experiment import build_trainer
from medrestore.training.trainer import StepInfo

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mri") / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(brain_phantom((40, 40, 48), seed=6)[0] * 100.0, np.eye(4)), path)
    return path


def mapping(volume: Path, output: Path, patch: list[int], model: dict[str, Any], steps: int, adversarial: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "data": {
            "layout": "mri-denoise",
            "mri_denoise": {"volume": str(volume), "validation_slab": [20, 28], "validation_every": 4, "sigma_range": [0.03, 0.08]},
            "patch_size": patch,
            "patches_per_image": 8,
            "normalisation": {"kind": "none"},
        },
        "model": model,
        "optim": {"lr": 3.0e-3},
        "train": {"epochs": 50, "batch_size": 4, "loss": "l1", "max_steps": steps, "output_dir": str(output),
                  "progress_bar": False, "validate_every": 100, "data_range": 1.0},  # fmt: skip
    }
    if adversarial:
        config["adversarial"] = {"weight": 0.01, "discriminator": {"base_channels": 4, "layers": 2}, "warmup_steps": 2}
    return config


def run(config: dict[str, Any], resume: bool = False) -> tuple[list[float], Any]:
    losses: list[float] = []

    def record(info: StepInfo) -> None:
        losses.append(info.loss)

    trainer = build_trainer(config_from_mapping(config), CPU, callbacks=(record,))
    trainer.fit(resume=resume)
    return losses, trainer


UNET2D = {"name": "unet", "options": {"spatial_ndim": 2, "base_channels": 4, "depth": 2, "norm": "batch", "residual": True}}
UNET3D = {"name": "unet", "options": {"spatial_ndim": 3, "base_channels": 4, "depth": 2, "norm": "batch", "residual": True}}
SRCNN = {"name": "srcnn", "options": {"spatial_ndim": 2, "features": [16, 8], "kernel_sizes": [5, 1, 3]}}


@pytest.mark.parametrize(
    ("model", "patch", "adversarial"),
    [(UNET2D, [32, 32], False), (UNET3D, [16, 16, 16], False), (SRCNN, [32, 32], False), (UNET2D, [32, 32], True)],
    ids=["unet2d", "unet3d", "srcnn", "gan"],
)
def test_short_training_lowers_the_loss(volume: Path, tmp_path: Path, model: dict[str, Any], patch: list[int], adversarial: bool) -> None:
    torch.manual_seed(0)
    losses, trainer = run(mapping(volume, tmp_path / "run", patch, model, 40, adversarial))
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    assert isinstance(trainer, AdversarialTrainer) == adversarial


def test_gan_checkpoint_holds_the_discriminator_and_resumes_exactly(volume: Path, tmp_path: Path) -> None:
    straight, _ = run(mapping(volume, tmp_path / "straight", [32, 32], UNET2D, 6, adversarial=True))
    run(mapping(volume, tmp_path / "resumed", [32, 32], UNET2D, 3, adversarial=True))
    checkpoint = load_checkpoint(tmp_path / "resumed" / "last.pt", map_location="cpu")
    assert set(checkpoint["discriminator"]) == {"state_dict", "optimizer"}
    resumed, _ = run(mapping(volume, tmp_path / "resumed", [32, 32], UNET2D, 6, adversarial=True), resume=True)
    assert resumed == pytest.approx(straight[3:], rel=1e-6)


def test_discriminator_shapes_and_bad_options(volume: Path, tmp_path: Path) -> None:
    critic = PatchDiscriminator(PatchDiscriminatorConfig(spatial_ndim=3, base_channels=4, layers=2))
    assert critic(torch.zeros(2, 1, 16, 16, 16)).shape == (2, 1, 4, 4, 4)
    config = mapping(volume, tmp_path / "bad", [32, 32], UNET2D, 2, adversarial=True)
    config["adversarial"]["discriminator"] = {"depth": 3}
    with pytest.raises(ConfigError, match="unknown option"):
        build_trainer(config_from_mapping(config), CPU)
    config = mapping(volume, tmp_path / "bad", [32, 32], UNET2D, 2)
    config["data"]["mri_denoise"]["validation_slab"] = [40, 60]
    with pytest.raises(ConfigError, match="exceeds"):
        build_trainer(config_from_mapping(config), CPU)


def test_sigma_conditioned_unet_trains_and_gets_the_estimated_sigma_at_inference(volume: Path, tmp_path: Path) -> None:
    """``sigma_map: true``: 2-channel inputs (image, constant σ) in training; ``network_denoise`` appends σ / scale."""
    from medrestore.data.mri import RicianPairs, intensity_scale
    from medrestore.inference.predictor import Predictor
    from medrestore.tasks.denoise_mri import network_denoise

    pairs = RicianPairs([torch.ones(8, 8)], (0.05, 0.05), ["flat"], sigma_map=True)
    noisy, clean = pairs.pair(0, torch.Generator().manual_seed(0))
    assert noisy.shape == (2, 8, 8) and clean.shape == (1, 8, 8) and torch.all(noisy[1] == 0.05)
    torch.manual_seed(0)
    config = mapping(volume, tmp_path / "run", [32, 32], {**UNET2D, "options": {**UNET2D["options"], "in_channels": 2}}, 40)
    config["data"]["mri_denoise"]["sigma_map"] = True
    losses, trainer = run(config)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])

    class SigmaChannel(torch.nn.Module):  # returns its σ channel: shows what the network is given
        config = type("Options", (), {"in_channels": 2})()
        spatial_ndim = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, 1:2]

    image = 50.0 + 10.0 * torch.rand(6, 6, 4, generator=torch.Generator().manual_seed(1))
    predictor = Predictor(SigmaChannel(), trainer.normalisation, None, device="cpu")
    output = network_denoise(image, predictor, sigma=2.5)
    torch.testing.assert_close(output, torch.full_like(image, 2.5))  # σ / scale in, × scale out
    assert intensity_scale(image) != 1.0


def test_noise_on_patches_cuts_the_clean_patch_first_with_rician_statistics() -> None:
    """``noise_on_patches``: the target is an exact crop of the clean volume; the input is Rician at σ
    (``E[M²] = A² + 2σ²``) and the σ channel holds σ; the whole volume is never degraded."""
    from medrestore.data.mri import RicianPairs
    from medrestore.data.normalisation import NoNormalisation
    from medrestore.data.paired import PairedPatchDataset, PatchSampling

    clean = torch.rand(24, 20, 16, generator=torch.Generator().manual_seed(0)) + 1.0
    pairs = RicianPairs([clean], (0.2, 0.2), ["volume"], sigma_map=True, noise_on_patches=True)
    assert pairs.degrades_patches()
    pairs.pair = None  # type: ignore[method-assign]  # the patch-first path must not degrade the whole image
    dataset = PairedPatchDataset(pairs, NoNormalisation(), PatchSampling((8, 8, 8), patches_per_image=4), seed=0)
    for index in range(4):
        noisy, target = dataset.item(0, index)
        assert noisy.shape == (2, 8, 8, 8) and target.shape == (1, 8, 8, 8)
        matches = [
            (a, b, c) for a in range(17) for b in range(13) for c in range(9) if torch.equal(clean[a : a + 8, b : b + 8, c : c + 8], target[0])
        ]
        assert len(matches) == 1
        assert torch.all(noisy[1] == 0.2)
    big = RicianPairs([torch.full((40, 40, 40), 1.0)], (0.2, 0.2), ["flat"], noise_on_patches=True)
    noisy, _ = big.patch_pair(0, (0, 0, 0), (40, 40, 40), torch.Generator().manual_seed(1))
    assert float((noisy**2).mean()) == pytest.approx(1.0 + 2 * 0.2**2, rel=0.01)
    assert not RicianPairs([clean], (0.2, 0.2), ["volume"]).degrades_patches()


def test_gamma_and_brightness_augmentation_change_the_training_target() -> None:
    """``x ↦ b·m·(x/m)^γ`` with γ, b log-uniform in their ranges; both the target and the noisy input follow."""
    from medrestore.data.mri import RicianPairs

    clean = torch.linspace(0.0, 2.0, 64).reshape(4, 4, 4)
    plain = RicianPairs([clean], (0.0, 0.0), ["ramp"])
    _, target = plain.pair(0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(target[0], clean)
    augmented = RicianPairs([clean], (0.0, 0.0), ["ramp"], gamma_range=(0.5, 2.0), brightness_range=(0.5, 1.0))
    seen = []
    for seed in range(40):
        noisy, target = augmented.pair(0, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(noisy, target)  # σ = 0
        brightness = float(target[0].max()) / 2.0
        gamma = float(torch.log(target[0, 2, 0, 0] / brightness / 2.0) / torch.log(clean[2, 0, 0] / 2.0))
        torch.testing.assert_close(target[0], brightness * 2.0 * (clean / 2.0) ** gamma, rtol=1e-4, atol=1e-6)
        seen.append((gamma, brightness))
    gammas, brightnesses = np.array(seen).T
    assert 0.5 <= gammas.min() < 0.7 and 1.4 < gammas.max() <= 2.0
    assert 0.5 <= brightnesses.min() < 0.6 and 0.9 < brightnesses.max() <= 1.0
    with pytest.raises(ConfigError, match="brightness_range"):
        config_from_mapping(mapping_with(brightness_range=[1.0, 0.5]))
    with pytest.raises(ConfigError, match="gamma_range"):
        config_from_mapping(mapping_with(gamma_range=[0.0, 1.0]))


def mapping_with(**options: Any) -> dict[str, Any]:
    config = mapping(Path("unused.nii.gz"), Path("unused"), [16, 16, 16], UNET3D, 1)
    config["data"]["mri_denoise"].update(options)
    return config


def test_synthetic_phantoms_join_the_training_images(volume: Path, tmp_path: Path) -> None:
    from medrestore.data.mri import PHANTOM_SHAPE, MRIDenoiseDataConfig, mri_denoise_sources

    config = MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), synthetic_phantoms=2)
    training, validation = mri_denoise_sources(config, 3)
    assert len(training) == 4 and len(validation) == 1
    assert [training.name(i) for i in (2, 3)] == ["brain_phantom(seed=1000)", "brain_phantom(seed=1001)"]
    assert training.input_shape(2) == PHANTOM_SHAPE
    _, phantom = training.pair(2, torch.Generator().manual_seed(0))
    assert 0.99 < float(torch.quantile(phantom[phantom > 0.05 * phantom.max()], 0.999)) < 1.01


def test_extra_volumes_join_training_scaled_cropped_and_never_validation(volume: Path, tmp_path: Path) -> None:
    from medrestore.data.mri import CROP_MARGIN, MIN_BRAIN_FRACTION, MRIDenoiseDataConfig, intensity_scale, mri_denoise_sources

    head = np.zeros((60, 50, 40), np.float32)
    head[10:40, 5:45, 8:30] = brain_phantom((30, 40, 22), seed=3)[0] * 700.0  # another brain, another scale
    path = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(head, np.eye(4)), path)
    before = path.read_bytes()
    config = MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), extra_volumes=(str(path),))
    training, validation = mri_denoise_sources(config, 3)
    assert len(training) == 3 and len(validation) == 1 and training.name(2) == "other.nii.gz"
    tissue = np.argwhere(head > 0.05 * intensity_scale(head))
    box = tuple(slice(max(0, lo - CROP_MARGIN), min(n, hi + 1 + CROP_MARGIN)) for lo, hi, n in zip(tissue.min(0), tissue.max(0), head.shape, strict=True))
    crop = head[box]
    assert training.input_shape(2) == crop.shape
    _, clean = training.pair(2, torch.Generator().manual_seed(0))
    assert 0.99 < float(torch.quantile(clean[clean > 0.05 * clean.max()], 0.999)) < 1.01  # its own robust maximum
    slices, _ = mri_denoise_sources(config, 2)
    kept = [f"other.nii.gz[2={z}]" for z in range(crop.shape[2]) if (crop[:, :, z] > 0).mean() >= MIN_BRAIN_FRACTION]
    assert 0 < len(kept) < crop.shape[2] and [n for n in (slices.name(i) for i in range(len(slices))) if n.startswith("other")] == kept
    assert path.read_bytes() == before
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.float32), np.eye(4)), flat)
    with pytest.raises(InputError, match="flat.nii.gz"):
        mri_denoise_sources(MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), extra_volumes=(str(flat),)), 3)


def test_random_cut_keeps_40_to_80_percent_behind_a_smooth_boundary_and_cuts_input_and_target(volume: Path, tmp_path: Path) -> None:
    from medrestore.data.mri import CUT_KEPT, MRIDenoiseDataConfig, mri_denoise_sources, random_cut

    generator = torch.Generator().manual_seed(0)
    cuts = [random_cut((64, 64, 48), generator) for _ in range(20)]
    kept = [float(c.float().mean()) for c in cuts]
    assert CUT_KEPT[0] - 0.01 <= min(kept) and max(kept) <= CUT_KEPT[1] + 0.01 and max(kept) - min(kept) > 0.2
    # a smooth boundary: few voxels differ from their neighbour (a random mask would flip half of them)
    assert max(float((c[1:] != c[:-1]).float().mean()) for c in cuts) < 0.1
    assert random_cut((30, 20), torch.Generator().manual_seed(1)).shape == (30, 20)
    assert torch.equal(random_cut((16, 16, 16), torch.Generator().manual_seed(2)), random_cut((16, 16, 16), torch.Generator().manual_seed(2)))
    with pytest.raises(ConfigError, match="cut_probability"):
        MRIDenoiseDataConfig(str(volume), cut_probability=1.5)
    tissue = tmp_path / "tissue.nii.gz"  # tissue everywhere
    nib.save(nib.Nifti1Image(np.full((40, 40, 48), 100.0, np.float32), np.eye(4)), tissue)
    config = MRIDenoiseDataConfig(str(tissue), validation_slab=(20, 28), sigma_range=(0.05, 0.05), noise_on_patches=True, cut_probability=1.0)
    training, validation = mri_denoise_sources(config, 3)
    noisy, target = training.patch_pair(0, (8, 8, 4), (32, 32, 16), torch.Generator().manual_seed(3))
    cut = target == 0
    assert 0.15 < float(cut.float().mean()) < 0.65 and bool((target[~cut] == 1.0).all())  # the cut removed tissue
    sigma = training.sigma_range[0]
    assert float(noisy[0][cut[0]].mean()) == pytest.approx(sigma * (np.pi / 2) ** 0.5, rel=0.1)  # Rician background
    _, untouched = validation.pair(0, torch.Generator().manual_seed(3))
    assert float((untouched > 0).float().mean()) > 0.5  # validation images are never cut


def test_scaled_patch_resamples_a_centred_region_and_scale_range_reaches_the_training_pairs(volume: Path, tmp_path: Path) -> None:
    from medrestore.data.mri import MRIDenoiseDataConfig, mri_denoise_sources, scaled_patch
    from medrestore.data.patches import extract_patch

    image = torch.arange(40 * 36 * 30, dtype=torch.float32).reshape(1, 40, 36, 30)
    assert torch.equal(scaled_patch(image, (4, 5, 6), (16, 12, 8), (1.0, 1.0, 1.0)), extract_patch(image, (4, 5, 6), (16, 12, 8)))
    # a linear ramp stays a ramp: resampling a region twice the patch side doubles its slope, same centre
    ramp = torch.linspace(0.0, 39.0, 40)[:, None, None].expand(40, 36, 30)[None].contiguous()
    twice = scaled_patch(ramp, (12, 10, 10), (16, 16, 8), (2.0, 1.0, 1.0))
    assert twice.shape == (1, 16, 16, 8)
    assert float(twice[0, 1:, 0, 0].diff().mean()) == pytest.approx(2.0, abs=1e-5)
    assert float(twice.mean()) == pytest.approx(float(extract_patch(ramp, (12, 10, 10), (16, 16, 8)).mean()), abs=1e-4)
    # near the border the region moves inside the image; larger than the image, it is the whole axis
    assert scaled_patch(ramp, (0, 0, 0), (16, 16, 8), (1.5, 1.0, 1.0))[0, 0, 0, 0] == pytest.approx(0.5 * 1.5 - 0.5, abs=1e-5)  # voxel centres
    assert scaled_patch(ramp, (0, 0, 0), (32, 16, 8), (4.0, 1.0, 1.0)).shape == (1, 32, 16, 8)
    with pytest.raises(ConfigError, match="scale_range"):
        MRIDenoiseDataConfig(str(volume), scale_range=(1.2, 0.8), noise_on_patches=True)
    with pytest.raises(ConfigError, match="noise_on_patches"):
        MRIDenoiseDataConfig(str(volume), scale_range=(0.8, 1.25))
    config = MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), sigma_range=(0.0, 0.0), noise_on_patches=True, scale_range=(0.8, 1.25))
    training, _ = mri_denoise_sources(config, 3)
    noisy, target = training.patch_pair(0, (4, 4, 2), (16, 16, 12), torch.Generator().manual_seed(0))
    assert noisy.shape == target.shape == (1, 16, 16, 12) and torch.allclose(noisy, target)  # σ = 0: input = resampled target
    plain = extract_patch(training.pair(0, torch.Generator().manual_seed(0))[1], (4, 4, 2), (16, 16, 12))
    assert not torch.allclose(target, plain)  # resampled, not cut


def test_grad_clip_bounds_the_gradient_norm_before_every_step(volume: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters: Any, max_norm: float) -> torch.Tensor:
        parameters = list(parameters)
        total = clip(parameters, max_norm)
        norms.append(float(torch.sqrt(sum((p.grad**2).sum() for p in parameters if p.grad is not None))))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    config = mapping(volume, tmp_path / "run", [16, 16, 16], UNET3D, 3)
    config["train"]["grad_clip"] = 1e-3
    run(config)
    assert len(norms) == 3 and max(norms) == pytest.approx(1e-3, rel=1e-3)
    config["train"]["grad_clip"] = 0.0
    with pytest.raises(ConfigError, match="grad_clip"):
        config_from_mapping(config)


def test_target_volume_is_the_target_while_the_noise_is_drawn_on_the_volume(volume: Path, tmp_path: Path) -> None:
    """``data.mri_denoise.target``: inputs are the volume plus Rician noise, targets the target volume
    cut, cropped and augmented (γ, brightness) exactly like its image, in the volume's scale."""
    from medrestore.data.mri import MRIDenoiseDataConfig, RicianPairs, intensity_scale, mri_denoise_sources

    image = nib.load(volume)
    data = np.asarray(image.dataobj, dtype=np.float32)
    smooth = data * 0.5 + 3.0
    target_path = tmp_path / "target.nii.gz"
    nib.save(nib.Nifti1Image(smooth, image.affine), target_path)
    config = MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), sigma_range=(0.0, 0.0), target=str(target_path))
    training, validation = mri_denoise_sources(config, 3)
    scale = intensity_scale(data)
    noisy, target = training.patch_pair(1, (3, 4, 2), (8, 8, 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(noisy[0], torch.from_numpy(data[3:11, 4:12, 30:38]) / scale)  # σ = 0: the volume
    torch.testing.assert_close(target[0], torch.from_numpy(smooth[3:11, 4:12, 30:38]) / scale)
    noisy, target = validation.pair(0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(target[0], torch.from_numpy(smooth[:, :, 20:28]) / scale)
    clean = torch.linspace(0.1, 2.0, 64).reshape(4, 4, 4)
    augmented = RicianPairs([clean], (0.0, 0.0), ["ramp"], gamma_range=(0.5, 2.0), brightness_range=(0.5, 1.0), targets=[clean * 0.5])
    plain = RicianPairs([clean], (0.0, 0.0), ["ramp"], gamma_range=(0.5, 2.0), brightness_range=(0.5, 1.0))
    for seed in range(5):
        noisy, target = augmented.pair(0, torch.Generator().manual_seed(seed))
        same, _ = plain.pair(0, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(noisy, same)  # the random stream is unchanged by a target
        gamma = float(torch.log(noisy[0, 2, 0, 0] / noisy[0, 3, 3, 3]) / torch.log(clean[2, 0, 0] / clean[3, 3, 3]))
        torch.testing.assert_close(target[0], noisy[0] * 0.5**gamma, rtol=1e-4, atol=1e-6)
    with pytest.raises(ConfigError, match="shape"):
        RicianPairs([clean], (0.0, 0.0), ["ramp"], targets=[clean[:2]])
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(smooth[:-1], image.affine), wrong)
    with pytest.raises(InputError, match="wrong.nii.gz"):
        mri_denoise_sources(MRIDenoiseDataConfig(str(volume), validation_slab=(20, 28), target=str(wrong)), 3)


def test_residual_noise_estimate_of_the_clean_target_script() -> None:
    """``benchmarks/make_clean_target.py``: the Haar-MAD estimate inside the brain finds σ of white noise on a
    smooth volume (within 5 %), and ignores the zero background and the brain's edge."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_clean_target", Path(__file__).resolve().parents[1] / "benchmarks" / "make_clean_target.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 48)] * 3, indexing="ij"))
    volume = 100.0 + 20.0 * grid[0] + 10.0 * np.sin(3 * grid[1])
    volume = volume + np.random.default_rng(0).normal(0.0, 1.5, volume.shape)
    volume[(grid**2).sum(axis=0) > 0.8] = 0.0
    assert module.residual_sigma(volume.astype(np.float32)) == pytest.approx(1.5, rel=0.05)
