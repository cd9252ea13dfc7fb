"""Paired datasets: file matching, splits, purity of items, grids, augmentation, super-resolution pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.data.normalisation import NoNormalisation, ZScoreImage
from medrestore.data.paired import (
    PairedImages,
    PairedPatchDataset,
    PatchSampling,
    SyntheticPairs,
    load_channels_first,
    match_paired_folders,
    sample_seed,
    split_by_file,
    validation_images,
)
from medrestore.data.patches import grid_positions


def _write(folder: Path, name: str, array: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, array.astype(np.float32))
    return folder / name


def _smooth(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(np.cumsum(rng.normal(size=shape), axis=0), axis=-1)


def _affine_pairs(tmp_path: Path, shapes: list[tuple[int, ...]]) -> PairedImages:
    """Pairs whose target is exactly 2·input + 1 (so identical transforms keep the relation)."""
    pairs = []
    for i, shape in enumerate(shapes):
        source = _smooth(shape, i).astype(np.float32)
        pairs.append((_write(tmp_path / "in", f"{i}.npy", source), _write(tmp_path / "out", f"{i}.npy", 2 * source + 1)))
    return PairedImages(pairs, spatial_ndim=len(shapes[0]))


def test_match_paired_folders_by_name(tmp_path: Path) -> None:
    for name in ("b.npy", "a.npy"):
        _write(tmp_path / "noisy", name, np.zeros((4, 4)))
        _write(tmp_path / "clean", name, np.ones((4, 4)))
    pairs = match_paired_folders(tmp_path / "noisy", tmp_path / "clean", "*.npy")
    assert [(p.name, q.parent.name) for p, q in pairs] == [("a.npy", "clean"), ("b.npy", "clean")]
    _write(tmp_path / "noisy", "c.npy", np.zeros((4, 4)))
    with pytest.raises(InputError, match=r"clean/c\.npy: missing: no target file"):
        match_paired_folders(tmp_path / "noisy", tmp_path / "clean")
    with pytest.raises(InputError, match="no files match"):
        match_paired_folders(tmp_path / "noisy", tmp_path / "clean", "*.png")


def test_split_is_by_whole_file_and_seeded() -> None:
    items = [f"f{i}" for i in range(10)]
    training, validation = split_by_file(items, 0.3, seed=5)
    assert len(validation) == 3 and len(training) == 7
    assert set(training) | set(validation) == set(items) and not set(training) & set(validation)
    assert split_by_file(items, 0.3, seed=5) == (training, validation)
    assert split_by_file(items, 0.3, seed=6) != (training, validation)
    assert len(split_by_file(items[:3], 0.1, seed=0)[1]) == 1  # at least one file
    with pytest.raises(ConfigError, match="leaves no training file"):
        split_by_file(items[:1], 0.5, seed=0)


def test_channels_first_loading(tmp_path: Path) -> None:
    assert load_channels_first(_write(tmp_path, "a.npy", np.zeros((5, 6))), 2).shape == (1, 5, 6)
    assert load_channels_first(_write(tmp_path, "b.npy", np.zeros((5, 6, 3))), 2).shape == (3, 5, 6)
    with pytest.raises(InputError, match="c.npy: has shape"):
        load_channels_first(_write(tmp_path, "c.npy", np.zeros((2, 3, 4, 5))), 2)


def test_sample_seeds_differ_per_epoch_index_and_stream() -> None:
    seeds = {sample_seed(0, e, i, s) for e in range(5) for i in range(50) for s in range(3)}
    assert len(seeds) == 5 * 50 * 3
    assert sample_seed(7, 2, 3) == sample_seed(7, 2, 3) < 2**63


def test_items_are_pure_functions_of_seed_epoch_index(tmp_path: Path) -> None:
    source = _affine_pairs(tmp_path, [(30, 40), (25, 33)])
    sampling = PatchSampling((8, 8), patches_per_image=5, augment=True)
    dataset = PairedPatchDataset(source, ZScoreImage(), sampling, seed=11)
    assert len(dataset) == 10
    forward = [dataset[(1, i)] for i in range(10)]
    backward = [dataset[(1, i)] for i in reversed(range(10))][::-1]
    again = PairedPatchDataset(source, ZScoreImage(), sampling, seed=11)
    for (a, b), (c, d), i in zip(forward, backward, range(10), strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
        assert torch.equal(a, again.item(1, i)[0])
    assert not torch.equal(dataset.item(2, 0)[0], forward[0][0])
    assert not torch.equal(PairedPatchDataset(source, ZScoreImage(), sampling, seed=12).item(1, 0)[0], forward[0][0])


def test_augmentation_and_normalisation_act_identically_on_input_and_target(tmp_path: Path) -> None:
    source = _affine_pairs(tmp_path, [(30, 40)])
    sampling = PatchSampling((9, 9), patches_per_image=40, augment=True)
    dataset = PairedPatchDataset(source, NoNormalisation(), sampling, seed=0)
    for i in range(len(dataset)):
        source_patch, target_patch = dataset.item(0, i)
        assert torch.allclose(target_patch, 2 * source_patch + 1, atol=1e-4)
    normalised = PairedPatchDataset(source, ZScoreImage(), sampling, seed=0)
    whole = source.pair(0, make_generator(0))[0]
    mean, std = float(whole.double().mean()), float(whole.double().std(correction=0))
    source_patch, target_patch = normalised.item(0, 0)
    # z-score of the whole input applied to both: target' = 2·input' + (mean + 1)/std
    assert torch.allclose(target_patch, 2 * source_patch + (mean + 1) / std, atol=1e-4)


def test_grid_sampling_lists_every_grid_patch(tmp_path: Path) -> None:
    source = _affine_pairs(tmp_path, [(20, 23), (17, 17)])
    sampling = PatchSampling((8, 8), stride=(5, 5))
    dataset = PairedPatchDataset(source, NoNormalisation(), sampling, seed=0)
    grids = [grid_positions((20, 23), (8, 8), (5, 5)), grid_positions((17, 17), (8, 8), (5, 5))]
    assert len(dataset) == len(grids[0]) + len(grids[1]) == 4 * 4 + 3 * 3
    image = source.pair(1, make_generator(0))[0]
    index = len(grids[0]) + 4
    a, b = grids[1][4]
    assert torch.equal(dataset.item(3, index)[0], image[:, a : a + 8, b : b + 8])


def test_three_dimensional_patches(tmp_path: Path) -> None:
    source = _affine_pairs(tmp_path, [(6, 12, 12)])
    dataset = PairedPatchDataset(source, NoNormalisation(), PatchSampling((4, 8, 8), 3, augment=True), seed=0)
    source_patch, target_patch = dataset.item(0, 2)
    assert source_patch.shape == (1, 4, 8, 8)
    assert torch.allclose(target_patch, 2 * source_patch + 1, atol=1e-4)


def test_super_resolution_pairs_cut_matching_regions(tmp_path: Path) -> None:
    low = _smooth((12, 10), 0).astype(np.float32)
    high = np.kron(low, np.ones((3, 3), np.float32))
    high = np.pad(high, ((0, 2), (0, 1)))  # target slightly larger than 3× (floor of a downsampling)
    pairs = [(_write(tmp_path, "low.npy", low), _write(tmp_path, "high.npy", high))]
    source = PairedImages(pairs, spatial_ndim=2)
    assert source.factor(0) == (3, 3)
    dataset = PairedPatchDataset(source, NoNormalisation(), PatchSampling((4, 4), 10, augment=True), seed=1)
    for i in range(10):
        source_patch, target_patch = dataset.item(0, i)
        assert target_patch.shape == (1, 12, 12)
        expected = np.kron(source_patch.numpy()[0], np.ones((3, 3)))
        assert np.array_equal(target_patch.numpy()[0], expected)


def test_synthetic_pairs_draw_new_noise_per_sample(tmp_path: Path) -> None:
    clean = _smooth((20, 20), 0)
    path = _write(tmp_path, "clean.npy", clean)

    def add_noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + 0.5 * torch.randn(x.shape, generator=generator)

    source = SyntheticPairs([path], add_noise, spatial_ndim=2)
    dataset = PairedPatchDataset(source, NoNormalisation(), PatchSampling((20, 20), 2), seed=0)
    first, target = dataset.item(0, 0)
    second, _ = dataset.item(0, 1)
    assert torch.equal(target[0], torch.from_numpy(clean.astype(np.float32)))
    assert not torch.equal(first, second)
    noise = (first - target).numpy().ravel()
    assert abs(noise.std() - 0.5) < 0.05
    validation = validation_images(source, NoNormalisation(), seed=0)
    assert torch.equal(validation[0].input, validation_images(source, NoNormalisation(), seed=0)[0].input)


def test_patch_larger_than_image_is_an_input_error(tmp_path: Path) -> None:
    source = _affine_pairs(tmp_path, [(10, 40)])
    with pytest.raises(InputError, match=r"0\.npy: image of spatial shape \(10, 40\) is smaller than patch_size"):
        PairedPatchDataset(source, NoNormalisation(), PatchSampling((16, 16)), seed=0)
