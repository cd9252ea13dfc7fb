"""Explicit randomness: every sampler takes a ``torch.Generator`` made here from a recorded seed."""

from __future__ import annotations

import random

import numpy as np
import torch


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (on ``device``)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code we do not control, e.g. layer init)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, object]:
    """Snapshot of the global generators, stored in checkpoints for exact resume."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, object]) -> None:
    """Restore a snapshot made by :func:`rng_state`."""
    random.setstate(state["python"])  # type: ignore[arg-type]
    np.random.set_state(state["numpy"])  # type: ignore[arg-type]
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)  # type: ignore[arg-type]
