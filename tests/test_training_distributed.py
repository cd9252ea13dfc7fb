"""Distributed data-parallel training: two CPU processes (Gloo) end with identical weights.

The workers go through the same path as ``torchrun``: the environment variables RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, then ``context_from_environment`` and
``initialise``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as multiprocessing

from medrestore.data.sampler import EpochBatchSampler
from medrestore.training import build_trainer, config_from_mapping, context_from_environment
from medrestore.training.distributed import DistributedContext, initialise, shutdown

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_images(tmp_path: Path) -> None:
    """The clean images, written once by the parent: a worker must not rewrite a file the other is reading."""
    folder = tmp_path / "clean"
    folder.mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:20, 0:20]
    for i in range(4):
        np.save(folder / f"image{i}.npy", (np.sin(xx / (2.0 + i)) * np.cos(yy / 3.0)).astype(np.float32))


def _mapping(tmp_path: Path, batch_size: int) -> dict[str, Any]:
    return {
        "data": {
            "layout": "synthetic",
            "clean_dir": str(tmp_path / "clean"),
            "degradation": {"kind": "gaussian", "parameters": {"sigma": 0.2}},
            "patch_size": [16, 16],
            "patches_per_image": 4,
            "augment": True,
        },
        "model": {"name": "dncnn", "options": {"depth": 3, "width": 8, "batch_norm": False}},
        "train": {"epochs": 2, "batch_size": batch_size, "device": "cpu", "progress_bar": False, "seed": 3},
    }


def _worker(rank: int, port: int, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD_SIZE), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )
    context = context_from_environment()
    device = initialise(context, torch.device("cpu"))
    try:
        trainer = build_trainer(config_from_mapping(_mapping(tmp_path, 2)), device, context=context, run_dir=tmp_path / "run")
        trainer.fit()
        torch.save(trainer.model.state_dict(), tmp_path / f"rank{rank}.pt")
    finally:
        shutdown(context)


def test_batches_of_the_ranks_partition_the_single_process_batches() -> None:
    single = list(EpochBatchSampler(16, 4, seed=3, epoch=1))
    ranks = [list(EpochBatchSampler(16, 2, seed=3, epoch=1, rank=r, world_size=2)) for r in range(2)]
    for step, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][step] + ranks[1][step])


def test_two_gloo_processes_end_with_identical_weights(tmp_path: Path) -> None:
    _write_images(tmp_path)
    multiprocessing.spawn(_worker, args=(_free_port(), tmp_path), nprocs=WORLD_SIZE, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)
    assert (tmp_path / "run" / "last.pt").is_file()  # written by rank 0 only

    # DDP averages the per-rank mean gradients of batch 2 = the single-process gradient of batch 4
    torch.set_num_threads(1)
    single = build_trainer(config_from_mapping(_mapping(tmp_path, 4)), torch.device("cpu"), run_dir=tmp_path / "single")
    single.fit()
    reference = single.model.state_dict()
    assert all(torch.allclose(rank0[key], reference[key], atol=1e-5, rtol=1e-4) for key in rank0)
    assert DistributedContext() == context_from_environment()  # the parent process is not distributed
