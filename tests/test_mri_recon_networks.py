"""MRI reconstruction networks: simulated coil data, the training dataset, the VGG-U-Net and the unrolled network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from medrestore.core.complex import channels_to_complex, complex_to_channels
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.fft import fftc, ifftc
from medrestore.core.random import make_generator
from medrestore.data.mri_recon import MRIReconDataConfig, MRIReconDataset, MRISliceSource, load_brain_slices, undersampled_sample
from medrestore.models import create_model
from medrestore.models.unrolled import DataConsistencyStep, UnrolledNet, sense_operators
from medrestore.models.vgg_unet import VGGUNet, VGGUNetConfig, vgg19_features
from medrestore.physics.mri.sense import cartesian_sense, coil_combine
from medrestore.solvers.reconstruction import cg_sense
from medrestore.physics.mri.simulation import (
    CoilSimulation,
    birdcage_coil_maps,
    gaussian_coil_maps,
    random_coil_maps,
    simulate_kspace,
    smooth_phase,
)

torch.set_num_threads(1)


def _disc_image(size: int = 32) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    image = (rows**2 + cols**2 < (0.4 * size) ** 2).astype(np.float32)
    image[size // 3 : size // 2, size // 3 : 2 * size // 3] = 0.5
    return image


@pytest.fixture()
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "disc.npy"
    np.save(path, _disc_image(40))
    return path


def _config(image_file: Path, **changes: object) -> MRIReconDataConfig:
    source = MRISliceSource(files=(str(image_file),))
    base = MRIReconDataConfig(
        training=source, image_size=32, masks=("random", "equispaced"), samples_per_image=2,
        coils=CoilSimulation(coils=(4, 6), noise_range=(0.0, 0.0)), max_coils=8,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- physics: simulated coils ------------------------------------------------------------------
def test_simulated_coil_maps_have_unit_root_sum_of_squares() -> None:
    for maps in (birdcage_coil_maps((24, 20), 8, radius=1.4), gaussian_coil_maps((24, 20), 6, width=0.6)):
        assert maps.dtype == torch.complex64 and tuple(maps.shape[1:]) == (24, 20)
        torch.testing.assert_close((maps.abs() ** 2).sum(0), torch.ones(24, 20), atol=1e-5, rtol=0)
    birdcage = birdcage_coil_maps((32, 32), 8, radius=1.5)
    # coil 0 sits at angle 0 (+u, right edge): strongest on the right of the image, weakest on the left
    assert float(birdcage[0, 16, -1].abs()) > 3 * float(birdcage[0, 16, 0].abs())
    # smooth: neighbouring pixels differ by little
    assert float((birdcage[:, :, 1:] - birdcage[:, :, :-1]).abs().max()) < 0.25
    random = random_coil_maps((16, 16), CoilSimulation(coils=(5,)), make_generator(3))
    assert random.shape[0] == 5


def test_smooth_phase_peak_and_smoothness() -> None:
    phase = smooth_phase((32, 32), make_generator(0), order=2, max_phase=1.0)
    assert abs(float(phase.abs().max()) - 1.0) < 1e-6
    assert float((phase[:, 1:] - phase[:, :-1]).abs().max()) < 0.2


def test_simulated_kspace_combines_back_to_the_image() -> None:
    image = torch.polar(torch.from_numpy(_disc_image(32)), smooth_phase((32, 32), make_generator(1)))
    maps = birdcage_coil_maps((32, 32), 6)
    kspace = simulate_kspace(image, maps)
    torch.testing.assert_close(coil_combine(ifftc(kspace, 2), maps), image.to(torch.complex64), atol=1e-5, rtol=0)
    noisy = simulate_kspace(image, maps, 0.1, make_generator(2))
    relative = float((noisy - kspace).abs().pow(2).mean().sqrt() / kspace.abs().pow(2).mean().sqrt())
    assert 0.09 < relative < 0.11


# -- data --------------------------------------------------------------------------------------
def test_dataset_sample_shapes_scaling_and_consistency(image_file: Path) -> None:
    config = _config(image_file)
    dataset = MRIReconDataset(config, config.training, seed=0)
    assert len(dataset) == 2
    sample = dataset.sample(0, 1)
    assert tuple(sample.image.shape) == (2, 32, 32) and sample.image.dtype == torch.float32
    assert tuple(sample.kspace.shape) == (8, 32, 32) and sample.kspace.dtype == torch.complex64
    assert tuple(sample.coil_maps.shape) == (8, 32, 32) and tuple(sample.mask.shape) == (32, 32)
    coils = int((sample.coil_maps.abs().sum((1, 2)) > 0).sum())
    assert coils in (4, 6) and float(sample.kspace[coils:].abs().max()) == 0.0  # zero-padded coils
    # noiseless: the undersampled k-space is exactly A x_target; the zero-filled image is Aᴴ y
    operator = cartesian_sense(sample.coil_maps, sample.mask)
    target = channels_to_complex(sample.target)
    assert float((operator(target) - sample.kspace).abs().max()) < 1e-5 * float(sample.kspace.abs().max())
    torch.testing.assert_close(channels_to_complex(sample.image), operator.H(sample.kspace), atol=1e-5, rtol=0)
    assert abs(float(torch.quantile(channels_to_complex(sample.image).abs().flatten(), 0.99)) - 1.0) < 1e-4
    assert 1.0 / 8.5 < float(sample.mask.mean()) < 1.0 / 3.5
    # a pure function of (seed, epoch, index); another epoch draws a new acquisition
    again = dataset.sample(0, 1)
    assert torch.equal(again.kspace, sample.kspace) and torch.equal(again.mask, sample.mask)
    assert not torch.equal(dataset.sample(1, 1).kspace, sample.kspace)
    inputs, target_channels = dataset[(0, 1)]
    assert torch.equal(inputs, sample.image) and torch.equal(target_channels, sample.target)
    physics = MRIReconDataset(dataclasses.replace(config, inputs="physics"), config.training, seed=0)[(0, 1)][0]
    assert len(physics) == 4 and torch.equal(physics[1], sample.kspace)


def test_dataset_config_errors(image_file: Path) -> None:
    with pytest.raises(ConfigError, match="inputs"):
        _config(image_file, inputs="kspace")
    with pytest.raises(ConfigError, match="masks: give one or more of random"):
        _config(image_file, masks=("spiral",))
    with pytest.raises(ConfigError, match="max_coils"):
        _config(image_file, max_coils=4, coils=CoilSimulation(coils=(8,)))
    with pytest.raises(InputError, match="no such file"):
        load_brain_slices(MRISliceSource(files=(str(image_file.parent / "missing.nii.gz"),)), 32)


def test_fastmri_files_are_a_slice_source(tmp_path: Path, image_file: Path) -> None:
    """A fully sampled multi-coil file in fastMRI's layout: every slice, ESPIRiT maps, target = Sᴴ F⁻¹ y."""
    image = torch.from_numpy(_disc_image(32)).to(torch.complex64)
    maps = birdcage_coil_maps((32, 32), 4)
    kspace = torch.stack([simulate_kspace(image * (1 + s), maps) for s in range(2)]).numpy()
    path = tmp_path / "file_brain.h5"
    with h5py.File(path, "w") as handle:
        handle["kspace"] = kspace
    config = _config(image_file, training=MRISliceSource(fastmri_files=(str(path),)))
    dataset = MRIReconDataset(config, config.training, seed=0)
    assert dataset.slices == 2 and dataset.name(1) == "file_brain.h5[1]"
    sample = dataset.sample(0, 2)
    operator = cartesian_sense(sample.coil_maps[:4], sample.mask)
    residual = operator(channels_to_complex(sample.target)) - sample.kspace[:4]
    assert float(residual.abs().norm() / sample.kspace.abs().norm()) < 0.05  # ESPIRiT maps explain the data
    # the magnitude of the target is the object (to ESPIRiT's accuracy), up to the scale
    magnitude = channels_to_complex(sample.target).abs() * sample.scale
    assert float((magnitude - 2 * image.abs()).norm() / (2 * image.abs()).norm()) < 0.05


