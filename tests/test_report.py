"""HTML report and comparison figures."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image as PILImage

from medrestore.report import Figure, Report, ReportSection, save_comparison_png, to_display_uint8, write_report


def test_display_window_maps_percentiles_to_full_range() -> None:
    ramp = np.linspace(0.0, 1.0, 1001).reshape(1, -1).repeat(3, axis=0)
    display = to_display_uint8(ramp)
    assert display.dtype == np.uint8 and display.min() == 0 and display.max() == 255
    assert to_display_uint8(ramp, 0.0, 1.0)[0, 500] == 128


def test_comparison_png_and_report(tmp_path) -> None:
    generator = np.random.default_rng(0)
    clean = generator.random((32, 40))
    volume = generator.random((5, 16, 16))
    figure = save_comparison_png([("clean", clean), ("noisy", clean + 0.1), ("volume", volume)], tmp_path / "f.png")
    with PILImage.open(figure) as picture:
        assert picture.format == "PNG" and picture.size[0] > picture.size[1] > 50
    section = ReportSection(
        key="demo",
        title="A <section>",
        description="First paragraph.\n\nSecond & last.",
        figures=(Figure("f.png", "before/after"),),
        columns=("method", "PSNR (dB)"),
        rows=(("noisy", 20.123456), ("ours", None)),
        seconds=1.5,
    )
    html_path = write_report(Report("t", (section,), (("seed", "0"),)), tmp_path)
    text = html_path.read_text()
    assert "A &lt;section&gt;" in text and "Second &amp; last." in text and '<img src="f.png"' in text
    assert "<td>20.12</td>" in text and "<td>—</td>" in text
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["sections"]["demo"]["rows"] == [{"method": "noisy", "PSNR (dB)": 20.123456}, {"method": "ours", "PSNR (dB)": None}]
    assert record["provenance"] == {"seed": "0"}
