"""Paper phantoms: an image printed with radioactive ink and imaged by a gamma camera.

The paper-phantom study mixed a Tc-99m solution into the black ink of an inkjet printer
(radioactive solution : black ink = 1 : 2), printed CT, MRI and natural images in monochrome,
and imaged the prints on a Siemens e.cam (matrix 512 × 512, zoom 1.78 → 0.67 mm/pixel),
acquiring from 10 minutes on and extending the acquisition until the maximum pixel held at
least 25 counts. This module simulates that chain (:func:`build_paper_phantom`):

1. **Printing** (:func:`ink_coverage`). The image (colour → luma ``0.299 R + 0.587 G + 0.114 B``)
   is normalised to ``[0, 1]`` between two percentiles. ``polarity="negative"`` prints the
   negative, so *bright* pixels receive ink and the phantom's activity follows the image's
   brightness (hot = bright, as a scintigram is displayed); ``"positive"`` prints the image as
   it is (ink where the image is dark). The printer's tone reproduction maps the requested
   darkness ``d`` to the inked area fraction ``c``: a transfer curve ``a = d^γ`` followed by
   mid-tone dot gain ``c = a + 4·G·a·(1 − a)`` (``G`` = gain at a 50 % tint, ``0 <= G <= 0.25``
   keeps the curve monotone).
2. **Ink activity** (:class:`InkRecipe`). Activity per unit area at full coverage is
   ``A_full = C_solution · p_RI / (p_RI + p_black) · V_ink`` (``V_ink`` = ink volume laid per
   area at 100 % black); a pixel of area ``Δ²`` holds ``c · A_full · Δ²`` Bq. Paper carries
   no activity.
3. **Print geometry**: the image is printed with pixel side ``print_size / max(H, W)``,
   centred in the camera's field of view (``matrix × pixel_size``).
4. **Two acquisitions** of the same print (:mod:`~medrestore.physics.gamma_camera`): the
   *low*-resolution one with ``collimator_low`` on a matrix ``scale`` times coarser, the
   *high*-resolution one with ``collimator_high`` on ``matrix × pixel_size``. Counts follow
   the study's timing rule (:func:`~medrestore.physics.gamma_camera.acquire_until_peak`) or
   an explicit :class:`~medrestore.physics.gamma_camera.CountLevel`.
5. **Teacher**: the ink activity on the high-resolution grid (Bq per pixel, no blur, no
   noise), and its count calibration against the low-resolution acquisition
   (:func:`~medrestore.physics.calibration.calibrate_teacher`).

All outputs are cropped to the print (rounded out to whole low-resolution pixels) unless
``crop_to_print`` is off. The ink recipe's defaults (370 MBq/mL solution, 0.5 µL/cm² of ink
at full black) are illustrative, to be replaced by a printer's own figures: they put about
0.62 kBq/mm² on a fully inked area, which brings a broad dark region to ≈ 15 counts per
0.67-mm LEHR pixel in 10 minutes at 10 cm, so the high-resolution acquisition is usually
extended, as in the study.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.physics.blur import FWHM_PER_SIGMA
from medrestore.physics.calibration import CalibrationConfig, calibrate_teacher
from medrestore.physics.gamma_camera import (
    CameraHead,
    CountLevel,
    PlanarAcquisition,
    acquire_until_peak,
    area_resample,
    bin_counts,
    detector_response,
    expected_counts,
    isotope_by_name,
)

POLARITIES = ("negative", "positive")
CALIBRATION_TARGETS = ("low", "high", "none")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _positive(owner: str, name: str, value: float, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{owner}: {name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{owner}: {name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class PrinterModel:
    """Normalisation, polarity and tone reproduction of the printer (module docstring, step 1)."""

    polarity: str = "negative"
    gamma: float = 1.0
    dot_gain: float = 0.15
    lower_percentile: float = 0.0
    upper_percentile: float = 100.0

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ConfigError(f"printer: polarity must be one of {POLARITIES}, got {self.polarity!r}")
        _positive("printer", "gamma", self.gamma)
        if not 0 <= self.dot_gain <= 0.25:
            raise ConfigError(f"printer: dot_gain must be in [0, 0.25] (monotone tone curve), got {self.dot_gain!r}")
        if not 0 <= self.lower_percentile < self.upper_percentile <= 100:
            raise ConfigError("printer: need 0 <= lower_percentile < upper_percentile <= 100")


@dataclasses.dataclass(frozen=True)
class InkRecipe:
    """Radioactive ink: solution concentration, mixing parts and ink laid per area at full black."""

    solution_mbq_per_ml: float = 370.0
    radioactive_parts: float = 1.0
    black_ink_parts: float = 2.0
    ink_ul_per_cm2: float = 0.5

    def __post_init__(self) -> None:
        _positive("ink", "solution_mbq_per_ml", self.solution_mbq_per_ml)
        _positive("ink", "radioactive_parts", self.radioactive_parts)
        _positive("ink", "black_ink_parts", self.black_ink_parts, allow_zero=True)
        _positive("ink", "ink_ul_per_cm2", self.ink_ul_per_cm2)

    @property
    def ink_mbq_per_ml(self) -> float:
        """Activity concentration of the mixed ink: ``C · p_RI / (p_RI + p_black)``."""
        return self.solution_mbq_per_ml * self.radioactive_parts / (self.radioactive_parts + self.black_ink_parts)

    @property
    def full_coverage_bq_per_mm2(self) -> float:
        """``A_full``: Bq per mm² of fully inked paper (1 µL/cm² = 10⁻⁵ mL/mm²)."""
        return self.ink_mbq_per_ml * 1e6 * self.ink_ul_per_cm2 * 1e-5


@dataclasses.dataclass(frozen=True)
class AcquisitionProtocol:
    """The study's timing rule: first stop, extension step and limit (s), and the peak to reach."""

    minimum_peak_counts: float = 25.0
    start_s: float = 600.0
    step_s: float = 300.0
    maximum_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("minimum_peak_counts", "start_s", "step_s", "maximum_s"):
            _positive("protocol", name, getattr(self, name))
        if self.start_s > self.maximum_s:
            raise ConfigError("protocol: start_s must not exceed maximum_s")