# -- models ------------------------------------------------------------------------------------
def _physics_batch(batch: int = 2, size: int = 24, coils: int = 4) -> tuple[torch.Tensor, ...]:
    generator = make_generator(5)
    images = torch.complex(torch.randn(batch, size, size, generator=generator), torch.randn(batch, size, size, generator=generator))
    maps = birdcage_coil_maps((size, size), coils).expand(batch, -1, -1, -1).clone()
    mask = torch.zeros(batch, size, size)
    mask[:, ::3] = 1
    mask[:, size // 2 - 2 : size // 2 + 2] = 1
    kspace = torch.stack([cartesian_sense(maps[n], mask[n])(images[n]) for n in range(batch)])
    adjoint = torch.stack([cartesian_sense(maps[n], mask[n]).H(kspace[n]) for n in range(batch)])
    return images, complex_to_channels(adjoint), kspace, mask, maps


def test_data_consistency_keeps_the_true_image_and_lowers_the_residual() -> None:
    images, adjoint, kspace, mask, maps = _physics_batch()
    operators = sense_operators(kspace, mask, maps)
    step = DataConsistencyStep(initial_step=1.0)
    kept = step(images, operators, channels_to_complex(adjoint))
    torch.testing.assert_close(kept, images, atol=1e-5, rtol=0)
    perturbed = images + 0.5 * torch.randn(images.shape, generator=make_generator(9), dtype=torch.complex64)
    moved = step(perturbed, operators, channels_to_complex(adjoint))

    def residual(x: torch.Tensor) -> float:
        return sum(float((operator(x[n]) - kspace[n]).detach().abs().norm()) for n, operator in enumerate(operators))

    assert residual(moved) < 0.35 * residual(perturbed)  # measured 4.60 vs 15.94 (η = 1 ≤ 2/‖A‖², ‖A‖ ≤ 1)
    assert abs(float(step.step.detach()) - 1.0) < 1e-6


def test_unrolled_shapes_gradients_and_weight_sharing() -> None:
    torch.manual_seed(0)
    images, adjoint, kspace, mask, maps = _physics_batch()
    net = UnrolledNet(create_model("unrolled", {"stages": 3, "features": 4}).config)
    output = net(adjoint, kspace, mask, maps)
    assert tuple(output.shape) == (2, 2, 24, 24) and output.dtype == torch.float32
    (output - complex_to_channels(images)).square().mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.parameters())
    per_stage = sum(p.numel() for p in net.parameters())
    shared = create_model("unrolled", {"stages": 3, "features": 4, "shared_weights": True})
    transform = sum(p.numel() for p in shared.transforms[0].parameters())
    assert per_stage == 3 * transform + 3 and sum(p.numel() for p in shared.parameters()) == transform + 3
    with pytest.raises(InputError, match="together"):
        net(adjoint, kspace, None, maps)
    with pytest.raises(InputError, match="do not match"):
        net(adjoint, kspace, mask[:, :10], maps)


