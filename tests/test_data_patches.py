"""Patch grids, random positions, flip/rotation augmentation and the epoch sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medrestore.core.errors import InputError
from medrestore.core.random import make_generator
from medrestore.data.augment import FlipRotate, RandomFlipRotate, flip_rotate
from medrestore.data.patches import (
    check_patch_fits,
    count_grid_positions,
    extract_patch,
    grid_position,
    grid_positions,
    grid_starts,
    random_position,
)
from medrestore.data.sampler import EpochBatchSampler, batches_per_epoch, epoch_order, shard


@pytest.mark.parametrize(("size", "window", "stride"), [(10, 4, 3), (11, 4, 3), (450, 41, 14), (900, 41, 14), (5, 5, 2)])
def test_grid_starts_cover_the_axis_and_end_flush(size: int, window: int, stride: int) -> None:
    starts = grid_starts(size, window, stride)
    assert starts[0] == 0 and starts[-1] == size - window
    assert len(starts) == math.ceil((size - window) / stride) + 1
    steps = np.diff(starts)
    assert np.all(steps[:-1] == stride) and np.all((steps > 0) & (steps <= stride))
    covered = np.zeros(size, bool)
    for start in starts:
        covered[start : start + window] = True
    assert covered.all()


def test_oct_recipe_grid_count() -> None:
    # 450×900 B-scan, 41×41 patches, stride 14: ceil(409/14)+1 = 31 rows, ceil(859/14)+1 = 63 columns
    assert count_grid_positions((450, 900), (41, 41), (14, 14)) == 31 * 63


def test_grid_position_matches_the_listed_grid_in_c_order() -> None:
    shape, patch, stride = (9, 7, 8), (4, 3, 5), (2, 3, 2)
    listed = grid_positions(shape, patch, stride)
    expected = [(a, b, c) for a in grid_starts(9, 4, 2) for b in grid_starts(7, 3, 3) for c in grid_starts(8, 5, 2)]
    assert listed == expected
    assert grid_position(shape, patch, stride, 5) == expected[5]
    with pytest.raises(IndexError):
        grid_position(shape, patch, stride, len(expected))


def test_random_position_is_uniform_and_in_bounds() -> None:
    generator = make_generator(3)
    positions = np.array([random_position((10, 20), (4, 5), generator) for _ in range(4000)])
    assert positions[:, 0].min() == 0 and positions[:, 0].max() == 6
    assert positions[:, 1].min() == 0 and positions[:, 1].max() == 15
    counts = np.bincount(positions[:, 0], minlength=7)
    assert np.all(np.abs(counts / 4000 - 1 / 7) < 0.03)
    again = make_generator(3)
    assert random_position((10, 20), (4, 5), again) == tuple(positions[0])


def test_extract_patch_copies_the_region() -> None:
    image = torch.arange(2 * 6 * 7, dtype=torch.float32).reshape(2, 6, 7)
    patch = extract_patch(image, (1, 2), (3, 4))
    assert torch.equal(patch, image[:, 1:4, 2:6])
    patch += 1
    assert float(image[0, 1, 2]) == 9.0  # the source is untouched


def test_check_patch_fits_names_the_file() -> None:
    with pytest.raises(InputError, match="small.npy: image of spatial shape \\(8, 30\\) is smaller than patch_size"):
        check_patch_fits((8, 30), (16, 16), "small.npy")


def test_flip_rotate_matches_numpy() -> None:
    image = torch.randn(2, 5, 5, generator=make_generator(0))
    expected = np.rot90(np.flip(image.numpy(), axis=1), k=3, axes=(1, 2))
    assert np.array_equal(flip_rotate(image, (0,), 3).numpy(), expected)
    volume = torch.randn(1, 3, 4, 4, generator=make_generator(1))
    expected = np.rot90(np.flip(volume.numpy(), axis=(1, 3)), k=1, axes=(2, 3))
    assert np.array_equal(FlipRotate((0, 2), 1)(volume).numpy(), expected)


def test_random_flip_rotate_covers_the_dihedral_group() -> None:
    image = torch.arange(9.0).reshape(1, 3, 3)
    sampler = RandomFlipRotate(spatial_ndim=2)
    generator = make_generator(0)
    outputs = {tuple(sampler.sample(generator)(image).flatten().tolist()) for _ in range(200)}
    assert len(outputs) == 8


def test_non_square_plane_keeps_its_shape() -> None:
    sampler = RandomFlipRotate(spatial_ndim=3, square_plane=False)
    generator = make_generator(0)
    turns = {sampler.sample(generator).quarter_turns for _ in range(100)}
    assert turns == {0, 2}
    image = torch.zeros(1, 2, 3, 5)
    assert sampler.sample(generator)(image).shape == image.shape


def test_epoch_order_is_a_seeded_permutation() -> None:
    first = epoch_order(50, seed=1, epoch=0)
    assert sorted(first) == list(range(50))
    assert first == epoch_order(50, seed=1, epoch=0)
    assert first != epoch_order(50, seed=1, epoch=1)
    assert first != epoch_order(50, seed=2, epoch=0)


def test_shards_are_equal_sized_and_cover_everything() -> None:
    order = epoch_order(11, seed=0, epoch=0)
    shards = [shard(order, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set().union(*shards) == set(range(11))
    assert batches_per_epoch(11, batch_size=3, world_size=3) == 2


def test_sampler_resumes_at_a_batch() -> None:
    full = list(EpochBatchSampler(10, 3, seed=4, epoch=2))
    assert [len(b) for b in full] == [3, 3, 3, 1]
    assert all(key[0] == 2 for batch in full for key in batch)
    resumed = list(EpochBatchSampler(10, 3, seed=4, epoch=2, start_batch=2))
    assert resumed == full[2:]
    assert len(EpochBatchSampler(10, 3, seed=4, epoch=2, start_batch=2)) == 2
