"""Demo sections on real data (OCT B-scans, Colin27 for harmonisation), and their skip without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from medrestore.tasks.demo import DemoContext
from medrestore.tasks.demo_oct import oct_section
from medrestore.tasks.denoise import DEFAULT_MODELS, DEFAULT_MULTIFRAME_MODELS


def test_section_scores_the_shipped_models_on_subject_nine(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRESTORE_DATA", str(shared_data))
    section = oct_section(DemoContext(out_dir=tmp_path, work_dir=tmp_path / "work", quick=True))
    assert section.key == "oct" and (tmp_path / "oct.png").stat().st_size > 10_000
    scores = {row[1].split(" ")[0]: (row[2], row[3]) for row in section.rows}
    assert [row[0] for row in section.rows] == ["9"] * 4
    noisy = scores["noisy"]
    assert noisy[0] == pytest.approx(17.5, abs=1.0)  # the single B-scan against its average
    default, multi_frame = scores[DEFAULT_MODELS["oct"]], scores[DEFAULT_MULTIFRAME_MODELS["oct"]]
    assert default[0] > noisy[0] + 7.0 and default[1] > 0.6
    assert default[1] > scores["median"][1]
    assert multi_frame[1] > 0.6


def test_section_is_skipped_without_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDRESTORE_DATA", str(tmp_path / "absent"))
    section = oct_section(DemoContext(out_dir=tmp_path, work_dir=tmp_path / "work", quick=True))
    assert "skipped" in section.title and "MEDRESTORE_DATA" in section.description and not section.rows


def test_harmonization_section_on_a_held_out_subject(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medrestore.tasks.demo_harmonize import harmonization_section

    monkeypatch.setenv("MEDRESTORE_DATA", str(shared_data))
    section = harmonization_section(DemoContext(out_dir=tmp_path, work_dir=tmp_path / "work", quick=True))
    (_, psnr_before, ssim_before, bump_before, _), (_, psnr_after, ssim_after, bump_after, seconds) = section.rows
    assert psnr_after > psnr_before + 5.0 and ssim_after > ssim_before + 0.05
    assert bump_before > 0.25 and abs(bump_after) < 0.2 * bump_before  # the occipital hyperintensity is mostly removed
    assert (tmp_path / "harmonization.png").stat().st_size > 10_000 and seconds < 5.0
    monkeypatch.setenv("MEDRESTORE_DATA", str(tmp_path / "absent"))
    assert "skipped" in harmonization_section(DemoContext(out_dir=tmp_path, work_dir=tmp_path / "work", quick=True)).title
