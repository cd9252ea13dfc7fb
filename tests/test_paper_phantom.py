"""Paper phantoms: printer tone curve, ink activity, the two acquisitions, timing rule,
activity conservation, cropping geometry, calibration, and a real brain slice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.random import make_generator
from medrestore.io import read_image
from medrestore.physics.gamma_camera import COLLIMATORS, CountLevel, isotope_by_name, system_resolution
from medrestore.physics.paper_phantom import (
    AcquisitionProtocol,
    InkRecipe,
    PaperPhantomConfig,
    PrinterModel,
    build_paper_phantom,
    ink_coverage,
    luminance,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# A small camera (128 × 2 mm high, 32 × 8 mm low) keeps the tests fast.
SMALL = PaperPhantomConfig(matrix=128, pixel_size_mm=2.0, scale=4)


def _disc_image(size: int = 64) -> torch.Tensor:
    """Grey disc with a bright square and a dark hole on a black background (0–255)."""
    rows, columns = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                                   indexing="ij")  # fmt: skip
    radius = torch.hypot(rows - size / 2 + 0.5, columns - size / 2 + 0.5)
    image = torch.where(radius < size * 0.4, 150.0, 0.0)
    image[size // 4 : size // 2, size // 4 : size // 2] = 255.0
    image[size // 2 + 4 : size // 2 + 10, size // 2 + 4 : size // 2 + 10] = 0.0
    return image


def test_tone_curve_dot_gain_and_polarity() -> None:
    ramp = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    coverage = ink_coverage(ramp, PrinterModel(dot_gain=0.15))
    np.testing.assert_allclose(coverage.numpy(), [[0.0, 0.25 + 0.6 * 0.25 * 0.75, 0.65, 1.0]], rtol=1e-12)
    positive = ink_coverage(ramp, PrinterModel(polarity="positive", dot_gain=0.0, gamma=2.0))
    np.testing.assert_allclose(positive.numpy(), [[1.0, 0.5625, 0.25, 0.0]], rtol=1e-12)
    clipped = ink_coverage(torch.tensor([[0.0, 1.0, 2.0, 100.0]]), PrinterModel(dot_gain=0.0, upper_percentile=50.0))
    assert clipped.tolist() == [[0.0, 2 / 3, 1.0, 1.0]]  # the 50th percentile is 1.5
    colour = torch.tensor([[[255.0, 0.0, 0.0], [0.0, 0.0, 255.0]]])
    np.testing.assert_allclose(luminance(colour).numpy(), [[0.299 * 255, 0.114 * 255]])
    with pytest.raises(InputError, match="constant"):
        ink_coverage(torch.full((4, 4), 3.0))
    with pytest.raises(ConfigError, match="dot_gain"):
        PrinterModel(dot_gain=0.3)


def test_ink_recipe_activity_per_area() -> None:
    ink = InkRecipe(solution_mbq_per_ml=370.0, radioactive_parts=1.0, black_ink_parts=2.0, ink_ul_per_cm2=0.5)
    assert ink.ink_mbq_per_ml == pytest.approx(370.0 / 3)
    # 123.3 MBq/mL × 0.5 µL/cm² = 61.7 kBq/cm² = 616.7 Bq/mm²
    assert ink.full_coverage_bq_per_mm2 == pytest.approx(616.6667, rel=1e-6)


def test_small_phantom_shapes_conservation_and_geometry() -> None:
    image = _disc_image(64)  # printed at 2 mm/pixel: 128 mm, centred in a 256-mm field
    phantom = build_paper_phantom(image, SMALL, make_generator(0))
    assert phantom.teacher.shape == (64, 64) and phantom.high.counts.shape == (64, 64)
    assert phantom.low.counts.shape == (16, 16) and phantom.teacher_counts is not None
    coverage_total = float(ink_coverage(image).sum())
    expected_activity = coverage_total * SMALL.ink.full_coverage_bq_per_mm2 * 2.0**2
    assert float(phantom.teacher.sum()) == pytest.approx(expected_activity, rel=1e-9)
    assert phantom.record["print"]["total_activity_bq"] == pytest.approx(expected_activity, rel=1e-9)
    assert phantom.high_origin_mm == pytest.approx((-63.0, -63.0))  # (32 + 0.5 − 64) × 2 mm
    assert phantom.low.pixel_size_mm == 8.0 and phantom.high.pixel_size_mm == 2.0
    assert phantom.record["crop_low_pixels"] == {"rows": [8, 24], "columns": [8, 24]}
    # the teacher on the aligned grid is the print itself
    torch.testing.assert_close(phantom.teacher, ink_coverage(image) * SMALL.ink.full_coverage_bq_per_mm2 * 4.0)
    for which, acquisition in (("low", phantom.low), ("high", phantom.high)):
        record = phantom.record[which]
        assert record["total_counts"] == float(acquisition.counts.sum()) <= record["field_total_counts"]
    # calibrated to the low acquisition: counts per high pixel, the low image's total
    assert float(phantom.teacher_counts.sum()) == pytest.approx(float(phantom.low.counts.sum()), rel=1e-9)


def test_timing_rule_extends_until_the_peak_is_reached() -> None:
    weak = PaperPhantomConfig(matrix=128, pixel_size_mm=2.0, scale=4, ink=InkRecipe(solution_mbq_per_ml=20.0))
    phantom = build_paper_phantom(_disc_image(64), weak, make_generator(1))
    assert len(phantom.record["high"]["stops"]) >= 2  # 10 minutes were not enough
    for which in ("low", "high"):
        record = phantom.record[which]
        times = [t for t, _ in record["stops"]]
        assert times[0] == 600.0 and all(b - a == 300.0 for a, b in zip(times, times[1:]))
        assert record["reached_minimum_peak"] and record["stops"][-1][1] >= 25
        assert all(peak < 25 for _, peak in record["stops"][:-1])
    # LEHR (less sensitive) on 2-mm pixels needs longer than LEGP on 8-mm pixels
    assert phantom.record["high"]["duration_s"] > phantom.record["low"]["duration_s"]
    lehr = system_resolution(COLLIMATORS["LEHR"], 100.0, isotope_by_name("Tc-99m"))
    assert phantom.record["high"]["system_resolution_mm"] == pytest.approx(lehr)


def test_explicit_counts_replace_the_timing_rule() -> None:
    config = PaperPhantomConfig(
        matrix=128, pixel_size_mm=2.0, low_counts=CountLevel(total_counts=5e4),
        high_counts=CountLevel(peak_counts=20.0), calibrate_to="none", crop_to_print=False,
    )  # fmt: skip
    phantom = build_paper_phantom(_disc_image(64), config, make_generator(2))
    assert phantom.low.counts.shape == (32, 32) and phantom.high.counts.shape == (128, 128)
    assert abs(float(phantom.low.counts.sum()) - 5e4) <= 5 * math.sqrt(5e4)
    assert 10 <= float(phantom.high.counts.max()) <= 45
    assert phantom.teacher_counts is None and "stops" not in phantom.record["low"]


def test_same_generator_seed_same_phantom() -> None:
    first = build_paper_phantom(_disc_image(32), SMALL, make_generator(4))
    second = build_paper_phantom(_disc_image(32), SMALL, make_generator(4))
    assert torch.equal(first.low.counts, second.low.counts) and torch.equal(first.high.counts, second.high.counts)
    third = build_paper_phantom(_disc_image(32), SMALL, make_generator(5))
    assert not torch.equal(first.high.counts, third.high.counts)


def test_print_larger_than_the_field_and_bad_configs_are_refused() -> None:
    with pytest.raises(InputError, match="larger than the field of view"):
        build_paper_phantom(_disc_image(64), PaperPhantomConfig(matrix=128, pixel_size_mm=0.67, print_size_mm=200.0),
                            make_generator(0))  # fmt: skip
    with pytest.raises(ConfigError, match="not a multiple of scale"):
        PaperPhantomConfig(matrix=100, scale=3)
    with pytest.raises(ConfigError, match="unknown collimator"):
        PaperPhantomConfig(collimator_high="XR")
    with pytest.raises(ConfigError, match="start_s"):
        AcquisitionProtocol(start_s=4000.0)
    with pytest.raises(InputError, match="2-D image"):
        build_paper_phantom(torch.ones(4, 4, 4, 4), SMALL, make_generator(0))


def test_real_brain_slice_phantom(shared_data: Path) -> None:
    image = read_image(shared_data / "brain-mri-ants" / "r16slice.jpg")
    phantom = build_paper_phantom(image.data, PaperPhantomConfig(), make_generator(0))
    # 256 pixels printed at 0.67 mm: the seed's 512 × 0.67-mm field, ×4 pairs 64 → 256
    assert phantom.teacher.shape == (256, 256) and phantom.high.counts.shape == (256, 256)
    assert phantom.low.counts.shape == (64, 64)
    for which in ("low", "high"):
        assert phantom.record[which]["reached_minimum_peak"] and phantom.record[which]["peak_counts"] >= 25
    # nothing spills outside the cropped print at these resolutions (the background is black)
    expected_rate = phantom.record["high"]["expected_rate_cps"]
    sensitivity = phantom.record["high"]["sensitivity_cps_per_bq"]
    assert expected_rate == pytest.approx(float(phantom.teacher.sum()) * sensitivity, rel=1e-6)
    # the high-resolution acquisition resembles the teacher (blur and noise aside)
    teacher = phantom.teacher.numpy()
    high_corr = np.corrcoef(teacher.ravel(), phantom.high.counts.numpy().ravel())[0, 1]
    assert high_corr > 0.8
    assert float(phantom.teacher_counts.sum()) == pytest.approx(float(phantom.low.counts.sum()), rel=1e-9)
