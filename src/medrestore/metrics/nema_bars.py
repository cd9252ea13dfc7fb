"""Bar-phantom measures of a gamma camera: each quadrant of a four-quadrant bar image, found and read without a map.

A four-quadrant bar phantom (NEMA NU 1-2018, §2.1 intrinsic and system spatial resolution) puts four sets of lead bars
of one width each — bars and gaps equally wide — on a flood source or on the bare crystal. A physicist reads, per
quadrant, which bar width is still resolved and how well. :func:`quadrant_bars` does so on a planar image in counts
``(H, W)``, with nothing known but the pixel size:

1. **The field**: the image smoothed by a Gaussian of :data:`FIELD_SMOOTHING_MM` (the bars vanish), thresholded at
   half its 90th percentile over the positive pixels; its centroid is the phantom's centre and its bounding box
   the field's half-sizes ``(a, b)``.
2. **Quadrant windows**: in each quadrant, the square of rows ``c_r ± [0.1 a, 0.6 a]`` and columns
   ``c_c ± [0.1 b, 0.6 b]`` — half a quadrant wide, a tenth of the half-field from the centre lines, inside a disc
   of radius ``a = b`` (``0.6·√2 < 1``).
3. **Direction and width**: the window's mean profile along each axis, its linear trend removed, Hann-windowed and
   zero-padded ×16; the peak of its amplitude spectrum between periods of 2 pixels and a third of the window
   (parabolic vertex) gives the bar period ``T``. The axis whose fundamental is the stronger is the one the bars
   alternate along; the **bar width** is ``T / 2`` in mm. Where the phantom's four widths are given, each quadrant is
   measured at the period ``2w`` of its own width instead (widths and directions assigned to the quadrants to
   maximise the summed signal-to-noise ratio of step 5, each width once).
4. **Contrast**: :func:`~medrestore.metrics.nema.bar_contrast` of that profile, ``(I_max − I_min) / (I_max + I_min)``,
   and the **modulation** ``m = √(A² + B²) / c₀`` of the least-squares fit ``c₀ + c₁x + A cos 2πx/T + B sin 2πx/T``
   (``x`` centred on the window): exactly ``b / a`` for ``a + b sin(2πx/T)`` at any phase and window length, and
   less sensitive to noise than the extremes.
5. **Resolved**: ``m`` exceeds :data:`RESOLVED_SIGMAS` times its noise, measured on the image itself: the two halves of
   the window along the bars give profiles ``p₁, p₂`` whose difference holds only noise (the bars are constant along
   themselves), so a profile sample's noise is ``σ = std(p₁ − p₂) / 2``, and the amplitude's is ``σ`` times the
   square root of the mean of the cosine and sine entries of ``(XᵀX)⁻¹``.

Reference: National Electrical Manufacturers Association, *NEMA NU 1-2018: Performance Measurements of Gamma
Cameras* (Rosslyn, VA, 2018), §2.1.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
from scipy.ndimage import gaussian_filter

from medrestore.core.errors import InputError
from medrestore.metrics.arrays import ArrayLike, to_float64
from medrestore.metrics.nema import bar_contrast

__all__ = ["FIELD_SMOOTHING_MM", "MIN_WINDOW", "NOISE_FLOOR", "QUADRANTS", "RESOLVED_SIGMAS", "QuadrantBars", "quadrant_bars"]

FIELD_SMOOTHING_MM = 20.0
"""FWHM of the Gaussian that smooths the bars away before the field is found."""
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
"""The quadrants in the order :func:`quadrant_bars` returns them (rows from the top, as stored)."""
RESOLVED_SIGMAS = 5.0
"""A bar pattern is resolved where its fundamental stands this many noise levels above zero (the largest of
about ``N/2`` independent spectral magnitudes of pure noise exceeds it with probability ``N/2 · e^{−12.5}``)."""
_PADDING = 16
MIN_WINDOW = 12
"""Least side of a quadrant window, pixels (a few bar periods at the finest)."""
NOISE_FLOOR = 1e-6
"""Least noise of a profile sample, relative to its mean, in the signal-to-noise ratios that assign widths (a noise-free
image would make them all infinite)."""
_SIGMA_PER_FWHM = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclasses.dataclass(frozen=True)
class QuadrantBars:
    """The bars of one quadrant (module docstring).

    Attributes:
        quadrant: one of :data:`QUADRANTS`.
        bars_run: ``"vertical"`` (bars alternate across the columns) or ``"horizontal"``.
        bar_width_mm: half the measured period (the strongest periodic component, resolved or not).
        contrast: ``(I_max − I_min) / (I_max + I_min)`` of the mean profile across the bars.
        modulation: the fundamental's amplitude over the profile's mean.
        noise_modulation: the modulation that noise alone gives (its standard deviation).
        resolved: ``modulation ≥ RESOLVED_SIGMAS · noise_modulation``.
        window: ``(row start, row stop, column start, column stop)`` of the quadrant window, pixels.
    """

    quadrant: str
    bars_run: str
    bar_width_mm: float
    contrast: float
    modulation: float
    noise_modulation: float
    resolved: bool
    window: tuple[int, int, int, int]

    def record(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _field(plane: np.ndarray, pixel_mm: float) -> tuple[float, float, float, float]:
    """``(centre row, centre column, half height, half width)`` of the phantom's field, pixels."""
    smoothed = gaussian_filter(plane, sigma=FIELD_SMOOTHING_MM * _SIGMA_PER_FWHM / pixel_mm, mode="constant")
    positive = smoothed[smoothed > 0]
    if positive.size == 0:
        raise InputError(None, "the bar image holds no counts")
    mask = smoothed >= 0.5 * float(np.quantile(positive, 0.9))
    rows, columns = np.nonzero(mask)
    weights = plane[mask].clip(min=0.0) + 1e-12
    centre = (float(np.average(rows, weights=weights)), float(np.average(columns, weights=weights)))
    half = (min(centre[0] - rows.min(), rows.max() - centre[0]), min(centre[1] - columns.min(), columns.max() - centre[1]))
    return centre[0], centre[1], float(half[0]), float(half[1])


