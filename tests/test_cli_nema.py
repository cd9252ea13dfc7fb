"""`medrestore nema`: line-source widths and flood uniformity of QC acquisitions, from the command and the API.

Synthetic lines are checked against the Gaussian closed forms (FWHM = 2√(2 ln 2) σ, FWTM = 2√(2 ln 10) σ); the
shared real QC images against the values ``benchmarks/nm-real.md`` reports for them (the same functions).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import medrestore
from medrestore.cli.main import main
from medrestore.core.image import Image, affine_from_spacing
from medrestore.io import write_image

from dicom_helpers import available

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nm-nmqc"
FWHM_PER_SIGMA, FWTM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2)), 2 * math.sqrt(2 * math.log(10))


def two_lines(sigma_px: float, shape: tuple[int, int] = (160, 120), centres: tuple[float, ...] = (40.3, 81.7)) -> np.ndarray:
    """Two vertical Gaussian line sources (σ in pixels) of 1000 counts per pixel at the peak on a background of 2."""
    columns = np.arange(shape[1], dtype=np.float64)
    profile = sum(1000.0 * np.exp(-0.5 * ((columns - c) / sigma_px) ** 2) for c in centres) + 2.0
    return np.tile(profile, (shape[0], 1))


def written(tmp_path: Path, data: np.ndarray, pixel_mm: float, name: str = "lines.nii.gz", spacing: tuple[float, float] | None = None) -> Path:
    image = Image(data.astype(np.float32), affine_from_spacing(spacing or (pixel_mm, pixel_mm)), 2, "nm", {})
    return write_image(image, tmp_path / name)


def test_line_widths_match_the_gaussian_closed_form_in_either_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sigma, pixel = 2.5, 1.5
    vertical = written(tmp_path, two_lines(sigma), pixel)
    assert main(["nema", "lines", str(vertical), "--lines", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["lines_run"] == "vertical" and record["pixel_size_mm"] == pytest.approx(pixel)
    assert [line["position_px"] for line in record["lines"]] == pytest.approx([40.3, 81.7], abs=0.05)
    assert record["fwhm_mm"] == pytest.approx(FWHM_PER_SIGMA * sigma * pixel, rel=0.01)
    assert record["fwtm_mm"] == pytest.approx(FWTM_PER_SIGMA * sigma * pixel, rel=0.02)
    horizontal = written(tmp_path, two_lines(sigma).T.copy(), pixel, "turned.nii.gz")
    turned = medrestore.nema(horizontal, "lines", lines=2)
    assert turned.record["lines_run"] == "horizontal" and turned.output["fwhm_mm"] == pytest.approx(record["fwhm_mm"], rel=1e-9)
    assert medrestore.nema(horizontal, "lines", lines=2, along="horizontal").output == turned.output
    assert main(["nema", "lines", str(vertical), "--lines", "2"]) == 0
    text = capsys.readouterr().out
    assert "vertical" in text and f"{record['fwhm_mm']:.2f}" in text.splitlines()[-1]


def test_the_shared_qc_images_give_the_benchmark_values(capsys: pytest.CaptureFixture[str]) -> None:
    lines = available(SHARED / "Spatial_Resol_X.dcm", "shared real QC image")
    measured = medrestore.nema(lines, "lines", lines=2)
    assert measured.record["lines_run"] == "vertical" and measured.output["fwhm_mm"] == pytest.approx(7.42, abs=0.005)
    assert measured.output["fwtm_mm"] == pytest.approx(13.28, abs=0.01)
    flood = available(SHARED / "UNIFORMIDAD_1.dcm", "shared real QC image")
    assert main(["nema", "flood", str(flood)]) == 0
    text = capsys.readouterr().out
    assert "UFOV                  5.18          3.57" in text and "CFOV                  3.03          2.43" in text
    uniformity = medrestore.nema(flood, "flood").output
    assert uniformity["integral_ufov"] == pytest.approx(5.18, abs=0.005)


def test_signed_counts_are_clipped_and_bad_inputs_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = two_lines(2.0)
    data[:4, :4] = -7.0  # a signed file's negative background
    signed = written(tmp_path, data, 1.0, "signed.nii.gz")
    result = medrestore.nema(signed, "lines", lines=2)
    assert result.record["clipped_negative"] == {"count": 16, "minimum": -7.0}
    assert "clipped 16 negative values" in capsys.readouterr().err
    in_memory = medrestore.nema(Image(two_lines(2.0), affine_from_spacing((1.0, 1.0)), 2, "nm", {}), "lines", lines=2)
    assert in_memory.record["input"] == "<memory>" and in_memory.output["fwhm_mm"] == pytest.approx(FWHM_PER_SIGMA * 2.0, rel=0.01)
    oblong = written(tmp_path, data.clip(0), 1.0, "oblong.nii.gz", spacing=(1.0, 2.0))
    series = tmp_path / "series.npy"
    np.save(series, np.stack([data.clip(0)] * 3)[..., None].repeat(2, axis=-1))
    for path, message in ((oblong, "are not square"), (series, "NEMA measures take planar frames; a 3-D image is read as a stack")):
        assert main(["nema", "lines", str(path), "--lines", "2"]) == 2
        error = capsys.readouterr().err
        assert str(path) in error and message in error
    assert main(["nema", "flood", str(written(tmp_path, two_lines(2.0, centres=(20.3, 99.7)), 6.4, "apart.nii.gz"))]) == 2
    assert "not a flood" in capsys.readouterr().err  # two lines far apart: no central field
    assert main(["nema", "lines", str(signed), "--lines", "5"]) == 2  # five lines in an image of two
    assert str(signed) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nema", "contrast", str(signed)])


def test_every_frame_of_a_stack_is_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both heads of a dual-head camera in one NM file (a stack of planes along the first axis): each is measured."""
    sigma = (2.0, 3.0)
    stack = tmp_path / "heads.npy"
    np.save(stack, np.stack([two_lines(s) for s in sigma]).astype(np.float32))
    result = medrestore.nema(stack, "lines", lines=2)
    assert [frame["frame"] for frame in result.record["frames"]] == [1, 2]
    widths = [frame["fwhm_mm"] for frame in result.output["frames"]]
    assert widths == pytest.approx([FWHM_PER_SIGMA * s for s in sigma], rel=0.01)  # .npy: 1-mm pixels
    assert main(["nema", "lines", str(stack), "--lines", "2"]) == 0
    text = capsys.readouterr().out
    assert "frame 1 of 2" in text and "frame 2 of 2" in text
    flood = tmp_path / "floods.npy"
    np.save(flood, np.random.default_rng(0).poisson(1e4, size=(2, 128, 128)).astype(np.float32))
    uniformity = medrestore.nema(flood, "flood").output["frames"]
    assert len(uniformity) == 2 and all(0 < frame["integral_ufov"] < 10 for frame in uniformity)
