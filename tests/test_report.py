"""HTML report and comparison figures."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from PIL import Image as PILImage

from medrestore.core.errors import InputError
from medrestore.report import Figure, Report, ReportSection, save_comparison_png, to_display_uint8, write_report
from medrestore.report.figures import zoom_box
from medrestore.report.html import render_html, write_html


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
    assert "A &lt;section&gt;" in text and "Second &amp; last." in text
    embedded = 'src="data:image/png;base64,' + base64.b64encode((tmp_path / "f.png").read_bytes()).decode() + '"'
    assert embedded in text and 'data-name="f.png"' in text  # the figure's bytes are in the HTML: one self-contained file
    assert "<td>20.12</td>" in text and "<td>—</td>" in text
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["sections"]["demo"]["rows"] == [{"method": "noisy", "PSNR (dB)": 20.123456}, {"method": "ours", "PSNR (dB)": None}]
    assert record["provenance"] == {"seed": "0"}


def test_verdicts_lead_the_report_and_a_missing_figure_is_named(tmp_path) -> None:
    first = ReportSection(key="a", title="Denoising", description="", verdict="default 3.1 dB above the noisy input")
    second = ReportSection(key="b", title="Recon", description="", seconds=None)
    text = render_html(Report("t", (first, second)))
    assert text.index('class="verdict"') < text.index('<section id="a">')
    assert '<a href="#a">Denoising</a>: default 3.1 dB above the noisy input' in text and "Recon</a>:" not in text
    assert "Section time" in text.split('<section id="b">')[0] and "Section time" not in text.split('<section id="b">')[1]
    missing = ReportSection(key="c", title="c", description="", figures=(Figure("gone.png", "x"),))
    with pytest.raises(InputError, match="gone.png"):
        write_html(Report("t", (missing,)), tmp_path / "r.html", tmp_path)
    assert not (tmp_path / "r.html").exists()


def test_zoom_box_sits_where_the_difference_is_largest() -> None:
    difference = np.zeros((40, 60))
    difference[30:36, 8:14] = -1.0  # a 6 × 6 patch; the box is 10 × 15
    top, left, height, width = zoom_box((40, 60), difference)
    assert (height, width) == (10, 15)
    assert top <= 30 and top + height >= 36 and left <= 8 and left + width >= 14
    assert zoom_box((40, 60), None) == (15, 22, 10, 15)  # centred without a difference
