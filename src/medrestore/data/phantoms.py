"""Built-in test images generated in code, so demos and tests need no downloaded data.

* :func:`shepp_logan` — the Shepp–Logan head phantom (Shepp & Logan, IEEE TNS 1974) as
  shipped by scikit-image, resampled.
* :func:`random_ellipses` — random overlapping ellipses with smooth intensity texture: a
  training distribution that never contains the Shepp–Logan image itself (honest hold-out).
* :func:`retina_bscan` — a layered retina-like OCT B-scan reflectivity map (curved layers of
  different reflectivity, vessel shadows), speckle-free; the clean target of OCT demos.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import resize


def shepp_logan(size: int = 256) -> np.ndarray:
    """Shepp–Logan phantom, ``(size, size)`` float32 in ``[0, 1]``."""
    image = shepp_logan_phantom()
    if image.shape != (size, size):
        image = resize(image, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _uniform(generator: torch.Generator, low: float, high: float, count: int = 1) -> np.ndarray:
    return (low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)).numpy()


def random_ellipses(size: int, generator: torch.Generator, count: int = 12) -> np.ndarray:
    """Random ellipses on a dark background, ``(size, size)`` float32 in ``[0, 1]``.

    Each ellipse ``((x−x₀)cosθ + (y−y₀)sinθ)²/a² + (−(x−x₀)sinθ + (y−y₀)cosθ)²/b² ≤ 1`` adds
    an intensity in ``[−0.15, 0.3]`` inside a head-like pair of ellipses (bright rim 1.0, interior 0.25), then a smooth
    low-frequency texture modulates the whole image by ±10 %.
    """
    coords = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(coords, coords, indexing="ij")
    head_axes = _uniform(generator, 0.7, 0.9, 2)
    head_angle = _uniform(generator, -0.3, 0.3, 1)[0]
    centres = np.concatenate([[[0.0, 0.0], [0.0, 0.0]], _uniform(generator, -0.45, 0.45, 2 * count).reshape(count, 2)])
    axes = np.concatenate([[head_axes, head_axes * 0.92], _uniform(generator, 0.03, 0.3, 2 * count).reshape(count, 2)])
    angles = np.concatenate([[head_angle, head_angle], _uniform(generator, 0.0, np.pi, count)])
    values = np.concatenate([[1.0, -0.75], _uniform(generator, -0.15, 0.3, count)])
    image = np.zeros((size, size), np.float64)
    for (x0, y0), (a, b), theta, value in zip(centres, axes, angles, values, strict=True):
        u = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
        v = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
        image[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += value
    phases = _uniform(generator, 0.0, 2 * np.pi, 2)
    texture = 1.0 + 0.1 * np.sin(3 * x + phases[0]) * np.cos(2 * y + phases[1])
    return np.clip(image * texture, 0.0, 1.0).astype(np.float32)


def retina_bscan(height: int, width: int, generator: torch.Generator) -> np.ndarray:
    """A retina-like B-scan reflectivity map ``(height, width)`` float32 in ``[0, 1]``.

    Layers follow a smooth curved surface ``z₀(x)`` (a parabola plus a foveal pit); each layer
    has its own thickness and reflectivity (bright nerve-fibre and RPE bands, darker nuclear
    layers); a few vessels cast vertical shadows below them; the vitreous above is dark.
    """
    x = np.linspace(-1.0, 1.0, width)
    curvature, pit_depth, offset = _uniform(generator, 0.05, 0.2, 1)[0], _uniform(generator, 0.02, 0.06, 1)[0], _uniform(generator, 0.25, 0.4, 1)[0]
    surface = (offset + curvature * x**2 + pit_depth * np.exp(-(x / 0.12) ** 2)) * height
    thickness = np.array([0.035, 0.05, 0.04, 0.06, 0.05, 0.02, 0.03, 0.06]) * height
    thickness *= _uniform(generator, 0.8, 1.2, thickness.size)
    reflectivity = np.array([0.85, 0.35, 0.55, 0.25, 0.45, 0.15, 0.95, 0.6])
    depth = np.arange(height)[:, None] - surface[None, :]
    image = np.full((height, width), 0.03)
    edges = np.concatenate([[0.0], np.cumsum(thickness)])
    for top, bottom, value in zip(edges[:-1], edges[1:], reflectivity, strict=True):
        image[(depth >= top) & (depth < bottom)] = value
    below = depth >= edges[-1]
    image[below] = 0.6 * np.exp(-(depth[below] - edges[-1]) / (0.08 * height))
    for centre in _uniform(generator, -0.9, 0.9, 3):
        shadow = 1.0 - 0.6 * np.exp(-((x - centre) / 0.015) ** 2)
        image[depth > thickness[0]] *= np.broadcast_to(shadow, image.shape)[depth > thickness[0]]
    return np.clip(image, 0.0, 1.0).astype(np.float32)
