"""Cartesian undersampling masks: fastMRI's random and equispaced lines, and 2-D Poisson-disc.

Line masks follow fastMRI's ``fastmri/data/subsample.py`` (``RandomMaskFunc``,
``EquiSpacedMaskFunc``; Zbontar et al., arXiv:1811.08839) to the draw, along the phase-encode
axis of ``N`` lines:

* centre: ``n_low = round(N · center_fraction)`` lines, starting at ``(N − n_low + 1) // 2``;
* random: every line is also kept with probability ``p = (N / R − n_low) / (N − n_low)``
  (``rng.uniform(size=N) < p``), so the expected acceleration is ``R``;
* equispaced: lines ``offset, offset + R, offset + 2R, ...`` with ``offset = rng.randint(0, round(R))``,
  plus the centre (the acceleration actually reached is a little below ``R``).

The generator is ``numpy.random.RandomState(seed)`` drawn in fastMRI's order (one
``randint(n_choices)`` to pick the centre fraction/acceleration pair, then the mask), so a
seed gives exactly fastMRI's mask for ``MaskFunc([center_fraction], [R], seed=seed)``.

Poisson-disc (2-D, for retrospective experiments and 3-D phase-encode planes) follows the
variable-density algorithm of sigpy's ``sigpy.mri.poisson`` and BART's ``poisson``
(Bridson's dart throwing, Lustig et al., MRM 58(6), 2007): the exclusion radius grows
linearly with the normalised distance ``r`` from a fully sampled calibration box,
``radius = 1 + slope · r`` (per axis, scaled by ``n_axis / max(n)``), corners with ``r ≥ 1`` are
left out, and ``slope`` is found by bisection until ``|N_grid / N_sampled − R| < tol``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch

MaskKind = Literal["random", "equispaced", "poisson"]
MASK_KINDS: tuple[MaskKind, ...] = ("random", "equispaced", "poisson")


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """How to draw a mask (recorded beside undersampled data so it can be redrawn).

    Attributes:
        kind: ``random``, ``equispaced`` (fastMRI lines) or ``poisson`` (2-D Poisson-disc).
        acceleration: target acceleration ``R`` (> 1).
        center_fraction: fraction of each phase-encode axis fully sampled at the centre.
        seed: seed of the generator.
        phase_encode_axis: grid axis of the lines (line masks; ``-2`` = ``ky`` of ``(ky, kx)``).
    """

    kind: MaskKind
    acceleration: float
    center_fraction: float = 0.08
    seed: int = 0
    phase_encode_axis: int = -2

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; expected one of {MASK_KINDS}")
        if not self.acceleration > 1:
            raise ValueError(f"acceleration must be > 1, got {self.acceleration}")
        if not 0 <= self.center_fraction < 1:
            raise ValueError(f"center_fraction must be in [0, 1), got {self.center_fraction}")


def _fastmri_center(num_lines: int, num_low_frequencies: int) -> np.ndarray:
    mask = np.zeros(num_lines, dtype=bool)
    pad = (num_lines - num_low_frequencies + 1) // 2
    mask[pad : pad + num_low_frequencies] = True
    return mask


def _line_shape(grid_shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """``(1, ..., N, ..., 1)``: a line mask broadcastable to the grid."""
    shape = [1] * len(grid_shape)
    shape[axis] = grid_shape[axis]
    return tuple(shape)


def random_line_mask(
    grid_shape: tuple[int, ...], acceleration: float, center_fraction: float, seed: int, axis: int = -2
) -> torch.Tensor:
    """fastMRI ``RandomMaskFunc``: bool mask of shape ``(1, .., N, .., 1)`` along ``axis``."""
    num_lines = int(grid_shape[axis])
    rng = np.random.RandomState(seed)
    rng.randint(1)  # fastMRI's choose_acceleration draw (one centre fraction/acceleration pair)
    num_low = round(num_lines * center_fraction)
    probability = (num_lines / acceleration - num_low) / (num_lines - num_low)
    lines = rng.uniform(size=num_lines) < probability
    lines |= _fastmri_center(num_lines, num_low)
    return torch.from_numpy(lines.reshape(_line_shape(grid_shape, axis)))


def equispaced_line_mask(
    grid_shape: tuple[int, ...], acceleration: float, center_fraction: float, seed: int, axis: int = -2
) -> torch.Tensor:
    """fastMRI ``EquiSpacedMaskFunc``: lines ``offset::R`` plus the centre, offset drawn from the seed.

    ``acceleration`` must be an integer (fastMRI slices with it).
    """
    if float(acceleration) != int(acceleration):
        raise ValueError(f"equispaced masks need an integer acceleration, got {acceleration}")
    num_lines = int(grid_shape[axis])
    rng = np.random.RandomState(seed)
    rng.randint(1)
    num_low = round(num_lines * center_fraction)
    offset = rng.randint(0, high=round(acceleration))
    lines = np.zeros(num_lines, dtype=bool)
    lines[offset :: int(acceleration)] = True
    lines |= _fastmri_center(num_lines, num_low)
    return torch.from_numpy(lines.reshape(_line_shape(grid_shape, axis)))


def _variable_density_distance(shape: tuple[int, int], calibration: tuple[int, int]) -> np.ndarray:
    """sigpy's normalised distance ``r`` from the calibration box (0 inside it, 1 at the edge centres)."""
    ny, nx = shape
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    x = np.maximum(np.abs(x - nx / 2) - calibration[1] / 2, 0)
    y = np.maximum(np.abs(y - ny / 2) - calibration[0] / 2, 0)
    x /= max(x.max(), 1e-12)
    y /= max(y.max(), 1e-12)
    return np.sqrt(x**2 + y**2)


