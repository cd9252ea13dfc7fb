"""Count calibration of a teacher image against a measured gamma-camera image.

A teacher (the printed original, or a simulated activity map) has arbitrary units; the
measured image is in counts. Following the paper-phantom study, the teacher is brought to
counts in three steps (:func:`calibrate_teacher`):

1. **Look-up table** (:func:`fit_count_lut`). The teacher is resampled to the measured grid
   (mean of each ``k × k`` block, ``k`` = teacher / measured size). Its values are binned
   (``bins`` equal-width bins between its minimum and maximum); in each non-empty bin the
   mean teacher value ``t_b`` and the mean measured count ``m_b`` are taken with the pixel
   count ``n_b`` as weight. The points are made non-decreasing by weighted isotonic regression
   (pool-adjacent-violators; Barlow et al., *Statistical Inference under Order
   Restrictions*, Wiley 1972), and the LUT interpolates them linearly (constant beyond the
   end points). Applied to the teacher's own pixels it gives counts per *measured* pixel,
   divided by ``k²`` to give counts per teacher pixel.
2. **Mean and standard deviation matching** (:func:`match_moments`): an affine map
   ``y = (x − μ_x)·σ_target/σ_x + μ_target`` computed on the measured grid (block sums) and
   applied to every teacher pixel. ``std_target="measured"`` matches the measured standard
   deviation as the study did; ``"poisson-corrected"`` subtracts the Poisson variance
   (``Var[counts] = mean``), so the teacher is not stretched to imitate noise.
3. **Total counts** (:func:`preserve_total_counts`): negative values (possible after step 2)
   are clipped to 0 and the image is rescaled so that ``Σ teacher_counts = Σ measured``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from medrestore.core.errors import ConfigError, InputError

STD_TARGETS = ("measured", "poisson-corrected")


def preserve_total_counts(image: torch.Tensor, reference_total: float) -> torch.Tensor:
    """``image · reference_total / Σ image``: the same image holding ``reference_total`` counts.

    Raises:
        InputError: ``image`` sums to zero (or is not finite), so no scale can fix its total.
    """
    total = float(image.sum())
    if not math.isfinite(total) or total <= 0:
        raise InputError(None, f"cannot rescale an image whose total is {total!r} to {reference_total!r} counts")
    if not math.isfinite(float(reference_total)) or reference_total < 0:
        raise ConfigError(f"reference total counts must be a finite number >= 0, got {reference_total!r}")
    return image * (float(reference_total) / total)


def block_mean(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean of each ``factor × factor`` block of the last two axes (the teacher on the measured grid)."""
    height, width = x.shape[-2] // factor, x.shape[-1] // factor
    blocks = x[..., : height * factor, : width * factor].reshape(*x.shape[:-2], height, factor, width, factor)
    return blocks.mean(dim=(-3, -1))