def test_unrolled_with_zero_transform_is_projected_gradient_descent() -> None:
    """With the learned transforms' output layers zeroed each stage is one data-consistency step."""
    images, adjoint, kspace, mask, maps = _physics_batch(batch=1)
    net = create_model("unrolled", {"stages": 2, "features": 4})
    with torch.no_grad():
        for stage in net.transforms:
            stage.tail.weight.zero_()
            stage.tail.bias.zero_()
    output = channels_to_complex(net(adjoint, kspace, mask, maps))
    operator = cartesian_sense(maps[0], mask[0])
    x0 = channels_to_complex(adjoint)[0]
    x = x0
    for step in net.data_consistency:  # Landweber: x ← x − η (AᴴA x − Aᴴy), η = 0.5 (the default)
        assert abs(float(step.step.detach()) - 0.5) < 1e-6
        x = x - 0.5 * (operator.normal(x) - x0)
    torch.testing.assert_close(output[0], x, atol=1e-5, rtol=0)


def test_unrolled_starts_from_cg_sense_when_asked() -> None:
    images, adjoint, kspace, mask, maps = _physics_batch(batch=1)
    net = create_model("unrolled", {"stages": 1, "features": 4, "initial_cg_iterations": 8})
    with torch.no_grad():
        net.transforms[0].tail.weight.zero_()
        net.transforms[0].tail.bias.zero_()
    operator = cartesian_sense(maps[0], mask[0])
    start, _ = cg_sense(operator, kspace[0], 0.0, 8, 0.0)
    expected = start - 0.5 * (operator.normal(start) - channels_to_complex(adjoint)[0])
    torch.testing.assert_close(channels_to_complex(net(adjoint, kspace, mask, maps))[0], expected, atol=1e-5, rtol=0)
    # CG-SENSE is much closer to the truth than Aᴴy on this 3× line mask with 4 coils
    error_cg = float((start - images[0]).abs().norm() / images[0].abs().norm())
    error_adjoint = float((channels_to_complex(adjoint)[0] - images[0]).abs().norm() / images[0].abs().norm())
    assert error_cg < 0.5 * error_adjoint, (error_cg, error_adjoint)


