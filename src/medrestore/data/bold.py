"""A BOLD-like block-design series for checking that 4-D denoising keeps the temporal signal of interest.

Functional MRI measures small, local signal changes over time: a task switched on and off in blocks
raises the signal of active voxels by a few per cent (the blood-oxygen-level-dependent response;
Ogawa et al., *PNAS* 87, 1990). :func:`block_design_series` makes such a series from a clean volume,

    x(v, t) = c(v) · (1 + a · d(t) · [v active]),   d(t) = ⌊t / B⌋ mod 2,

and adds Rician noise; :func:`~medrestore.metrics.repeated.design_response` fits ``d`` back per voxel,
so a denoiser's output can be compared with the true relative response ``a``.
"""

from __future__ import annotations

import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.physics.noise import add_rician_noise


def block_design(volumes: int, block: int) -> np.ndarray:
    """``d(t)`` ``(volumes,)`` float64: ``block`` volumes off (0), ``block`` on (1), and so on."""
    if volumes < 2 or block < 1:
        raise InputError(None, f"a block design needs >= 2 volumes and blocks of >= 1, got {volumes} and {block}")
    return ((np.arange(volumes) // block) % 2).astype(np.float64)


def block_design_series(
    clean: np.ndarray, active: np.ndarray, amplitude: float, volumes: int, block: int, sigma: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clean series ``(x, y, z, T)`` float64 of the module docstring, its Rician-noisy copy (float32, noise ``sigma``,
    ``torch.Generator`` seeded with ``seed``) and the design ``d`` ``(T,)``.

    Args:
        clean: the clean volume ``c`` ``(x, y, z)``.
        active: boolean mask ``(x, y, z)`` of the responding voxels.
        amplitude: the relative response ``a`` (0.02 for 2 %).
        volumes, block: ``T`` and the block length ``B``.
    """
    clean = np.asarray(clean, dtype=np.float64)
    if np.asarray(active).shape != clean.shape:
        raise InputError(None, f"the active mask {np.asarray(active).shape} differs from the volume {clean.shape}")
    design = block_design(volumes, block)
    series = clean[..., None] * (1.0 + amplitude * design * np.asarray(active, bool)[..., None])
    noisy = add_rician_noise(torch.from_numpy(series), sigma, torch.Generator().manual_seed(seed)).numpy()
    return series, noisy.astype(np.float32), design
