"""Activity maps that look like planar scintigrams, generated in code (no data files needed).

All maps are ``(size, size)`` float64, non-negative, with maximum 1 (relative activity), and a
pure function of ``(size, generator)``: every random choice is drawn from the
``torch.Generator``.

* :func:`hot_spot_phantom` — a body outline with low uptake, a few organs with moderate
  uptake, Gaussian hot spots and cold defects (tumour/infection-imaging-like).
* :func:`skeleton_phantom` — random curved bright "bones" (thick smooth curves), joint blobs
  and small lesions on a dim body (bone-scan-like, but with no anatomy).
* :func:`bone_scan_phantom` — an anterior bone scan of the trunk built from an anatomical
  template (vertebrae, ribs, clavicles, sternum, shoulders, pelvis, kidneys, bladder) with
  random proportions, uptakes and hot metastases. Used as a scintigram-like *test* set, it
  shares no generator with the training phantoms above.
* :func:`quadrant_bar_phantom` — a flood through a NEMA quadrant-bar phantom (four bar widths in
  mm at a given pixel size; deterministic, no generator), with :func:`quadrant_slices` for
  measuring the bar contrast of each width.

Shapes are drawn on a normalised grid ``x, y ∈ [−1, 1]`` (columns, rows; ``y = −1`` at the top)
and softened by one-pixel anti-aliasing (a Gaussian of FWHM 1 pixel).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from medrestore.physics.blur import gaussian_blur


def _uniform(generator: torch.Generator, low: float, high: float, count: int = 1) -> np.ndarray:
    return (low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)).numpy()


def _integer(generator: torch.Generator, low: int, high: int) -> int:
    """One integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def normalised_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` pixel-centre coordinates in ``[−1, 1]``, each ``(size, size)`` (``y`` down the rows)."""
    coordinates = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(coordinates, coordinates, indexing="ij")
    return x, y


def ellipse(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], angle: float = 0.0) -> np.ndarray:
    """Indicator (float) of the ellipse with ``centre`` (x, y), semi-axes and rotation ``angle`` (rad)."""
    u = (x - centre[0]) * math.cos(angle) + (y - centre[1]) * math.sin(angle)
    v = -(x - centre[0]) * math.sin(angle) + (y - centre[1]) * math.cos(angle)
    return ((u / axes[0]) ** 2 + (v / axes[1]) ** 2 <= 1.0).astype(np.float64)


def gaussian_spot(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], sigma: float) -> np.ndarray:
    """``exp(−r² / 2σ²)`` around ``centre`` (normalised units)."""
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2.0 * sigma**2))


def polyline_distance(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from every pixel to the polyline through ``points`` ``(P, 2)`` (x, y)."""
    distance = np.full(x.shape, np.inf)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.clip(((x - x0) * dx + (y - y0) * dy) / length2, 0.0, 1.0) if length2 > 0 else np.zeros_like(x)
        distance = np.minimum(distance, np.hypot(x - x0 - t * dx, y - y0 - t * dy))
    return distance


def quadratic_curve(start: np.ndarray, control: np.ndarray, end: np.ndarray, samples: int = 24) -> np.ndarray:
    """Points ``(samples, 2)`` of the quadratic Bézier curve ``start → end`` pulled towards ``control``."""
    t = np.linspace(0.0, 1.0, samples)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def _finish(activity: np.ndarray) -> np.ndarray:
    """Anti-alias (FWHM 1 pixel), clip at 0 and scale to maximum 1."""
    smooth = gaussian_blur(torch.from_numpy(activity), fwhm=1.0).numpy()
    smooth = np.clip(smooth, 0.0, None)
    return smooth / max(float(smooth.max()), 1e-12)


def _body(x: np.ndarray, y: np.ndarray, generator: torch.Generator) -> np.ndarray:
    axes = _uniform(generator, 0.6, 0.92, 2)
    centre = _uniform(generator, -0.08, 0.08, 2)
    return ellipse(x, y, (centre[0], centre[1]), (axes[0], axes[1]), float(_uniform(generator, -0.3, 0.3)[0]))


def hot_spot_phantom(size: int, generator: torch.Generator) -> np.ndarray:
    """Body (uptake 0.03–0.15) + 1–4 organs (0.1–0.5) + 2–10 hot spots (0.3–1) − 0–3 cold defects."""
    x, y = normalised_grid(size)
    body = _body(x, y, generator)
    activity = body * _uniform(generator, 0.03, 0.15)[0]
    for _ in range(_integer(generator, 1, 4)):
        centre, axes = _uniform(generator, -0.5, 0.5, 2), _uniform(generator, 0.06, 0.3, 2)
        angle = float(_uniform(generator, 0.0, math.pi)[0])
        activity += body * ellipse(x, y, (centre[0], centre[1]), (axes[0], axes[1]), angle) * _uniform(generator, 0.1, 0.5)[0]
    for _ in range(_integer(generator, 2, 10)):
        centre = _uniform(generator, -0.6, 0.6, 2)
        sigma, amplitude = _uniform(generator, 0.01, 0.08)[0], _uniform(generator, 0.3, 1.0)[0]
        activity += amplitude * gaussian_spot(x, y, (centre[0], centre[1]), sigma)
    for _ in range(_integer(generator, 0, 3)):
        centre, axes = _uniform(generator, -0.5, 0.5, 2), _uniform(generator, 0.04, 0.15, 2)
        cold = ellipse(x, y, (centre[0], centre[1]), (axes[0], axes[1]))
        activity *= 1.0 - cold * _uniform(generator, 0.4, 0.8)[0]
    return _finish(activity)


def skeleton_phantom(size: int, generator: torch.Generator) -> np.ndarray:
    """Dim body (0.02–0.1) with 4–10 thick bright curves (0.25–0.7), joint blobs and 0–5 lesions."""
    x, y = normalised_grid(size)
    activity = _body(x, y, generator) * _uniform(generator, 0.02, 0.1)[0]
    pixel = 2.0 / size
    ends: list[np.ndarray] = []
    for _ in range(_integer(generator, 4, 10)):
        start, end = _uniform(generator, -0.8, 0.8, 2), _uniform(generator, -0.8, 0.8, 2)
        control = (start + end) / 2 + _uniform(generator, -0.4, 0.4, 2)
        width = _uniform(generator, 1.5, 6.0)[0] * pixel
        distance = polyline_distance(x, y, quadratic_curve(start, control, end))
        bone = np.clip(1.0 - distance / width + 0.5, 0.0, 1.0)  # a soft-edged band of full width ≈ width
        activity = np.maximum(activity, bone * _uniform(generator, 0.25, 0.7)[0])
        ends += [start, end]
    for point in ends:
        if torch.rand(1, generator=generator).item() < 0.4:
            sigma = _uniform(generator, 2.0, 5.0)[0] * pixel
            activity += _uniform(generator, 0.3, 0.8)[0] * gaussian_spot(x, y, (point[0], point[1]), sigma)
    for _ in range(_integer(generator, 0, 5)):
        centre = _uniform(generator, -0.7, 0.7, 2)
        sigma = _uniform(generator, 1.0, 3.0)[0] * pixel
        activity += _uniform(generator, 0.6, 1.0)[0] * gaussian_spot(x, y, (centre[0], centre[1]), sigma)
    return _finish(activity)


def _band(x: np.ndarray, y: np.ndarray, points: np.ndarray, half_width: float) -> np.ndarray:
    """Soft-edged band of half-width ``half_width`` around a polyline (1 inside, 0 outside)."""
    distance = polyline_distance(x, y, points)
    return np.clip((half_width - distance) / (2.0 / x.shape[0]) + 0.5, 0.0, 1.0)


def _skeleton_template(x: np.ndarray, y: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bone uptake of the trunk template and the mask of bone pixels (where lesions may sit)."""
    bone = np.zeros_like(x)
    sway = _uniform(generator, -0.04, 0.04)[0]
    spine_top, spine_bottom = _uniform(generator, -0.92, -0.8)[0], _uniform(generator, 0.4, 0.5)[0]
    count = 17
    height = (spine_bottom - spine_top) / count
    for index in range(count):
        centre_y = spine_top + (index + 0.5) * height
        centre_x = sway * math.sin(math.pi * (index / count))
        width = 0.045 + 0.02 * index / count  # lumbar vertebrae are wider
        bone = np.maximum(bone, ellipse(x, y, (centre_x, centre_y), (width, 0.42 * height)) * _uniform(generator, 0.4, 0.55)[0])
    rib_uptake = _uniform(generator, 0.22, 0.35)[0]
    for index in range(10):
        start_y = spine_top + (index + 1.2) * height
        reach = 0.45 + 0.25 * math.sin(math.pi * (index + 1) / 12)
        for side in (-1.0, 1.0):
            start = np.array([side * 0.05, start_y])
            end = np.array([side * reach, start_y + 0.12 + 0.02 * index])
            control = np.array([side * (reach + 0.05), start_y - 0.06])
            bone = np.maximum(bone, _band(x, y, quadratic_curve(start, control, end), 0.012) * rib_uptake)
    clavicle_y = spine_top - 0.02
    for side in (-1.0, 1.0):
        start, control = np.array([side * 0.07, clavicle_y]), np.array([side * 0.3, clavicle_y - 0.06])
        points = quadratic_curve(start, control, np.array([side * 0.55, clavicle_y - 0.02]))
        bone = np.maximum(bone, _band(x, y, points, 0.016) * 0.35)
        bone = np.maximum(bone, ellipse(x, y, (side * 0.7, clavicle_y + 0.04), (0.08, 0.08)) * _uniform(generator, 0.45, 0.65)[0])
        wing = ellipse(x, y, (side * 0.33, 0.72), (0.3, 0.2)) - ellipse(x, y, (side * 0.33, 0.74), (0.24, 0.15))
        bone = np.maximum(bone, np.clip(wing, 0.0, 1.0) * _uniform(generator, 0.35, 0.5)[0])
    sternum = _band(x, y, np.array([[0.0, spine_top + 0.08], [0.0, spine_top + 0.45]]), 0.022)
    bone = np.maximum(bone, sternum * 0.3)
    bone = np.maximum(bone, ellipse(x, y, (0.0, 0.64), (0.09, 0.1)) * 0.5)  # sacrum
    bone = np.maximum(bone, ellipse(x, y, (0.0, 0.97), (0.05, 0.03)) * 0.4)  # pubic symphysis
    return bone, bone > 0.1


def bone_scan_phantom(size: int, generator: torch.Generator) -> np.ndarray:
    """An anterior trunk bone scan: skeleton template, soft tissue, kidneys, bladder, metastases.

    Proportions jitter by ±10 %, uptakes by their ranges; 2–8 metastases (Gaussian, σ ≈ 1–2.5 %
    of the field, 0.5–1.0) sit on bone pixels.
    """
    x, y = normalised_grid(size)
    zoom = _uniform(generator, 0.9, 1.1)[0]
    shift = _uniform(generator, -0.05, 0.05, 2)
    angle = _uniform(generator, -0.08, 0.08)[0]
    xs = ((x - shift[0]) * math.cos(angle) + (y - shift[1]) * math.sin(angle)) / zoom
    ys = (-(x - shift[0]) * math.sin(angle) + (y - shift[1]) * math.cos(angle)) / zoom
    body = ellipse(xs, ys, (0.0, 0.05), (0.85, 1.1))
    bone, on_bone = _skeleton_template(xs, ys, generator)
    activity = body * _uniform(generator, 0.03, 0.07)[0] + bone
    for side in (-1.0, 1.0):
        activity += ellipse(xs, ys, (side * 0.28, 0.22), (0.075, 0.13), side * 0.25) * _uniform(generator, 0.08, 0.18)[0]
    activity += ellipse(xs, ys, (0.0, 0.9), (0.12, 0.08)) * _uniform(generator, 0.6, 1.0)[0]
    candidates = np.argwhere(on_bone)
    for _ in range(_integer(generator, 2, 8)):
        row, column = candidates[_integer(generator, 0, len(candidates) - 1)]
        sigma = _uniform(generator, 0.01, 0.025)[0]
        activity += _uniform(generator, 0.5, 1.0)[0] * gaussian_spot(x, y, (float(x[row, column]), float(y[row, column])), sigma)
    return _finish(activity)


QUADRANT_BAR_WIDTHS_MM = (2.0, 2.5, 3.0, 3.5)
"""Bar widths of a common NEMA quadrant-bar phantom for high-resolution cameras (bars and gaps alike)."""
QUADRANT_BAR_AXES = (1, 0, 0, 1)
"""Per quadrant (top-left, top-right, bottom-left, bottom-right): the axis along which the bars alternate
(1: vertical bars, alternating across the columns; 0: horizontal bars, alternating down the rows)."""


def quadrant_slices(size: int, quadrant: int) -> tuple[slice, slice]:
    """``(rows, columns)`` of a square half a quadrant wide in ``quadrant`` (0–3, as :data:`QUADRANT_BAR_AXES`) of a
    ``size²`` map, a tenth of the half-field away from the centre lines, so inside the phantom's disc."""
    half = size // 2
    near, far = half // 10, half // 10 + half // 2

    def span(second: int) -> slice:
        return slice(half + near, half + far) if second else slice(half - far, half - near)

    return span(quadrant // 2), span(quadrant % 2)


def quadrant_bar_phantom(size: int, pixel_mm: float, bar_widths_mm: tuple[float, ...] = QUADRANT_BAR_WIDTHS_MM) -> np.ndarray:
    """A flood seen through a quadrant-bar phantom: ``(size, size)`` float64, 1 between the bars, 0 under them.

    Each quadrant holds lead bars of one width ``w`` (bars and gaps both ``w`` mm wide, period ``2w``,
    the first gap starting at the quadrant's edge), vertical or horizontal by :data:`QUADRANT_BAR_AXES`;
    outside a disc of radius 0.94 × half the field there is no activity. Deterministic (no generator).
    A pixel partly under a bar gets the covered fraction, so the map is exact for any ``pixel_mm``.

    Reference: NEMA NU 1-2018, §2.1 (intrinsic spatial resolution with a bar phantom).
    """
    if len(bar_widths_mm) != 4 or min(bar_widths_mm) <= 0 or pixel_mm <= 0:
        raise ValueError(f"a quadrant-bar phantom has four positive bar widths and a positive pixel size, got {bar_widths_mm}, {pixel_mm}")
    half = size // 2
    edges = np.arange(half + 1) * pixel_mm  # pixel edges from the quadrant's edge, mm

    def gap_fraction(width: float) -> np.ndarray:
        """Fraction of each pixel of a quadrant's axis that lies in a gap (cumulative gap length difference)."""
        periods, remainder = np.divmod(edges, 2.0 * width)
        covered = periods * width + np.minimum(remainder, width)
        return np.diff(covered) / pixel_mm

    activity = np.zeros((size, size))
    for quadrant, (width, axis) in enumerate(zip(bar_widths_mm, QUADRANT_BAR_AXES)):
        profile = gap_fraction(width)
        block = np.tile(profile, (half, 1)) if axis == 1 else np.tile(profile[:, None], (1, half))
        top, left = (quadrant // 2) * half, (quadrant % 2) * half
        activity[top : top + half, left : left + half] = block
    x, y = normalised_grid(size)
    return activity * (np.hypot(x, y) <= 0.94)