def test_vgg_unet_shapes_gradients_and_layout() -> None:
    torch.manual_seed(0)
    net = create_model("vgg-unet", {"width_divisor": 16})
    assert isinstance(net, VGGUNet)
    conv_indices = [i for i, layer in enumerate(net.features) if isinstance(layer, torch.nn.Conv2d)]
    assert conv_indices == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]  # torchvision's vgg19 numbering
    image = torch.randn(2, 2, 20, 36)
    output = net(image)
    assert tuple(output.shape) == (2, 2, 20, 36)
    output.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    grey = create_model("vgg-unet", {"width_divisor": 16, "in_channels": 1, "out_channels": 1})
    assert tuple(grey(torch.rand(1, 1, 16, 16)).shape) == (1, 1, 16, 16)
    assert sum(p.numel() for p in vgg19_features().parameters()) == 20_024_384  # torchvision vgg19.features


def test_vgg_weights_from_a_local_file_freeze_exactly_the_first_23_layers(tmp_path: Path) -> None:
    features = vgg19_features()
    torch.manual_seed(1)
    state = {f"features.{key}": torch.randn_like(value) for key, value in features.state_dict().items()}
    state["features.36.unused"] = torch.zeros(1)  # torchvision's last pool has no weights; extra keys are ignored
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    net = VGGUNet(VGGUNetConfig(encoder_weights=str(path)))
    assert net.frozen_parameters == 20  # 10 convs (weight + bias) in modules 0–22
    for index, layer in enumerate(net.features):
        for name, parameter in layer.named_parameters():
            assert torch.equal(parameter, state[f"features.{index}.{name}"])
            assert parameter.requires_grad == (index >= 23), (index, name)
    assert all(p.requires_grad for p in net.decoder.parameters()) and net.adapter.weight.requires_grad
    net(torch.randn(1, 2, 16, 16)).mean().backward()
    assert net.features[21].weight.grad is None and net.features[23].weight.grad is not None
    with pytest.raises(ConfigError, match="width_divisor"):
        VGGUNetConfig(encoder_weights=str(path), width_divisor=4)
    del state["features.34.weight"]
    torch.save(state, path)
    with pytest.raises(InputError, match="lacks VGG19 layers"):
        VGGUNet(VGGUNetConfig(encoder_weights=str(path)))


def test_complex_channels_round_trip() -> None:
    x = torch.complex(torch.randn(3, 5, 4), torch.randn(3, 5, 4))
    assert tuple(complex_to_channels(x).shape) == (3, 2, 5, 4)
    assert torch.equal(channels_to_complex(complex_to_channels(x)), x)
    with pytest.raises(ValueError, match="2 channels"):
        channels_to_complex(torch.zeros(1, 3, 4, 4))


def test_undersampled_sample_without_target_for_reconstruction() -> None:
    maps = birdcage_coil_maps((16, 16), 3)
    kspace = fftc(maps * torch.from_numpy(_disc_image(16)), 2)
    mask = torch.zeros(16, 16)
    mask[::2] = 1
    sample = undersampled_sample(kspace * mask, maps, None, mask, 3)
    again = undersampled_sample(kspace, maps, None, mask, 3)
    assert torch.equal(sample.kspace, again.kspace) and float(sample.target.abs().max()) == 0.0
