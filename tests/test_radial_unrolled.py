"""The radial unrolled network (NUFFT-SENSE data consistency) and its simulated radial training data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.complex import channels_to_complex, complex_to_channels
from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.data.mri_recon import MRIReconDataConfig, MRIReconDataset, MRISliceSource, validation_samples
from medrestore.data.radial_recon import RadialSampling, radial_sample
from medrestore.models import create_model
from medrestore.models.unrolled import RadialUnrolledNet, radial_operators
from medrestore.physics.mri.density import pipe_menon_density
from medrestore.physics.mri.radial import gridding, radial_sense, weighted_samples
from medrestore.physics.mri.sense import coil_combine
from medrestore.physics.mri.simulation import CoilSimulation, birdcage_coil_maps, smooth_phase
from medrestore.physics.mri.trajectory import RadialSpec, radial_trajectory
from medrestore.tasks import radial as radial_task

torch.set_num_threads(1)
SIZE = 32


def _object(size: int = SIZE) -> torch.Tensor:
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    image = (rows**2 + cols**2 < (0.38 * size) ** 2).astype(np.float32)
    image[size // 3 : size // 2, size // 3 : 2 * size // 3] = 0.4
    phase = smooth_phase((size, size), make_generator(3), max_phase=0.8)
    return torch.polar(torch.from_numpy(image), phase)


def _config(image_file: Path, **radial: object) -> MRIReconDataConfig:
    sampling = dataclasses.replace(RadialSampling(spokes=(12, 20), validation_spokes=16, noise_range=(0.0, 0.0), residual_delay=0.0), **radial)
    return MRIReconDataConfig(
        training=MRISliceSource(files=(str(image_file),)), validation=MRISliceSource(files=(str(image_file),)), image_size=SIZE,
        inputs="physics", samples_per_image=2, coils=CoilSimulation(coils=(4,)), max_coils=6, radial=sampling,
    )  # fmt: skip


@pytest.fixture()
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "disc.npy"
    np.save(path, _object().abs().numpy())
    return path


def _acquisition(spokes: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(image, data, trajectory, weights, maps)`` of a noiseless 4-coil radial acquisition of :func:`_object`."""
    image = _object()
    trajectory = radial_trajectory(RadialSpec(SIZE, spokes, 2.0, True, False))
    weights = pipe_menon_density(trajectory, (SIZE, SIZE))
    maps = birdcage_coil_maps((SIZE, SIZE), 4)
    data = radial_sense(maps, trajectory).forward(image)
    return image, data, trajectory, weights, maps


def _inputs(data: torch.Tensor, trajectory: torch.Tensor, weights: torch.Tensor, maps: torch.Tensor) -> list[torch.Tensor]:
    adjoint = coil_combine(gridding(data, trajectory, (SIZE, SIZE), weights), maps)
    return [complex_to_channels(adjoint)[None], data[None], trajectory[None], weights[None], maps[None]]


def test_radial_operators_are_the_density_weighted_nufft_sense() -> None:
    image, data, trajectory, weights, maps = _acquisition()
    operators, fitted = radial_operators(data[None], trajectory[None], weights[None], maps[None])
    reference = radial_sense(maps, trajectory, weights, 1e-4)
    torch.testing.assert_close(operators[0].forward(image), reference.forward(image), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fitted[0], weighted_samples(data, weights))
    # Aᴴ(√w ⊙ √w y) is the density-compensated coil-combined gridding the network receives
    gridded = coil_combine(gridding(data, trajectory, (SIZE, SIZE), weights), maps)
    torch.testing.assert_close(operators[0].adjoint(fitted[0]), gridded, atol=2e-4 * float(gridded.abs().max()), rtol=0)
    with pytest.raises(InputError, match="do not match"):
        radial_operators(data[None], trajectory[None, :5], weights[None], maps[None])


def test_radial_unrolled_with_zero_transforms_is_landweber_on_the_nufft_operator() -> None:
    _, data, trajectory, weights, maps = _acquisition()
    net = create_model("unrolled-radial", {"stages": 3, "features": 4})
    assert isinstance(net, RadialUnrolledNet)
    with torch.no_grad():
        for stage in net.transforms:
            stage.tail.weight.zero_()
            stage.tail.bias.zero_()
    inputs = _inputs(data, trajectory, weights, maps)
    output = channels_to_complex(net(*inputs))[0]
    operator = radial_sense(maps, trajectory, weights, 1e-4)
    x0 = channels_to_complex(inputs[0])[0]
    x = x0
    for _ in range(3):  # x ← x − η (AᴴA x − Aᴴ√w y), η = 0.5
        x = x - 0.5 * (operator.normal(x) - x0)
    torch.testing.assert_close(output, x, atol=1e-5 * float(x.abs().max()), rtol=0)