def _first_free_candidate(
    mask: np.ndarray, radius_x: np.ndarray, radius_y: np.ndarray, candidates: np.ndarray, rx: float, ry: float
) -> int:
    """Index of the first candidate ``(qx, qy)`` outside every sampled point's exclusion ellipse, or -1.

    A sampled point ``(x, y)`` excludes ``q`` when ``((qx − x)/r_x(x, y))² + ((qy − y)/r_y(x, y))² < 1``;
    as in sigpy, only points within ``±(rx, ry)`` of the candidate (the active point's radii) are checked.
    """
    ny, nx = mask.shape
    qx, qy = candidates[:, 0], candidates[:, 1]
    inside = (qx >= 0) & (qx < nx) & (qy >= 0) & (qy < ny)
    x0, x1 = max(int(qx.min() - rx), 0), min(int(qx.max() + rx + 1), nx)
    y0, y1 = max(int(qy.min() - ry), 0), min(int(qy.max() + ry + 1), ny)
    ys, xs = np.nonzero(mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)])
    if len(xs):
        xs, ys = xs + max(x0, 0), ys + max(y0, 0)
        in_window = (
            (xs[None, :] >= np.maximum((qx - rx).astype(np.int64)[:, None], 0))
            & (xs[None, :] < (qx + rx + 1).astype(np.int64)[:, None])
            & (ys[None, :] >= np.maximum((qy - ry).astype(np.int64)[:, None], 0))
            & (ys[None, :] < (qy + ry + 1).astype(np.int64)[:, None])
        )
        distance = ((qx[:, None] - xs) / radius_x[ys, xs]) ** 2 + ((qy[:, None] - ys) / radius_y[ys, xs]) ** 2
        inside &= ~np.any(in_window & (distance < 1), axis=1)
    free = np.flatnonzero(inside)
    return int(free[0]) if len(free) else -1


def _bridson(radius_x: np.ndarray, radius_y: np.ndarray, rng: np.random.RandomState, max_attempts: int) -> np.ndarray:
    """Variable-radius Poisson-disc dart throwing with an active list (sigpy's ``_poisson``).

    Each step draws ``max_attempts`` candidates at once in the annulus ``[r, 2r]`` around an
    active point and keeps the first free one; a point without a free candidate leaves the list.
    """
    ny, nx = radius_x.shape
    mask = np.zeros((ny, nx), dtype=bool)
    active = [(float(rng.randint(0, nx)), float(rng.randint(0, ny)))]
    while active:
        index = rng.randint(0, len(active))
        px, py = active[index]
        rx, ry = float(radius_x[int(py), int(px)]), float(radius_y[int(py), int(px)])
        v = np.sqrt(rng.random_sample(max_attempts) * 3 + 1)
        t = 2 * np.pi * rng.random_sample(max_attempts)
        candidates = np.stack([px + v * rx * np.cos(t), py + v * ry * np.sin(t)], axis=1)
        chosen = _first_free_candidate(mask, radius_x, radius_y, candidates, rx, ry)
        if chosen < 0:
            active[index] = active[-1]
            active.pop()
        else:
            qx, qy = float(candidates[chosen, 0]), float(candidates[chosen, 1])
            active.append((qx, qy))
            mask[int(qy), int(qx)] = True
    return mask


