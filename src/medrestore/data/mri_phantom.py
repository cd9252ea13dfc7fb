"""A small synthetic T1-weighted "brain": nested wavy ellipsoids of CSF, grey and white matter.

Used to test noise estimators, denoisers and tissue segmentation against a known truth
(labels: 0 background, 1 CSF, 2 grey matter, 3 white matter; T1 contrast WM > GM > CSF > 0).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import torch

TISSUE_INTENSITIES = {1: 0.3, 2: 0.65, 3: 1.0}
"""Label → intensity of the noise-free phantom (fraction of its maximum)."""


def brain_phantom(shape: tuple[int, ...] = (48, 48, 48), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Phantom volume (or image, for 2 axes) and its labels.

    The head is an ellipsoid filling ~80 % of the field of view; a CSF layer, a grey-matter
    ribbon with wavy inner boundary (smooth random field of amplitude ~2 voxels), white matter,
    and two CSF "ventricles". Intensities get a smooth ±5 % bias field.

    Args:
        shape: 2 or 3 sides (each >= 16).
        seed: seed of the random boundary and bias fields.

    Returns:
        ``(image float32 (*shape) in [0, 1], labels uint8 (*shape))``.
    """
    generator = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    radius = np.sqrt(sum((g / r) ** 2 for g, r in zip(grids, (0.82, 0.72, 0.78)[: len(shape)], strict=True)))
    wobble = scipy.ndimage.gaussian_filter(generator.standard_normal(shape), 3.0)
    wobble *= 0.08 / (np.abs(wobble).max() + 1e-12)
    labels = np.zeros(shape, np.uint8)
    labels[radius < 1.0] = 1
    labels[radius + 0.3 * wobble < 0.9] = 2
    labels[radius + wobble < 0.68] = 3
    for side in (-0.18, 0.18):
        centre = [side] + [0.0] * (len(shape) - 1)
        ventricle = np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, (0.08, 0.25, 0.12)[: len(shape)], strict=True)))
        labels[ventricle < 1.0] = 1
    image = np.zeros(shape, np.float64)
    for label, value in TISSUE_INTENSITIES.items():
        image[labels == label] = value
    bias = 1.0 + 0.05 * np.tanh(scipy.ndimage.gaussian_filter(generator.standard_normal(shape), 8.0) * 40.0)
    image = scipy.ndimage.gaussian_filter(image * bias, 0.6) * (labels > 0)
    return (image / image.max()).astype(np.float32), labels


def brain_phantom_tensor(shape: tuple[int, ...] = (48, 48, 48), seed: int = 0) -> torch.Tensor:
    """:func:`brain_phantom`'s image as a float32 tensor."""
    return torch.from_numpy(brain_phantom(shape, seed)[0])