def test_radial_unrolled_trains_end_to_end_through_the_nufft() -> None:
    """Gradients reach every parameter, and a few Adam steps on one acquisition cut the error."""
    torch.manual_seed(0)
    image, data, trajectory, weights, maps = _acquisition(12)
    inputs = _inputs(data, trajectory, weights, maps)
    target = complex_to_channels(image)[None]
    net = create_model("unrolled-radial", {"stages": 2, "features": 8, "initial_step": 1.0, "initial_cg_iterations": 4})
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimiser.zero_grad()
        loss = (net(*inputs) - target).abs().mean()
        loss.backward()
        if not losses:
            assert all(p.grad is not None and torch.isfinite(p.grad).all() and float(p.grad.abs().sum()) > 0 for p in net.parameters())
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_radial_dataset_sample_matches_the_acquisition_model(image_file: Path) -> None:
    config = _config(image_file)
    dataset = MRIReconDataset(config, config.training, seed=0)
    (image, kspace, trajectory, weights, maps), target = dataset[(0, 1)]
    assert image.shape == target.shape == (2, SIZE, SIZE)
    assert kspace.shape == (6, 20, 2 * SIZE) and trajectory.shape == (20, 2 * SIZE, 2) and weights.shape == (20, 2 * SIZE)
    assert maps.shape == (6, SIZE, SIZE) and float(maps[4:].abs().max()) == 0.0  # coils padded with zero maps
    spokes = int((weights.sum(dim=1) > 0).sum())
    assert spokes in (12, 20) and float(kspace[:, spokes:].abs().max()) == 0.0  # spokes padded with zero weight and data
    # noiseless, no delay: the k-space is the NUFFT-SENSE acquisition of the target (in the same scaled units)
    operator = radial_sense(maps[:4], trajectory[:spokes])
    truth = operator.forward(channels_to_complex(target))
    error = float((truth - kspace[:4, :spokes]).abs().norm() / truth.abs().norm())
    assert error < 1e-4, error
    # the input is Aᴴ(w ⊙ y) coil-combined, scaled to a 99th percentile of 1
    gridded = coil_combine(gridding(kspace[:4, :spokes], trajectory[:spokes], (SIZE, SIZE), weights[:spokes]), maps[:4])
    torch.testing.assert_close(channels_to_complex(image), gridded, atol=2e-4 * float(gridded.abs().max()), rtol=0)
    assert abs(float(torch.quantile(gridded.abs().flatten(), 0.99)) - 1.0) < 1e-5
    # padded samples drop out of the operator: the normal operator equals the unpadded one's
    operators, _ = radial_operators(kspace[None], trajectory[None], weights[None], maps[None])
    unpadded = radial_sense(maps[:4], trajectory[:spokes], weights[:spokes], 1e-4)
    x = channels_to_complex(target)
    # both NUFFTs are accurate to their tolerance, 1e-4, and multithreaded spreading sums in a varying order;
    # a padded sample that did not drop out would differ by O(1)
    torch.testing.assert_close(operators[0].normal(x), unpadded.normal(x), atol=1e-4 * float(x.abs().max()), rtol=0)
    # a pure function of (seed, epoch, item); validation uses the fixed spoke count
    torch.testing.assert_close(dataset[(0, 1)][0][1], kspace)
    validation = validation_samples(config, MRIReconDataset(config, config.validation, seed=1))
    assert int((validation[0].input[3].sum(dim=1) > 0).sum()) == 16


def test_radial_sample_noise_and_residual_delay_follow_the_config() -> None:
    image = _object()
    maps = birdcage_coil_maps((SIZE, SIZE), 4)
    clean = radial_sample(image, maps, RadialSampling(spokes=(16,), noise_range=(0.0, 0.0), residual_delay=0.0), make_generator(0), 4)
    noisy = radial_sample(image, maps, RadialSampling(spokes=(16,), noise_range=(0.01, 0.01), residual_delay=0.0), make_generator(0), 4)
    shifted = radial_sample(image, maps, RadialSampling(spokes=(16,), noise_range=(0.0, 0.0), residual_delay=0.5), make_generator(0), 4)
    torch.testing.assert_close(clean.trajectory, shifted.trajectory)  # the network sees the nominal trajectory
    peak = float(clean.kspace.abs().max())
    residual = (noisy.kspace - clean.kspace)[:, :16]
    sigma = float(residual.abs().square().mean().sqrt())  # complex noise std relative to max|y|
    assert 0.0085 < sigma / peak < 0.0115, sigma / peak
    assert float((shifted.kspace - clean.kspace).abs().max()) > 0.01 * peak
    with pytest.raises(ConfigError, match="spoke"):
        RadialSampling(spokes=())
    with pytest.raises(ConfigError, match="square"):
        radial_sample(image[:, :20], maps[:, :, :20], RadialSampling(), make_generator(0), 4)


def test_recon_unrolled_on_radial_data_without_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "slice.npy"
    np.save(source, _object().abs().numpy())
    acquired = tmp_path / "radial.npz"
    assert main(["simulate-radial", str(source), "-o", str(acquired), "--spokes", "16", "--coils", "4"]) == 0
    monkeypatch.setitem(radial_task.RADIAL_NETWORKS, "unrolled", "no-such-zoo-model")
    assert main(["recon", str(acquired), "-o", str(tmp_path / "x.npy"), "--method", "unrolled"]) == 2


def test_zoom_range_magnifies_training_slices_and_is_checked(image_file: Path) -> None:
    config = _config(image_file)
    plain = MRIReconDataset(config, config.training, seed=0).sample(0, 0)
    zoomed_config = dataclasses.replace(config, zoom_range=(1.5, 1.5))
    zoomed = MRIReconDataset(zoomed_config, zoomed_config.training, seed=0).sample(0, 0)
    # the magnified object covers more of the field of view than the whole-slice one
    covered = lambda sample: float((channels_to_complex(sample.target).abs() > 0.2).float().mean())  # noqa: E731
    assert covered(zoomed) > 1.5 * covered(plain), (covered(zoomed), covered(plain))
    with pytest.raises(ConfigError, match="zoom_range"):
        dataclasses.replace(config, zoom_range=(0.5, 1.0))
