"""Four-quadrant bar images (``medrestore.metrics.nema_bars``, ``medrestore nema bars``): bar widths, directions and
modulation against the phantom that made them and against the closed form of a sinusoidal pattern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import medrestore
from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.core.image import Image, affine_from_spacing
from medrestore.data.nm_phantoms import QUADRANT_BAR_AXES, quadrant_bar_phantom
from medrestore.io import write_image
from medrestore.metrics.nema_bars import QUADRANTS, quadrant_bars
from medrestore.physics.blur import gaussian_blur

DIRECTIONS = ["vertical" if axis == 1 else "horizontal" for axis in QUADRANT_BAR_AXES]


def bar_image(widths: tuple[float, ...], pixel_mm: float, blur_mm: float, counts: float | None, seed: int = 0) -> np.ndarray:
    """A flood through the quadrant bars of ``widths`` (a 512-mm field), blurred, with ``counts`` Poisson counts
    (``None``: the noise-free expectation scaled to 10⁷)."""
    size = int(round(512 / pixel_mm))
    activity = torch.from_numpy(quadrant_bar_phantom(size, pixel_mm, widths))
    expected = gaussian_blur(activity, fwhm=blur_mm / pixel_mm).numpy()
    expected *= (counts or 1e7) / expected.sum()
    return expected if counts is None else np.random.default_rng(seed).poisson(expected).astype(np.float64)


@pytest.mark.parametrize(("widths", "pixel_mm"), [((2.5, 3.0, 3.5, 4.0), 0.5), ((3.2, 4.0, 4.8, 6.4), 1.0)])
def test_widths_directions_and_modulation_of_a_phantom(widths: tuple[float, ...], pixel_mm: float) -> None:
    noisy = quadrant_bars(bar_image(widths, pixel_mm, 3.0, 2e7), pixel_mm)
    clean = quadrant_bars(bar_image(widths, pixel_mm, 3.0, None), pixel_mm)
    assert [bars.quadrant for bars in noisy] == list(QUADRANTS)
    assert [bars.bars_run for bars in noisy] == DIRECTIONS
    assert [bars.bar_width_mm for bars in noisy] == pytest.approx(widths, rel=0.01)
    assert all(bars.resolved for bars in noisy)
    for measured, truth in zip(noisy, clean, strict=True):  # the noise moves the modulation by a few of its own σ
        assert abs(measured.modulation - truth.modulation) <= 5 * measured.noise_modulation + 1e-3
    assert [bars.modulation for bars in clean] == sorted(bars.modulation for bars in clean)  # wider bars, more contrast


def test_the_modulation_of_a_sinusoidal_pattern_is_its_closed_form() -> None:
    """``a + b sin(2πx/T)`` in every quadrant (T = 2w): modulation ``b / a`` and width ``T / 2``."""
    size, pixel = 256, 1.0
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.zeros((size, size))
    depths = (0.1, 0.3, 0.5, 0.7)
    for quadrant, (width, depth, axis) in enumerate(zip((3.0, 4.0, 5.0, 7.0), depths, QUADRANT_BAR_AXES, strict=True)):
        x = columns if axis == 1 else rows
        pattern = 100.0 * (1 + depth * np.sin(2 * np.pi * x / (2 * width)))
        top, left = (quadrant // 2) * size // 2, (quadrant % 2) * size // 2
        image[top : top + size // 2, left : left + size // 2] = pattern[top : top + size // 2, left : left + size // 2]
    found = quadrant_bars(image, pixel)
    assert [bars.bar_width_mm for bars in found] == pytest.approx([3.0, 4.0, 5.0, 7.0], rel=0.005)
    assert [bars.modulation for bars in found] == pytest.approx(depths, rel=0.02)
    given = quadrant_bars(image, pixel, (7.0, 3.0, 5.0, 4.0))  # any order: each quadrant gets its own width
    assert [bars.bar_width_mm for bars in given] == pytest.approx([3.0, 4.0, 5.0, 7.0])
    assert [bars.modulation for bars in given] == pytest.approx(depths, rel=0.02)


def test_bars_blurred_away_and_a_flood_are_not_resolved() -> None:
    """Bars of 2–3.5 mm under a 12-mm blur, and a flat Poisson flood: noise alone never passes the 5σ test."""
    blurred = quadrant_bars(bar_image((2.0, 2.5, 3.0, 3.5), 1.0, 12.0, 5e6), 1.0, (2.0, 2.5, 3.0, 3.5))
    assert not any(bars.resolved for bars in blurred)
    assert max(bars.modulation for bars in blurred) < 0.01
    flood = bar_image((2.0, 2.5, 3.0, 3.5), 1.0, 60.0, 5e6, seed=3)
    for seed in range(3):
        flat = np.random.default_rng(seed).poisson(np.where(flood > 0, 30.0, 0.0)).astype(np.float64)
        assert not any(bars.resolved for bars in quadrant_bars(flat, 1.0, (2.0, 2.5, 3.0, 3.5)))


def test_bad_bar_inputs_are_refused() -> None:
    image = bar_image((3.2, 4.0, 4.8, 6.4), 1.0, 3.0, 1e6)
    with pytest.raises(InputError, match="four positive bar widths"):
        quadrant_bars(image, 1.0, (3.2, 4.0, 4.8))
    with pytest.raises(InputError, match="holds no counts"):
        quadrant_bars(np.zeros((64, 64)), 1.0)
    with pytest.raises(InputError, match="bar measures need at least 12"):
        quadrant_bars(np.ones((20, 20)), 1.0)
    with pytest.raises(InputError, match="pixel size"):
        quadrant_bars(image, 0.0)


def test_the_command_reports_each_quadrant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    widths = (3.2, 4.0, 4.8, 6.4)
    image = bar_image(widths, 1.0, 3.5, 5e6).astype(np.float32)
    path = write_image(Image(image, affine_from_spacing((1.0, 1.0)), 2, "nm", {}), tmp_path / "bars.nii.gz")
    assert main(["nema", "bars", str(path), "--widths", *map(str, widths)]) == 0
    text = capsys.readouterr().out
    assert "top-left      vertical           3.20" in text and text.count(" yes") == 4
    assert main(["nema", "bars", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["measure"] == "bars" and record["bar_widths_mm"] is None
    assert [bars["bar_width_mm"] for bars in record["quadrants"]] == pytest.approx(widths, rel=0.01)
    result = medrestore.nema(path, "bars", bar_widths_mm=widths)
    assert [bars["bars_run"] for bars in result.output["quadrants"]] == DIRECTIONS
    assert main(["nema", "flood", str(path), "--widths", *map(str, widths)]) == 2
    assert "--widths applies to nema bars, not flood" in capsys.readouterr().err
