"""Device selection: ``auto`` picks CUDA when present, then Apple MPS, else CPU."""

from __future__ import annotations

import torch

from medrestore.core.errors import MedrestoreError

DEFAULT_DEVICE = "auto"
"""The device every command and the public API use unless told otherwise (``--device``)."""


def select_device(name: str = DEFAULT_DEVICE) -> torch.device:
    """Return the torch device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises :class:`MedrestoreError` if a GPU is requested but not available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MedrestoreError(f"device {name!r} requested but CUDA is not available on this machine")
    return device
