"""Epoch order, per-rank shards and batches as pure functions of ``(seed, epoch)``.

The order of epoch ``e`` is a permutation drawn from ``sample_seed(seed, e, 0, ORDER_STREAM)``;
it is padded (by repeating its first items, as ``torch.utils.data.DistributedSampler`` does)
to a multiple of ``world_size`` and rank ``r`` takes items ``r, r + W, r + 2W, ...``. Every
rank therefore runs the same number of batches, and batch ``b`` of epoch ``e`` on rank ``r``
can be recomputed after an interruption — a run resumed at batch ``b`` sees exactly the
batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from medrestore.core.random import make_generator
from medrestore.data.paired import sample_seed

ORDER_STREAM = 2


def epoch_order(length: int, seed: int, epoch: int, shuffle: bool = True) -> list[int]:
    """Item order of ``epoch``: a seeded permutation of ``range(length)`` (or the identity)."""
    if not shuffle:
        return list(range(length))
    generator = make_generator(sample_seed(seed, epoch, 0, ORDER_STREAM))
    return torch.randperm(length, generator=generator).tolist()


def shard(order: list[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s share of ``order`` after padding it to a multiple of ``world_size``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    if not order:
        return []
    total = math.ceil(len(order) / world_size) * world_size
    padded = (order * math.ceil(total / len(order)))[:total]
    return padded[rank::world_size]


def batches_per_epoch(length: int, batch_size: int, world_size: int = 1) -> int:
    """Number of batches each rank runs per epoch (the last one may be smaller)."""
    return math.ceil(math.ceil(length / world_size) / batch_size)


class EpochBatchSampler:
    """Batches of ``(epoch, index)`` keys for one rank and one epoch, from batch ``start_batch`` on.

    Use as ``DataLoader(dataset, batch_sampler=EpochBatchSampler(...))`` with
    :class:`~medrestore.data.paired.PairedPatchDataset`.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.epoch = epoch
        items = shard(epoch_order(length, seed, epoch, shuffle), rank, world_size)
        self._batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)][start_batch:]

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._batches:
            yield [(self.epoch, index) for index in batch]
