"""``medrestore phantom paper`` and ``medrestore phantom calibrate`` end to end: files, records,
geometry, batch folders, reproducibility and error exits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import medrestore
from medrestore.cli.main import main
from medrestore.io import read_image, write_image
from medrestore.tasks.phantom import phantom_seed

SMALL = ["--matrix", "128", "--pixel-size", "2.0"]


def _write_png(path: Path, seed: int, colour: bool = False) -> Path:
    """A 64×64 picture: a bright square and a grey disc on black (colour: the square is red)."""
    rows, columns = np.mgrid[0:64, 0:64]
    grey = np.where(np.hypot(rows - 40, columns - 36) < 14, 120, 0).astype(np.uint8)
    grey[8 + seed : 24 + seed, 10:30] = 250
    pixels = np.stack([grey, grey // 2, grey // 3], axis=-1) if colour else grey
    PIL.Image.fromarray(pixels).save(path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_paper_phantom_of_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write_png(tmp_path / "scan.png", seed=0)
    before = _sha256(source)
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), *SMALL, "--seed", "7"]) == 0
    assert "wrote 1 phantom(s)" in capsys.readouterr().out
    names = sorted(p.name for p in output.iterdir())
    assert names == ["manifest.json", "scan.json", "scan_high.nii.gz", "scan_low.nii.gz", "scan_teacher.nii.gz",
                     "scan_teacher_counts.nii.gz"]  # fmt: skip
    teacher, low, high = (read_image(output / f"scan_{role}.nii.gz") for role in ("teacher", "low", "high"))
    counts = read_image(output / "scan_teacher_counts.nii.gz")
    assert teacher.shape == high.shape == counts.shape == (64, 64) and low.shape == (16, 16)
    assert high.spacing == (2.0, 2.0) and low.spacing == (8.0, 8.0)
    np.testing.assert_allclose(high.affine[:3, 3], [-63.0, -63.0, 0.0])
    np.testing.assert_allclose(low.affine[:3, 3], [-60.0, -60.0, 0.0])  # first block centre: 1.5 high pixels on
    assert float(counts.data.sum()) == pytest.approx(float(low.data.sum()), rel=1e-5)
    record = json.loads((output / "scan.json").read_text())
    assert record["seed"] == 7 and record["phantom_seed"] == phantom_seed(7, "scan")
    assert record["input_sha256"] == before == _sha256(source)  # the input is never modified
    assert record["phantom"]["config"]["collimator_low"] == "LEGP" and record["phantom"]["config"]["scale"] == 4
    assert record["phantom"]["high"]["reached_minimum_peak"] and record["phantom"]["high"]["peak_counts"] >= 25
    assert record["medrestore_version"] == medrestore.__version__
    manifest = json.loads((output / "manifest.json").read_text())
    assert [entry["name"] for entry in manifest["phantoms"]] == ["scan"]
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]


def test_folder_batch_is_reproducible_per_image(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    _write_png(folder / "a.png", seed=0)
    _write_png(folder / "b.png", seed=5, colour=True)
    (folder / "notes.txt").write_text("not an image")
    first, second = tmp_path / "first", tmp_path / "second"
    arguments = [*SMALL, "--collimator-high", "LEUHR", "--distance", "50", "--format", "npy"]
    assert main(["phantom", "paper", str(folder), "-o", str(first), *arguments]) == 0
    manifest = json.loads((first / "manifest.json").read_text())
    assert [entry["name"] for entry in manifest["phantoms"]] == ["a", "b"]
    assert json.loads((first / "b.json").read_text())["phantom"]["high"]["collimator"] == "LEUHR"
    # the same image alone gives the same phantom: its seed depends on (seed, name) only
    alone = tmp_path / "alone"
    assert main(["phantom", "paper", str(folder / "b.png"), "-o", str(alone), *arguments]) == 0
    assert np.array_equal(np.load(first / "b_high.npy"), np.load(alone / "b_high.npy"))
    assert main(["phantom", "paper", str(folder), "-o", str(second), *arguments, "--seed", "1"]) == 0
    assert not np.array_equal(np.load(first / "a_low.npy"), np.load(second / "a_low.npy"))


def test_explicit_counts_and_no_calibration(tmp_path: Path) -> None:
    source = _write_png(tmp_path / "scan.png", seed=2)
    output = tmp_path / "out"
    arguments = ["phantom", "paper", str(source), "-o", str(output), *SMALL, "--low-counts", "300",
                 "--high-counts", "40", "--calibrate", "none", "--no-crop"]  # fmt: skip
    assert main(arguments) == 0
    assert not (output / "scan_teacher_counts.nii.gz").exists()
    low = read_image(output / "scan_low.nii.gz")
    assert low.shape == (32, 32) and 250 <= float(low.data.max()) <= 380
    record = json.loads((output / "scan.json").read_text())["phantom"]
    assert record["low"]["count_level"] == {"peak_counts": 300.0, "total_counts": None, "acquisition_time_s": None}


def test_calibrate_subcommand(tmp_path: Path) -> None:
    source = _write_png(tmp_path / "scan.png", seed=1)
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), *SMALL, "--calibrate", "none"]) == 0
    calibrated = tmp_path / "calibrated.nii.gz"
    teacher, measured = output / "scan_teacher.nii.gz", output / "scan_high.nii.gz"
    assert main(["phantom", "calibrate", str(teacher), str(measured), "-o", str(calibrated), "--bins", "32"]) == 0
    result, reference = read_image(calibrated), read_image(measured)
    assert result.shape == (64, 64) and result.modality == "nm"
    assert abs(float(result.data.sum()) - float(reference.data.sum())) <= 0.01 * float(reference.data.sum())
    record = json.loads(Path(f"{calibrated}.json").read_text())
    assert record["calibration"]["factor"] == 1 and record["calibration"]["bins"] == 32
    assert len(record["calibration"]["lut"]["counts"]) <= 32
    assert "clipped_negative" not in record


def test_calibrate_clips_a_signed_measurement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A measured scintigram stored signed with a negative background: clipped to 0, warned once, counted in the record."""
    source = _write_png(tmp_path / "scan.png", seed=1)
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), *SMALL, "--calibrate", "none"]) == 0
    measured = read_image(output / "scan_high.nii.gz")
    signed = measured.data.clone()
    signed[:3, :] = -2.0
    signed_path = write_image(measured.with_data(signed), tmp_path / "signed.nii.gz")
    before = signed_path.read_bytes()
    capsys.readouterr()
    calibrated = tmp_path / "calibrated.nii.gz"
    assert main(["phantom", "calibrate", str(output / "scan_teacher.nii.gz"), str(signed_path), "-o", str(calibrated)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"clipped {3 * signed.shape[1]} negative values" in warnings[0] and str(signed_path) in warnings[0]
    record = json.loads(Path(f"{calibrated}.json").read_text())
    assert record["clipped_negative"] == {"count": 3 * signed.shape[1], "minimum": -2.0}
    assert signed_path.read_bytes() == before
    total = float(signed.clamp(min=0).double().sum())
    assert abs(float(read_image(calibrated).data.double().sum()) - total) <= 0.01 * total


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--collimator-low", "pinhole"], "unknown collimator 'pinhole'"),
        (["--scale", "3"], "matrix 128 is not a multiple of scale 3"),
        (["--ink-ratio", "one:two"], "--ink-ratio must read RI:BLACK"),
        (["--dot-gain", "0.5"], "dot_gain must be in [0, 0.25]"),
        (["--print-size", "400"], "larger than the field of view"),
        (["--isotope", "Ga-67"], "unknown isotope"),
        (["--seed", "-1"], "seed must be an integer"),
        (["--slice", "3"], "there is no slice 3"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    source = _write_png(tmp_path / "scan.png", seed=0)
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), *SMALL, *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error:") and message in error
    assert not (output / "scan.json").exists()


def test_bad_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(tmp_path / "missing.png"), "-o", str(output)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["phantom", "paper", str(empty), "-o", str(output)]) == 2
    assert "holds no image files" in capsys.readouterr().err
    clash = tmp_path / "clash"
    clash.mkdir()
    _write_png(clash / "x.png", seed=0)
    PIL.Image.fromarray(np.zeros((8, 8), np.uint8)).save(clash / "x.jpg")
    assert main(["phantom", "paper", str(clash), "-o", str(output)]) == 2
    assert "share the name(s) x" in capsys.readouterr().err
    flat = tmp_path / "flat.png"
    PIL.Image.fromarray(np.full((16, 16), 9, np.uint8)).save(flat)
    assert main(["phantom", "paper", str(flat), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert str(flat) in error and "nothing to print" in error
    source = _write_png(tmp_path / "scan.png", seed=0)
    assert main(["phantom", "calibrate", str(source), str(source), "-o", str(source)]) == 2
    assert "would overwrite an input" in capsys.readouterr().err
    odd = tmp_path / "odd.png"
    PIL.Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10)).save(odd)
    assert main(["phantom", "calibrate", str(source), str(odd), "-o", str(tmp_path / "c.nii.gz")]) == 2
    assert "times one integer" in capsys.readouterr().err


def test_real_brain_slice_from_the_command_line(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "brain-mri-ants" / "r16slice.jpg"
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), "--seed", "0"]) == 0
    assert read_image(output / "r16slice_low.nii.gz").shape == (64, 64)
    assert read_image(output / "r16slice_high.nii.gz").shape == (256, 256)
    record = json.loads((output / "r16slice.json").read_text())
    assert record["phantom"]["print"]["pixel_size_mm"] == 0.67 and record["phantom"]["low"]["peak_counts"] >= 25


def test_a_scintigram_stack_prints_one_of_its_frames(tmp_path: Path) -> None:
    """An NM file of two views: the phantom is made of a whole view (the stack's middle frame, or ``--slice``), not of
    a cut through both views."""
    from test_cli_degrade_gamma import whole_body_file

    views = np.stack([np.full((64, 64), 10, np.int16), np.tile(np.arange(64, dtype=np.int16), (64, 1))])
    source = whole_body_file(tmp_path / "views.dcm", views, 2.0)
    output = tmp_path / "out"
    assert main(["phantom", "paper", str(source), "-o", str(output), *SMALL, "--slice", "1"]) == 0
    record = json.loads((output / "views.json").read_text())
    assert record["slice_axis"] == 0 and record["slice_index"] == 1
    assert read_image(output / "views_teacher.nii.gz").shape == (64, 64)