@dataclasses.dataclass(frozen=True)
class PaperPhantomConfig:
    """Everything that defines a paper phantom and its two acquisitions (module docstring).

    ``low_counts``/``high_counts`` replace the timing rule by an explicit count level.
    ``calibrate_to`` selects the acquisition the teacher is calibrated against.
    """

    collimator_low: str = "LEGP"
    collimator_high: str = "LEHR"
    scale: int = 4
    matrix: int = 512
    pixel_size_mm: float = 0.67
    print_size_mm: float | None = None
    distance_mm: float = 100.0
    isotope: str = "Tc-99m"
    scatter_fraction: float = 0.0
    printer: PrinterModel = PrinterModel()
    ink: InkRecipe = InkRecipe()
    protocol: AcquisitionProtocol = AcquisitionProtocol()
    low_counts: CountLevel | None = None
    high_counts: CountLevel | None = None
    crop_to_print: bool = True
    calibrate_to: str = "low"
    calibration: CalibrationConfig = CalibrationConfig()
    head: CameraHead = CameraHead()

    def __post_init__(self) -> None:
        for name in ("scale", "matrix"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"phantom: {name} must be an integer >= 1, got {value!r}")
        if self.matrix % self.scale:
            raise ConfigError(f"phantom: matrix {self.matrix} is not a multiple of scale {self.scale}")
        _positive("phantom", "pixel_size_mm", self.pixel_size_mm)
        if self.print_size_mm is not None:
            _positive("phantom", "print_size_mm", self.print_size_mm)
        if self.calibrate_to not in CALIBRATION_TARGETS:
            raise ConfigError(f"phantom: calibrate_to must be one of {CALIBRATION_TARGETS}, got {self.calibrate_to!r}")
        for which in ("low", "high"):
            self.acquisition(which)  # validates collimators, isotope, distance and scatter

    def acquisition(self, which: str) -> PlanarAcquisition:
        """The :class:`PlanarAcquisition` of the ``"low"`` or ``"high"`` resolution image."""
        collimator = self.collimator_low if which == "low" else self.collimator_high
        return PlanarAcquisition(collimator, self.isotope, self.distance_mm, self.scatter_fraction, head=self.head)

    def camera_pixel_mm(self, which: str) -> float:
        return self.pixel_size_mm * (self.scale if which == "low" else 1)

    def camera_matrix(self, which: str) -> int:
        return self.matrix // (self.scale if which == "low" else 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` as float64, or the luma of ``(H, W, 3|4)`` colour (alpha ignored)."""
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64, device=image.device)
        return image[..., :3].double() @ weights
    if image.ndim != 2:
        shape = tuple(image.shape)
        raise InputError(None, f"a paper phantom is printed from a 2-D image (or H×W×3 colour), got {shape}")
    return image.double()