def _window(centre: float, half: float, after: bool) -> tuple[int, int]:
    near, far = 0.1 * half, 0.6 * half
    start, stop = (centre + near, centre + far) if after else (centre - far, centre - near)
    return int(round(start)), int(round(stop)) + 1


def _detrended(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(profile − its linear fit, Hann weights)``."""
    x = np.arange(profile.size, dtype=np.float64)
    return profile - np.polyval(np.polyfit(x, profile, 1), x), np.hanning(profile.size)


@dataclasses.dataclass(frozen=True)
class _Fit:
    """``p(x) ≈ c₀ + c₁ x + A cos 2πfx + B sin 2πfx`` by least squares, ``x`` centred on the window."""

    level: float
    """``c₀``: the profile's level at the window's centre."""
    amplitude: float
    """``√(A² + B²)``."""
    noise_per_sigma: float
    """The amplitude's standard deviation per unit of white noise on the samples: ``√((v_A + v_B) / 2)`` with
    ``v`` the diagonal of ``(XᵀX)⁻¹``."""

    @classmethod
    def of(cls, profile: np.ndarray, frequency: float) -> _Fit:
        x = np.arange(profile.size, dtype=np.float64) - (profile.size - 1) / 2
        design = np.stack([np.ones_like(x), x, np.cos(2 * np.pi * frequency * x), np.sin(2 * np.pi * frequency * x)], axis=1)
        coefficients, *_ = np.linalg.lstsq(design, profile, rcond=None)
        variances = np.diag(np.linalg.pinv(design.T @ design))
        return cls(float(coefficients[0]), float(np.hypot(coefficients[2], coefficients[3])), float(np.sqrt(0.5 * (variances[2] + variances[3]))))


def _fundamental(profile: np.ndarray) -> tuple[float, float]:
    """``(period in pixels, amplitude)`` of the strongest periodic component of ``profile`` (module docstring)."""
    n = profile.size
    detrended, weights = _detrended(profile)
    spectrum = np.abs(np.fft.rfft(detrended * weights, n=n * _PADDING))
    frequencies = np.fft.rfftfreq(n * _PADDING)
    allowed = np.flatnonzero((frequencies >= 3.0 / n) & (frequencies <= 0.5))
    index = int(allowed[np.argmax(spectrum[allowed])])
    shift = 0.0
    if allowed[0] < index < allowed[-1]:
        left, centre, right = spectrum[index - 1], spectrum[index], spectrum[index + 1]
        curvature = left - 2 * centre + right
        shift = float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0
    frequency = (index + shift) / (n * _PADDING)
    return 1.0 / frequency, _Fit.of(profile, frequency).amplitude


@dataclasses.dataclass(frozen=True)
class _Profile:
    """The mean profile of a window across one set of bars and its samples' noise (module docstring, step 5)."""

    values: np.ndarray
    sigma: float

    @classmethod
    def of(cls, block: np.ndarray, axis: int) -> _Profile:
        """Across bars alternating along ``axis`` of ``block`` (1: across the columns, vertical bars)."""
        along = 1 - axis
        halves = np.array_split(block, 2, axis=along)
        return cls(block.mean(axis=along), float(np.std(halves[0].mean(axis=along) - halves[1].mean(axis=along))) / 2.0)

    def snr(self, period: float) -> tuple[_Fit, float]:
        """The fit at ``1 / period`` and its amplitude over the amplitude's noise."""
        fit = _Fit.of(self.values, 1.0 / period)
        sigma = max(self.sigma, NOISE_FLOOR * abs(float(self.values.mean())), np.finfo(float).tiny)  # noise-free images
        return fit, fit.amplitude / (sigma * fit.noise_per_sigma)


def _windows(plane: np.ndarray, pixel_mm: float) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The ``(rows, columns)`` window of each quadrant (module docstring, steps 1–2)."""
    centre_row, centre_column, half_rows, half_columns = _field(plane, pixel_mm)
    windows = []
    for index, name in enumerate(QUADRANTS):
        rows = _window(centre_row, half_rows, after=index >= 2)
        columns = _window(centre_column, half_columns, after=index % 2 == 1)
        if min(rows[1] - rows[0], columns[1] - columns[0]) < MIN_WINDOW:
            size = f"{rows[1] - rows[0]}×{columns[1] - columns[0]}"
            raise InputError(None, f"the {name} quadrant's window is {size} pixels; bar measures need at least {MIN_WINDOW}")
        windows.append((rows, columns))
    return windows


def _measure(name: str, profile: _Profile, axis: int, period: float, pixel_mm: float, window: tuple[int, int, int, int]) -> QuadrantBars:
    fit, _ = profile.snr(period)
    if fit.level <= 0:
        raise InputError(None, f"the {name} quadrant holds no counts")
    modulation, noise = fit.amplitude / fit.level, profile.sigma * fit.noise_per_sigma / fit.level
    resolved = bool(modulation >= RESOLVED_SIGMAS * noise)
    direction = ("horizontal", "vertical")[axis]
    return QuadrantBars(name, direction, 0.5 * period * pixel_mm, bar_contrast(profile.values), modulation, noise, resolved, window)


def quadrant_bars(image: ArrayLike, pixel_mm: float, bar_widths_mm: tuple[float, ...] | None = None) -> list[QuadrantBars]:
    """The bars of each quadrant of a four-quadrant bar image (module docstring), in the order of :data:`QUADRANTS`.

    Args:
        image: ``(H, W)`` counts.
        pixel_mm: the (square) pixel size, mm.
        bar_widths_mm: the phantom's four bar widths, when known. Each quadrant is then measured at the frequency of
            its own width (period ``2w``), widths and directions being given to the quadrants so that the sum of the
            modulations' signal-to-noise ratios is the largest (each width once). Without them, each quadrant is
            measured at its strongest periodic component, which on a blurred or restored image may be structure that
            is not the phantom's (the field's edge, a restoration's ripple).

    Raises:
        InputError: not a finite planar image, no counts, a field too small for the windows, or not four positive widths.
    """
    plane = to_float64(image, "bar image").cpu().numpy()
    if plane.ndim != 2 or not np.isfinite(plane).all():
        raise InputError(None, f"bar measures need a finite planar (2-D) image, got shape {plane.shape}")
    if not (np.isfinite(pixel_mm) and pixel_mm > 0):
        raise InputError(None, f"the pixel size must be a finite number of mm > 0, got {pixel_mm!r}")
    if bar_widths_mm is not None and (len(bar_widths_mm) != 4 or not all(np.isfinite(w) and w > 0 for w in bar_widths_mm)):
        raise InputError(None, f"a four-quadrant bar phantom has four positive bar widths, got {list(bar_widths_mm)}")
    windows = _windows(plane, pixel_mm)
    profiles = [[_Profile.of(plane[rows[0] : rows[1], columns[0] : columns[1]], axis) for axis in (0, 1)] for rows, columns in windows]
    boxes = [(*rows, *columns) for rows, columns in windows]
    if bar_widths_mm is None:
        results = []
        for name, box, pair in zip(QUADRANTS, boxes, profiles, strict=True):
            found = [_fundamental(profile.values) for profile in pair]
            axis = int(np.argmax([amplitude for _, amplitude in found]))
            results.append(_measure(name, pair[axis], axis, found[axis][0], pixel_mm, box))
        return results
    periods = [2.0 * width / pixel_mm for width in bar_widths_mm]
    snr = np.array([[[profile.snr(period)[1] for period in periods] for profile in pair] for pair in profiles])  # (quadrant, axis, width)
    order = max(itertools.permutations(range(4)), key=lambda widths: sum(snr[q, :, widths[q]].max() for q in range(4)))
    results = []
    for quadrant, (name, box, pair) in enumerate(zip(QUADRANTS, boxes, profiles, strict=True)):
        axis = int(np.argmax(snr[quadrant, :, order[quadrant]]))
        results.append(_measure(name, pair[axis], axis, periods[order[quadrant]], pixel_mm, box))
    return results