def _next_slope(low: tuple[float, float], high: tuple[float, float], target: float, interpolate: bool) -> float:
    """Next slope inside the bracket: interpolation in ``log R`` (regula falsi), every third step a bisection."""
    if interpolate and high[1] > low[1]:
        fraction = (np.log(target) - np.log(low[1])) / (np.log(high[1]) - np.log(low[1]))
        fraction = float(np.clip(fraction, 0.02, 0.98))
        return low[0] + fraction * (high[0] - low[0])
    return (low[0] + high[0]) / 2


def poisson_disc_mask(
    grid_shape: tuple[int, int],
    acceleration: float,
    calibration: tuple[int, int],
    seed: int,
    tolerance: float = 0.1,
    max_attempts: int = 30,
    crop_corner: bool = True,
) -> torch.Tensor:
    """Variable-density 2-D Poisson-disc mask, bool ``(ny, nx)``, fully sampled ``calibration`` box.

    Args:
        grid_shape: ``(ny, nx)``.
        acceleration: target ``R = ny·nx / N_sampled``; bisection stops within ``tolerance``
            (or after 30 steps, returning the closest mask found); the slope search
            interpolates in ``log R`` with a bisection every third step.
        calibration: ``(cy, cx)`` size of the fully sampled centre.
        seed: seed of ``numpy.random.RandomState`` (re-seeded for every bisection step, as sigpy does).
    """
    ny, nx = (int(n) for n in grid_shape)
    distance = _variable_density_distance((ny, nx), calibration)
    low, high = (0.0, 1.0), (float(max(nx, ny)), float(nx * ny))  # (slope, acceleration reached)
    best: tuple[float, np.ndarray] | None = None
    for step in range(30):
        slope = _next_slope(low, high, acceleration, interpolate=step % 3 != 2)
        radius_x = np.clip((1 + distance * slope) * nx / max(nx, ny), 1, None)
        radius_y = np.clip((1 + distance * slope) * ny / max(nx, ny), 1, None)
        mask = _bridson(radius_x, radius_y, np.random.RandomState(seed), max_attempts)
        if crop_corner:
            mask &= distance < 1
        cy0, cx0 = int(ny / 2 - calibration[0] / 2), int(nx / 2 - calibration[1] / 2)
        mask[cy0 : int(ny / 2 + calibration[0] / 2), cx0 : int(nx / 2 + calibration[1] / 2)] = True
        reached = ny * nx / max(int(mask.sum()), 1)
        if best is None or abs(reached - acceleration) < abs(best[0] - acceleration):
            best = (reached, mask)
        if abs(reached - acceleration) < tolerance:
            break
        if reached < acceleration:
            low = (slope, reached)
        else:
            high = (slope, reached)
    assert best is not None
    return torch.from_numpy(best[1])


def sample_mask(spec: MaskSpec, grid_shape: tuple[int, ...]) -> torch.Tensor:
    """Draw the mask ``spec`` describes for a 2-D grid; bool, broadcastable to ``grid_shape``.

    Poisson-disc masks use a calibration box of ``round(n · center_fraction)`` per axis.
    """
    if spec.kind == "random":
        return random_line_mask(grid_shape, spec.acceleration, spec.center_fraction, spec.seed, spec.phase_encode_axis)
    if spec.kind == "equispaced":
        return equispaced_line_mask(grid_shape, spec.acceleration, spec.center_fraction, spec.seed, spec.phase_encode_axis)
    if len(grid_shape) != 2:
        raise ValueError(f"Poisson-disc masks are 2-D; got a grid of shape {grid_shape}")
    calibration = (round(grid_shape[0] * spec.center_fraction), round(grid_shape[1] * spec.center_fraction))
    return poisson_disc_mask((int(grid_shape[0]), int(grid_shape[1])), spec.acceleration, calibration, spec.seed)


def mask_acceleration(mask: torch.Tensor, grid_shape: tuple[int, ...]) -> float:
    """Acceleration reached: grid size / sampled locations."""
    full = torch.broadcast_to(mask.to(torch.bool), grid_shape)
    return float(full.numel() / max(int(full.sum()), 1))