def ink_coverage(image: torch.Tensor, printer: PrinterModel = PrinterModel()) -> torch.Tensor:
    """Inked area fraction ``c ∈ [0, 1]`` per image pixel (module docstring, step 1), float64."""
    values = luminance(image)
    if not bool(torch.isfinite(values).all()):
        raise InputError(None, "the image holds NaN or infinite values")
    flat = values.flatten().cpu().numpy()
    low, high = np.percentile(flat, [printer.lower_percentile, printer.upper_percentile])
    if not high > low:
        raise InputError(None, "the image is constant between the chosen percentiles; there is nothing to print")
    brightness = ((values - float(low)) / float(high - low)).clamp(0.0, 1.0)
    darkness = brightness if printer.polarity == "negative" else 1.0 - brightness
    tone = darkness**printer.gamma
    return (tone + 4.0 * printer.dot_gain * tone * (1.0 - tone)).clamp(0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class PhantomAcquisition:
    """One acquisition of the print: counts on its camera grid and how they were obtained."""

    counts: torch.Tensor
    pixel_size_mm: float
    record: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class PaperPhantom:
    """A paper phantom and its paired acquisitions (all cropped alike).

    Attributes:
        coverage: inked area fraction on the print grid ``(H, W)``.
        teacher: ink activity in Bq per high-resolution pixel ``(k·h, k·w)``, float64.
        teacher_counts: the teacher calibrated to counts (None when ``calibrate_to="none"``).
        low, high: the two acquisitions (``(h, w)`` and ``(k·h, k·w)`` counts); their records
            hold the timing (``stops``: ``[time_s, measured maximum]`` of the whole field of
            view) and the totals of the kept and of the whole field.
        high_origin_mm: centre of the first high-resolution pixel (row, column), in mm from
            the centre of the field of view.
        record: every parameter and outcome, JSON-ready.
    """

    coverage: torch.Tensor
    teacher: torch.Tensor
    teacher_counts: torch.Tensor | None
    low: PhantomAcquisition
    high: PhantomAcquisition
    high_origin_mm: tuple[float, float]
    record: dict[str, Any]


def _fine_subdivision(camera_pixel_mm: float, print_pixel_mm: float, resolution_mm: float) -> int:
    """Sub-pixels per camera pixel: fine enough for the print and for a quarter of the PSF's σ."""
    needed = max(print_pixel_mm, resolution_mm / FWHM_PER_SIGMA / 4.0)
    return max(1, math.ceil(camera_pixel_mm / needed - 1e-9))


def _acquire(
    activity: torch.Tensor, print_pixel_mm: float, config: PaperPhantomConfig, which: str, generator: torch.Generator
) -> PhantomAcquisition:
    """Image the print (Bq per print pixel) with the ``which`` camera over its whole field of view."""
    acquisition = config.acquisition(which)
    pixel, matrix = config.camera_pixel_mm(which), config.camera_matrix(which)
    subdivision = _fine_subdivision(pixel, print_pixel_mm, acquisition.resolution_mm)
    fine = area_resample(activity, print_pixel_mm, (matrix * subdivision,) * 2, pixel / subdivision)
    rate = bin_counts(detector_response(fine, pixel / subdivision, acquisition), subdivision)
    half_life = isotope_by_name(config.isotope).half_life_s
    level = config.low_counts if which == "low" else config.high_counts
    record: dict[str, Any] = {
        "collimator": acquisition.collimator, "matrix": matrix, "pixel_size_mm": pixel,
        "system_resolution_mm": acquisition.resolution_mm, "sensitivity_cps_per_bq": acquisition.sensitivity,
        "within_energy_rating": acquisition.within_energy_rating, "subdivision": subdivision,
        "expected_rate_cps": float(rate.sum()),
    }  # fmt: skip
    if level is not None:
        counts = torch.poisson(expected_counts(rate, level, half_life), generator=generator)
        record["count_level"] = dataclasses.asdict(level)
    else:
        protocol = config.protocol
        timed = acquire_until_peak(
            rate, half_life, protocol.minimum_peak_counts, protocol.start_s, protocol.step_s, protocol.maximum_s,
            generator,
        )  # fmt: skip
        counts = timed.counts
        stops = [list(stop) for stop in timed.stops]
        record.update(duration_s=timed.duration_s, reached_minimum_peak=timed.reached, stops=stops)
    record.update(field_total_counts=float(counts.sum()), field_peak_counts=float(counts.max()))
    return PhantomAcquisition(counts, pixel, record)


def _cropped(acquisition: PhantomAcquisition, crop: tuple[slice, slice]) -> PhantomAcquisition:
    """The acquisition cut to ``crop``; ``total_counts``/``peak_counts`` describe what is kept."""
    counts = acquisition.counts[crop].contiguous()
    record = {**acquisition.record, "total_counts": float(counts.sum()), "peak_counts": float(counts.max())}
    return PhantomAcquisition(counts, acquisition.pixel_size_mm, record)


def _crop_range(extent_mm: float, low_pixel_mm: float, low_matrix: int) -> tuple[int, int]:
    """Low-resolution pixel indices ``[start, stop)`` covering a centred extent."""
    offset = low_matrix / 2.0
    start = math.floor(-extent_mm / 2.0 / low_pixel_mm + offset + 1e-9)
    stop = math.ceil(extent_mm / 2.0 / low_pixel_mm + offset - 1e-9)
    return max(0, start), min(low_matrix, stop)


def _crop_ranges(height_mm: float, width_mm: float, config: PaperPhantomConfig) -> tuple[tuple[int, int], ...]:
    """Low-resolution row and column ranges kept: the print's, or the whole field of view."""
    low_pixel, low_matrix = config.camera_pixel_mm("low"), config.camera_matrix("low")
    if not config.crop_to_print:
        return (0, low_matrix), (0, low_matrix)
    return _crop_range(height_mm, low_pixel, low_matrix), _crop_range(width_mm, low_pixel, low_matrix)


def build_paper_phantom(
    image: torch.Tensor, config: PaperPhantomConfig, generator: torch.Generator
) -> PaperPhantom:
    """Print ``image`` with radioactive ink and acquire it twice (module docstring).

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3|4)`` colour values, any units.
        config: the phantom, printer, ink, cameras and protocol.
        generator: source of all randomness (low acquisition first, then high).

    Returns:
        :class:`PaperPhantom`.

    Raises:
        InputError: the image is not 2-D, not finite or constant, or the print does not fit
            the field of view.
    """
    coverage = ink_coverage(image, config.printer)
    height, width = coverage.shape
    print_pixel = (config.print_size_mm / max(height, width)) if config.print_size_mm else config.pixel_size_mm
    field = config.matrix * config.pixel_size_mm
    if max(height, width) * print_pixel > field + 1e-9:
        size = max(height, width) * print_pixel
        raise InputError(None, f"the print ({size:.1f} mm) is larger than the field of view ({field:.1f} mm)")
    activity = coverage * (config.ink.full_coverage_bq_per_mm2 * print_pixel**2)
    low = _acquire(activity, print_pixel, config, "low", generator)
    high = _acquire(activity, print_pixel, config, "high", generator)
    teacher = area_resample(activity, print_pixel, (config.matrix,) * 2, config.pixel_size_mm)
    k = config.scale
    rows, columns = _crop_ranges(height * print_pixel, width * print_pixel, config)
    crop_low = (slice(*rows), slice(*columns))
    crop_high = (slice(rows[0] * k, rows[1] * k), slice(columns[0] * k, columns[1] * k))
    low, high = _cropped(low, crop_low), _cropped(high, crop_high)
    teacher = teacher[crop_high].contiguous()
    teacher_counts, calibration_record = _calibrate(teacher, low, high, config)
    origin = tuple((start * k + 0.5 - config.matrix / 2.0) * config.pixel_size_mm for start in (rows[0], columns[0]))
    record = {
        "config": dataclasses.asdict(config),
        "image_shape": [height, width],
        "print": {"pixel_size_mm": print_pixel, "size_mm": [height * print_pixel, width * print_pixel],
                  "full_coverage_bq_per_mm2": config.ink.full_coverage_bq_per_mm2,
                  "total_activity_bq": float(activity.sum())},
        "crop_low_pixels": {"rows": list(rows), "columns": list(columns)},
        "high_origin_mm": list(origin), "teacher_units": "Bq per high-resolution pixel",
        "teacher_total_activity_bq": float(teacher.sum()),
        "low": low.record, "high": high.record, "calibration": calibration_record,
    }  # fmt: skip
    return PaperPhantom(coverage, teacher, teacher_counts, low, high, (origin[0], origin[1]), record)


def _calibrate(
    teacher: torch.Tensor, low: PhantomAcquisition, high: PhantomAcquisition, config: PaperPhantomConfig
) -> tuple[torch.Tensor | None, dict[str, Any] | None]:
    """The teacher calibrated to the chosen acquisition's counts, and the calibration record."""
    if config.calibrate_to == "none":
        return None, None
    measured = low.counts if config.calibrate_to == "low" else high.counts
    calibration = calibrate_teacher(teacher, measured, config.calibration)
    return calibration.teacher_counts, {"target": config.calibrate_to, **calibration.record}