def isotonic_regression(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``values`` (pool-adjacent-violators).

    Minimises ``Σ w_b (y_b − v_b)²`` subject to ``y_1 <= y_2 <= ...``; O(n).
    """
    means: list[float] = []
    masses: list[float] = []
    lengths: list[int] = []
    for value, weight in zip(np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64), strict=True):
        means.append(float(value))
        masses.append(float(weight))
        lengths.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            mass = masses[-2] + masses[-1]
            means[-2] = (means[-2] * masses[-2] + means[-1] * masses[-1]) / mass
            masses[-2] = mass
            lengths[-2] += lengths[-1]
            del means[-1], masses[-1], lengths[-1]
    return np.repeat(np.asarray(means), lengths)


@dataclasses.dataclass(frozen=True)
class CountLUT:
    """A monotone piecewise-linear look-up table from teacher values to counts.

    Attributes:
        teacher_values: increasing abscissae (teacher units).
        counts: non-decreasing counts per measured pixel at those values.
    """

    teacher_values: tuple[float, ...]
    counts: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.teacher_values or len(self.teacher_values) != len(self.counts):
            raise ConfigError("a count LUT needs as many counts as teacher values, at least one")
        if any(b <= a for a, b in zip(self.teacher_values, self.teacher_values[1:])):
            raise ConfigError("LUT teacher values must increase strictly")
        if any(b < a for a, b in zip(self.counts, self.counts[1:])):
            raise ConfigError("LUT counts must not decrease")

    def __call__(self, teacher: torch.Tensor) -> torch.Tensor:
        """Linear interpolation (constant outside the table), same shape and dtype as ``teacher``."""
        source = teacher.detach().cpu().numpy().astype(np.float64)
        mapped = np.interp(source, np.asarray(self.teacher_values), np.asarray(self.counts))
        return torch.from_numpy(mapped).to(dtype=teacher.dtype, device=teacher.device)

    def record(self) -> dict[str, list[float]]:
        return {"teacher_values": list(self.teacher_values), "counts": list(self.counts)}


def fit_count_lut(teacher: torch.Tensor, measured: torch.Tensor, bins: int = 64) -> CountLUT:
    """The monotone LUT ``teacher value → mean measured counts`` from pixel pairs (module docstring, step 1).

    Args:
        teacher: teacher values on the measured grid, any shape.
        measured: measured counts of the same shape.
        bins: number of equal-width teacher-value bins (>= 2).
    """
    if teacher.shape != measured.shape:
        raise InputError(None, f"teacher {tuple(teacher.shape)} and measured {tuple(measured.shape)} differ in shape")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ConfigError(f"bins must be an integer >= 2, got {bins!r}")
    values = teacher.detach().cpu().double().numpy().ravel()
    counts = measured.detach().cpu().double().numpy().ravel()
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(counts))):
        raise InputError(None, "teacher and measured images must be finite")
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return CountLUT((low,), (float(counts.mean()),))
    index = np.minimum(((values - low) / (high - low) * bins).astype(np.int64), bins - 1)
    population = np.bincount(index, minlength=bins).astype(np.float64)
    occupied = population > 0
    mean_values = np.bincount(index, weights=values, minlength=bins)[occupied] / population[occupied]
    mean_counts = np.bincount(index, weights=counts, minlength=bins)[occupied] / population[occupied]
    monotone = isotonic_regression(mean_counts, population[occupied])
    return CountLUT(tuple(float(v) for v in mean_values), tuple(float(c) for c in monotone))


def match_moments(
    x: torch.Tensor, source_mean: float, source_std: float, target_mean: float, target_std: float
) -> torch.Tensor:
    """``(x − source_mean) · target_std / source_std + target_mean``; only the mean moves when ``source_std = 0``."""
    ratio = target_std / source_std if source_std > 0 else 1.0
    return (x - source_mean) * ratio + target_mean


@dataclasses.dataclass(frozen=True)
class CalibrationConfig:
    """Options of :func:`calibrate_teacher`.

    Attributes:
        bins: teacher-value bins of the LUT.
        match_moments: apply the mean / standard-deviation matching after the LUT.
        std_target: ``"measured"`` (the study's choice) or ``"poisson-corrected"``.
        preserve_total: clip negatives and rescale to the measured total.
    """

    bins: int = 64
    match_moments: bool = True
    std_target: str = "measured"
    preserve_total: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigError(f"bins must be an integer >= 2, got {self.bins!r}")
        if self.std_target not in STD_TARGETS:
            raise ConfigError(f"std_target must be one of {STD_TARGETS}, got {self.std_target!r}")


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate_teacher`: the teacher in counts per teacher pixel, the LUT and a record."""

    teacher_counts: torch.Tensor
    lut: CountLUT
    factor: int
    record: dict[str, Any]


def grid_factor(teacher_shape: tuple[int, ...], measured_shape: tuple[int, ...]) -> int:
    """The integer ``k`` with ``teacher = k × measured`` on both of the last two axes."""
    (fine_rows, fine_columns), (rows, columns) = teacher_shape[-2:], measured_shape[-2:]
    divisible = min(rows, columns) >= 1 and fine_rows % rows == 0 and fine_columns % columns == 0
    if not divisible or fine_rows // rows != fine_columns // columns:
        grids = f"teacher {(fine_rows, fine_columns)} must be the measured grid {(rows, columns)}"
        raise InputError(None, f"{grids} times one integer on both axes")
    return fine_rows // rows


def _target_std(measured: torch.Tensor, std_target: str) -> float:
    variance = float(measured.double().var(unbiased=False))
    if std_target == "poisson-corrected":
        variance = max(variance - float(measured.double().mean()), 0.0)
    return math.sqrt(variance)


def calibrate_teacher(
    teacher: torch.Tensor, measured: torch.Tensor, config: CalibrationConfig = CalibrationConfig()
) -> Calibration:
    """Teacher in counts: LUT, then mean/std matching, then the measured total (module docstring).

    Args:
        teacher: float tensor ``(H, W)`` (any units), on a grid ``k`` times finer than ``measured``.
        measured: counts ``(H/k, W/k)``, non-negative.
        config: :class:`CalibrationConfig`.

    Returns:
        :class:`Calibration` whose ``teacher_counts`` (``(H, W)``, float64) holds counts per
        teacher pixel; ``Σ teacher_counts = Σ measured`` when ``preserve_total``.
    """
    if teacher.ndim != 2 or measured.ndim != 2:
        raise InputError(None, f"calibration needs 2-D images, got {tuple(teacher.shape)} and {tuple(measured.shape)}")
    if measured.numel() and float(measured.min()) < 0:
        raise InputError(None, "measured counts must be non-negative")
    factor = grid_factor(tuple(teacher.shape), tuple(measured.shape))
    teacher64, measured64 = teacher.detach().double(), measured.detach().double()
    lut = fit_count_lut(block_mean(teacher64, factor), measured64, config.bins)
    calibrated = lut(teacher64) / factor**2
    record: dict[str, Any] = {"factor": factor, "lut": lut.record(), **dataclasses.asdict(config)}
    if config.match_moments:
        binned = calibrated.reshape(measured.shape[0], factor, measured.shape[1], factor).sum(dim=(1, 3))
        source_mean, source_std = float(binned.mean()), float(binned.std(unbiased=False))
        target_mean, target_std = float(measured64.mean()), _target_std(measured64, config.std_target)
        calibrated = match_moments(
            calibrated, source_mean / factor**2, source_std, target_mean / factor**2, target_std
        )
        record["moments"] = {"source_mean": source_mean, "source_std": source_std,
                             "target_mean": target_mean, "target_std": target_std}  # fmt: skip
    if config.preserve_total:
        calibrated = preserve_total_counts(calibrated.clamp(min=0.0), float(measured64.sum()))
    record["total_counts"] = float(calibrated.sum())
    record["measured_total_counts"] = float(measured64.sum())
    return Calibration(calibrated, lut, factor, record)
