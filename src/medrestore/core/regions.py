"""Regions of arrays: the bounding box of a mask."""

from __future__ import annotations

import numpy as np


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The smallest box holding every ``True`` of ``mask`` ``(*spatial)``, grown by ``margin`` on each side
    and clipped to the array; ``None`` when ``mask`` holds no ``True``."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if not mask.any():
        return None
    box = []
    for axis, length in enumerate(mask.shape):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(0, int(present[0]) - margin), min(length, int(present[-1]) + 1 + margin)))
    return tuple(box)
