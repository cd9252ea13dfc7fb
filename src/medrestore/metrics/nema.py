"""The gamma-camera measures of NEMA NU 1: line-spread width, bar contrast, flood uniformity.

What a nuclear-medicine physicist reads from a quality-control acquisition, as plain functions
of a planar image in counts (``(H, W)`` NumPy array or torch tensor, any real dtype; computed in
float64; the input is never modified):

* :func:`response_width` / :func:`line_source_widths` — the **FWHM and FWTM** of a line source
  (NEMA NU 1-2018, §2.1 spatial resolution): profiles across the line, summed over strips along
  it; in each, the peak is the vertex of the parabola through the maximum pixel and its two
  neighbours, and each edge is found by linear interpolation between the two pixels straddling
  ``fraction × peak``. Width in mm with the pixel size of the file. For a Gaussian line-spread
  function of standard deviation σ: FWHM = 2√(2 ln 2) σ ≈ 2.3548 σ, FWTM = 2√(2 ln 10) σ ≈ 4.2919 σ.
* :func:`bar_contrast` — the **modulation** ``(I_max − I_min) / (I_max + I_min)`` of a profile
  across a bar (or line) pattern, the bar-phantom contrast at one bar width: 1 for fully resolved
  bars on an empty background, 0 for bars blurred flat; ``b / a`` for ``a + b sin(2πx/T)``.
* :func:`flood_uniformity` — **integral and differential uniformity** of a flood over the useful
  (UFOV) and central (CFOV, 75 % of the UFOV's linear size) fields (NEMA NU 1-2018, §2.4): the
  image is binned to pixels of about 6.4 mm, edge pixels below 75 % of the CFOV mean are dropped
  together with every pixel that has a dropped 4-neighbour, the 9-point kernel
  ``[[1,2,1],[2,4,2],[1,2,1]] / 16`` smooths it once (renormalised where a diagonal neighbour was
  dropped); then
  ``IU = 100 (max − min) / (max + min)`` over the field and ``DU`` is the largest such value over
  any 5 consecutive pixels of a row or column inside the field.

Reference: National Electrical Manufacturers Association, *NEMA NU 1-2018: Performance
Measurements of Gamma Cameras* (Rosslyn, VA, 2018).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.ndimage import binary_erosion, convolve

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike, to_float64

__all__ = [
    "DIFFERENTIAL_WINDOW", "NEMA_PIXEL_MM", "SMOOTHING_KERNEL", "LineWidths", "Uniformity", "bar_contrast",
    "flood_uniformity", "line_source_widths", "response_width",
]  # fmt: skip

NEMA_PIXEL_MM = 6.4
"""The pixel size NEMA NU 1 prescribes for uniformity (±30 %)."""
SMOOTHING_KERNEL = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
"""NEMA's 9-point smoothing filter."""
DIFFERENTIAL_WINDOW = 5
"""Consecutive pixels of a row or column over which the differential uniformity is taken."""
CFOV_FRACTION = 0.75
EDGE_THRESHOLD = 0.75


