"""Training checkpoints: one ``torch.save`` file holding everything needed to resume exactly.

Layout (plain containers and tensors only, so ``torch.load(weights_only=True)`` reads it)::

    format          "medrestore-checkpoint-1"
    model           {"name", "options", "state_dict"}            what to rebuild, and its weights
    normalisation   Normalisation.record()                       how inputs were scaled
    inference       {"window", "overlap", "blend", "batch_size"} tiled-inference settings
    optimizer       Adam state_dict
    scheduler       LR scheduler state_dict or None
    progress        {"epoch", "step_in_epoch", "global_step", "epoch_loss_sum",
                     "epoch_loss_count", "epoch_seconds", "best_val_psnr", "best_epoch"}
    history         list of per-epoch log rows
    rng_state       encode_rng_state(core.random.rng_state())
    config          the experiment configuration as YAML text
    seed            the run's seed

``progress.epoch``/``step_in_epoch`` is the next batch to run: a checkpoint taken after batch
``b`` of epoch ``e`` says ``(e, b + 1)``. Files are written atomically (temporary file +
rename), so an interruption while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path, load_torch_file

CHECKPOINT_FORMAT = "medrestore-checkpoint-1"
REQUIRED_KEYS = ("format", "model", "normalisation", "inference", "optimizer", "progress", "config", "seed")


def encode_rng_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Make :func:`medrestore.core.random.rng_state` safe for ``weights_only`` loading.

    NumPy's ``(name, keys uint32[624], pos, has_gauss, cached)`` tuple becomes a dict with the
    keys as an int64 tensor; the Python and torch states are already plain.
    """
    name, keys, position, has_gauss, cached = state["numpy"]
    return {
        "python": state["python"],
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": state["torch"],
        "cuda": list(state.get("cuda") or []),
    }


def decode_rng_state(encoded: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_rng_state`, ready for :func:`medrestore.core.random.set_rng_state`."""
    numpy_state = encoded["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    return {
        "python": _as_python_random_state(encoded["python"]),
        "numpy": (
            numpy_state["name"],
            keys,
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        ),
        "torch": encoded["torch"],
        "cuda": list(encoded.get("cuda") or []),
    }


def _as_python_random_state(state: Any) -> tuple[Any, ...]:
    """``random.setstate`` wants ``(version, tuple_of_ints, gauss)``; lists are turned back into tuples."""
    version, internal, gauss = state
    return int(version), tuple(int(v) for v in internal), gauss


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (see the module docstring) to ``path`` atomically; returns ``path``."""
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    with atomic_path(path, suffix=".tmp") as temporary:
        torch.save(dict(payload), temporary)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; :class:`InputError` if it is missing or not one of ours."""
    path = Path(path)
    payload = load_torch_file(path, map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, f"not a medrestore training checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise InputError(path, f"checkpoint lacks {', '.join(missing)}")
    return payload
