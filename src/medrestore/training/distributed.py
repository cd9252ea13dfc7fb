"""Data-parallel training on PyTorch's distributed engine (``torchrun`` + DistributedDataParallel).

``torchrun --nproc-per-node=G -m medrestore.cli.main train --config run.yaml`` starts ``G``
processes with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set.
:func:`context_from_environment` reads them; :func:`initialise` joins the process group
(NCCL on GPUs, Gloo on CPUs) and picks ``cuda:LOCAL_RANK``; :func:`wrap_model` wraps the model
in ``DistributedDataParallel``, which averages gradients over ranks at every step so all ranks
keep identical weights. Samples are shared out per rank by
:class:`medrestore.data.sampler.EpochBatchSampler`; only rank 0 logs and writes files.
Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) everything is a no-op.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medrestore.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job: ``rank`` of ``world_size``, GPU ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ConfigError(f"invalid distributed context rank={self.rank} world_size={self.world_size}")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes files (rank 0)."""
        return self.rank == 0


def _environment_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def context_from_environment() -> DistributedContext:
    """The context ``torchrun`` describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (single process if unset)."""
    world_size = _environment_int("WORLD_SIZE", 1)
    rank = _environment_int("RANK", 0)
    return DistributedContext(rank, world_size, _environment_int("LOCAL_RANK", rank))


def initialise(context: DistributedContext, device: torch.device) -> torch.device:
    """Join the process group (``env://``) if ``context`` is distributed; return this rank's device.

    On CUDA the device becomes ``cuda:local_rank`` and the backend NCCL; otherwise Gloo.
    """
    if not context.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size)
    return device


def shutdown(context: DistributedContext) -> None:
    """Leave the process group (no-op when not distributed)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` itself."""
    if not context.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_mean(value: float, context: DistributedContext, device: torch.device) -> float:
    """Mean of ``value`` over ranks (``value`` itself when not distributed)."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / context.world_size


def any_rank(flag: bool, context: DistributedContext, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (so every rank stops at the same step)."""
    if not context.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(context: DistributedContext) -> None:
    """Wait for all ranks (no-op when not distributed)."""
    if context.enabled:
        dist.barrier()