def _plane(image: ArrayLike, what: str) -> np.ndarray:
    array = to_float64(image, what).cpu().numpy()
    if array.ndim != 2:
        raise InputError(None, f"{what} needs a planar (2-D) image, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(None, f"{what} needs finite values")
    return array


def _peak(profile: np.ndarray) -> tuple[float, float]:
    """``(position, value)`` of the vertex of the parabola through the maximum and its neighbours."""
    index = int(np.argmax(profile))
    if index == 0 or index == profile.size - 1:
        return float(index), float(profile[index])
    left, centre, right = profile[index - 1 : index + 2]
    curvature = left - 2.0 * centre + right
    if curvature >= 0:  # flat top: no vertex
        return float(index), float(centre)
    offset = 0.5 * (left - right) / curvature
    return index + offset, float(centre - 0.25 * (left - right) * offset)


def _crossing(profile: np.ndarray, start: int, level: float, step: int) -> float:
    """Position where ``profile`` falls below ``level`` walking from ``start`` by ``step`` (linear interpolation)."""
    index = start
    while 0 <= index + step < profile.size and profile[index + step] >= level:
        index += step
    after = index + step
    if not 0 <= after < profile.size:
        raise InputError(None, f"the profile does not fall to {level:.6g} on one side of its peak")
    inside, outside = profile[index], profile[after]
    return index + step * (inside - level) / (inside - outside)


def response_width(profile: ArrayLike, pixel_mm: float = 1.0, fraction: float = 0.5) -> float:
    """Full width at ``fraction`` of the maximum of a 1-D response profile (NEMA NU 1), in mm.

    Args:
        profile: ``(N,)`` counts across a line source (one peak above its background).
        pixel_mm: sample spacing.
        fraction: 0.5 for the FWHM, 0.1 for the FWTM.

    Raises:
        InputError: not 1-D, no positive peak, or a side that never falls to the level.
    """
    values = to_float64(profile, "profile").cpu().numpy()
    if values.ndim != 1 or values.size < 3:
        raise InputError(None, f"a response profile is 1-D with at least 3 samples, got shape {values.shape}")
    if not 0.0 < fraction < 1.0:
        raise InputError(None, f"fraction must lie in (0, 1), got {fraction}")
    _, peak = _peak(values)
    if peak <= 0:
        raise InputError(None, "the profile has no positive peak")
    level = fraction * peak
    start = int(np.argmax(values))
    return (_crossing(values, start, level, 1) - _crossing(values, start, level, -1)) * pixel_mm


@dataclasses.dataclass(frozen=True)
class LineWidths:
    """FWHM and FWTM (mm) of every line and strip: arrays ``(lines, strips)``, lines ordered by position."""

    fwhm_mm: np.ndarray
    fwtm_mm: np.ndarray
    positions: np.ndarray
    """``(lines,)`` peak positions across the lines, in pixels."""

    @property
    def mean_fwhm_mm(self) -> float:
        return float(self.fwhm_mm.mean())

    @property
    def mean_fwtm_mm(self) -> float:
        return float(self.fwtm_mm.mean())


def line_source_widths(
    image: ArrayLike, pixel_mm: float, lines: int = 1, line_axis: int = 0, strip_mm: float = 30.0,
    min_strip_fraction: float = 0.5,
) -> LineWidths:  # fmt: skip
    """FWHM/FWTM of ``lines`` parallel line sources running along ``line_axis`` (NEMA NU 1, module docstring).

    The image is cut along the lines into strips of ``strip_mm``; each strip's counts summed along
    the lines make one profile across them. Only strips whose total reaches ``min_strip_fraction``
    of the fullest strip's are measured (the ends of the lines are not). The lines are found in the
    profile of the whole image: the highest peak, then the next outside ``±1 FWTM`` of those found (a slit pattern's
    lines 30 mm apart stay apart at a 20-mm FWTM).

    Args:
        image: ``(H, W)`` counts.
        pixel_mm: pixel size (mm, square pixels; from the file's spacing).
        lines: number of line sources.
        line_axis: 0 when the lines run along the rows' index (vertical lines), 1 when along the columns.

    Raises:
        InputError: not 2-D, non-finite, or a profile without the expected peaks.
    """
    plane = _plane(image, "line-source widths")
    if line_axis not in (0, 1):
        raise InputError(None, f"line_axis is 0 or 1, got {line_axis}")
    along = plane if line_axis == 0 else plane.T  # (along the lines, across them)
    windows = _line_windows(along.sum(axis=0), lines)
    strip = max(1, int(round(strip_mm / pixel_mm)))
    strips = [along[start : start + strip].sum(axis=0) for start in range(0, along.shape[0] - strip + 1, strip)]
    totals = np.array([profile.sum() for profile in strips])
    kept = [profile for profile, total in zip(strips, totals) if total >= min_strip_fraction * totals.max()]
    fwhm = np.array([[response_width(p[lo:hi], pixel_mm, 0.5) for p in kept] for lo, hi in windows])
    fwtm = np.array([[response_width(p[lo:hi], pixel_mm, 0.1) for p in kept] for lo, hi in windows])
    positions = np.array([lo + _peak(along.sum(axis=0)[lo:hi])[0] for lo, hi in windows])
    return LineWidths(fwhm, fwtm, positions)


def _line_windows(profile: np.ndarray, lines: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` around each of the ``lines`` highest peaks, sorted by position, not overlapping."""
    remaining = profile.copy()
    centres, half_widths = [], []
    for _ in range(lines):
        centre = int(np.argmax(remaining))
        if remaining[centre] <= 0:
            raise InputError(None, f"found {len(centres)} line sources, expected {lines}")
        half = max(3, int(math.ceil(response_width(remaining, 1.0, 0.1))))
        remaining[max(0, centre - half) : centre + half + 1] = 0.0
        centres.append(centre)
        half_widths.append(half)
    order = np.argsort(centres)
    centres = [centres[i] for i in order]
    half_widths = [half_widths[i] for i in order]
    windows = []
    for index, (centre, half) in enumerate(zip(centres, half_widths)):
        low = centre - 2 * half if index == 0 else (centres[index - 1] + centre) // 2
        high = centre + 2 * half + 1 if index == lines - 1 else (centre + centres[index + 1]) // 2
        windows.append((max(0, low), min(profile.size, high)))
    return windows


def bar_contrast(profile: ArrayLike) -> float:
    """``(I_max − I_min) / (I_max + I_min)`` of a profile across a bar pattern (module docstring).

    Args:
        profile: ``(N,)`` counts across the bars of one width, covering whole periods (at least
            one bar and one gap), each value an average along the bars.

    Raises:
        InputError: not 1-D, or nothing positive.
    """
    values = to_float64(profile, "profile").cpu().numpy()
    if values.ndim != 1 or values.size < 2:
        raise InputError(None, f"a bar profile is 1-D with at least 2 samples, got shape {values.shape}")
    high, low = float(values.max()), float(values.min())
    if high <= 0:
        raise InputError(None, "the bar profile has no positive value")
    return (high - low) / (high + low)


@dataclasses.dataclass(frozen=True)
class Uniformity:
    """NEMA integral and differential uniformity (%) over the useful and central fields of view."""

    integral_ufov: float
    differential_ufov: float
    integral_cfov: float
    differential_cfov: float
    pixel_mm: float
    """The binned pixel size the measures were taken at."""

    def record(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _bin(plane: np.ndarray, factor: int) -> np.ndarray:
    rows, columns = (plane.shape[0] // factor) * factor, (plane.shape[1] // factor) * factor
    return plane[:rows, :columns].reshape(rows // factor, factor, columns // factor, factor).sum(axis=(1, 3))


def _central(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` inside its bounding box shrunk to :data:`CFOV_FRACTION` about its centre."""
    rows, columns = np.nonzero(mask)
    box = np.zeros_like(mask)
    for axis, where in ((0, rows), (1, columns)):
        centre, half = (where.min() + where.max()) / 2.0, (where.max() - where.min() + 1) * CFOV_FRACTION / 2.0
        keep = np.abs(np.arange(mask.shape[axis]) - centre) <= half - 0.5
        box = box | (np.expand_dims(~keep, 1 - axis))
    return mask & ~box


def _integral(values: np.ndarray) -> float:
    high, low = float(values.max()), float(values.min())
    return 100.0 * (high - low) / (high + low)


def _differential(smoothed: np.ndarray, field: np.ndarray) -> float:
    worst = 0.0
    for plane, inside in ((smoothed, field), (smoothed.T, field.T)):
        for row, keep in zip(plane, inside):
            for start in range(row.size - DIFFERENTIAL_WINDOW + 1):
                if keep[start : start + DIFFERENTIAL_WINDOW].all():
                    worst = max(worst, _integral(row[start : start + DIFFERENTIAL_WINDOW]))
    return worst


def flood_uniformity(flood: ArrayLike, pixel_mm: float) -> Uniformity:
    """NEMA NU 1 integral and differential uniformity of a flood (module docstring).

    Args:
        flood: ``(H, W)`` counts of a uniform-flood acquisition (zero outside the detector).
        pixel_mm: its pixel size; the image is binned by ``round(6.4 / pixel_mm)`` (at least 1).

    Raises:
        InputError: not 2-D, non-finite, no field of at least 5 × 5 binned pixels, or a field without a central part
            (an image that is not a flood: line sources, bars on an empty background).
    """
    plane = _plane(flood, "flood uniformity")
    factor = max(1, int(round(NEMA_PIXEL_MM / pixel_mm)))
    binned = _bin(plane, factor)
    field = binned > 0
    if field.sum() < DIFFERENTIAL_WINDOW**2:
        raise InputError(None, "the flood has fewer than 25 non-zero binned pixels")
    threshold = EDGE_THRESHOLD * float(binned[_central(field)].mean())
    kept = binned >= threshold
    ufov = binary_erosion(kept, structure=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    if ufov.sum() < DIFFERENTIAL_WINDOW**2:
        raise InputError(None, "the flood's useful field has fewer than 25 binned pixels")
    weights = convolve(kept.astype(np.float64), SMOOTHING_KERNEL, mode="constant")  # dropped neighbours do not count
    smoothed = convolve(np.where(kept, binned, 0.0), SMOOTHING_KERNEL, mode="constant") / np.maximum(weights, 1e-12)
    cfov = _central(ufov)
    if not cfov.any():
        raise InputError(None, "the flood's useful field has no central part (its pixels above 75 % of the central mean do not form one field): not a flood")
    return Uniformity(
        integral_ufov=_integral(smoothed[ufov]), differential_ufov=_differential(smoothed, ufov),
        integral_cfov=_integral(smoothed[cfov]), differential_cfov=_differential(smoothed, cfov),
        pixel_mm=pixel_mm * factor,
    )  # fmt: skip
