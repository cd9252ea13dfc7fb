"""`medrestore evaluate` end to end: files and folders, text and JSON, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medrestore.cli.main import main
from medrestore.tasks.evaluate import evaluate_files

Files = tuple[Path, Path, np.ndarray, np.ndarray]
Capture = pytest.CaptureFixture[str]


def _pair(seed: int, shape: tuple[int, ...] = (24, 26)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.random(shape).astype(np.float32)
    prediction = (reference + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    return prediction, reference


def _expected_default(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    prediction64, reference64 = prediction.astype(np.float64), reference.astype(np.float64)
    span = float(reference64.max() - reference64.min())
    return {
        "psnr": peak_signal_noise_ratio(reference64, prediction64, data_range=span),
        "ssim": structural_similarity(
            reference64, prediction64, data_range=span, gaussian_weights=True, use_sample_covariance=False
        ),
    }


@pytest.fixture
def files(tmp_path: Path) -> Files:
    prediction, reference = _pair(seed=1)
    np.save(tmp_path / "pred.npy", prediction)
    np.save(tmp_path / "ref.npy", reference)
    return tmp_path / "pred.npy", tmp_path / "ref.npy", prediction, reference


def test_json_output_for_two_files(files: Files, capsys: Capture) -> None:
    pred, ref, prediction, reference = files
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pred"] == str(pred) and result["ref"] == str(ref) and result["convention"] == "default"
    assert list(result["metrics"]) == ["psnr", "ssim", "nmse", "mae"]
    expected = _expected_default(prediction, reference)
    assert abs(result["metrics"]["psnr"] - expected["psnr"]) < 1e-6
    assert abs(result["metrics"]["ssim"] - expected["ssim"]) < 1e-6


def test_text_table_for_two_files(files: Files, capsys: Capture) -> None:
    pred, ref, prediction, reference = files
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--convention", "fastmri"]) == 0
    output = capsys.readouterr().out
    assert f"prediction  {pred}" in output and "convention  fastmri" in output
    table = output.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["metric", "value"]
    assert [line.split()[0] for line in table[1:]] == ["nmse", "psnr", "ssim"]
    assert len({len(line) for line in table}) == 1  # right-aligned values: equal line lengths
    psnr_printed = float(table[2].split()[1])
    expected = peak_signal_noise_ratio(reference, prediction.astype(np.float64), data_range=float(reference.max()))
    assert psnr_printed == pytest.approx(expected, abs=1e-3)


def test_folders_are_scored_per_file_and_averaged(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    expected_rows = {}
    for seed, name in enumerate(["a.npy", "b.npy", "c.npy"]):
        prediction, reference = _pair(seed + 10)
        np.save(tmp_path / "pred" / name, prediction)
        np.save(tmp_path / "ref" / name, reference)
        expected_rows[name] = _expected_default(prediction, reference)
    np.save(tmp_path / "ref" / "extra.npy", reference)  # references without a prediction are ignored
    result = evaluate_files(tmp_path / "pred", tmp_path / "ref")
    assert [row["name"] for row in result["files"]] == ["a.npy", "b.npy", "c.npy"]
    for row in result["files"]:
        assert abs(row["metrics"]["ssim"] - expected_rows[row["name"]]["ssim"]) < 1e-6
    mean_psnr = np.mean([row["psnr"] for row in expected_rows.values()])
    assert abs(result["metrics"]["psnr"] - mean_psnr) < 1e-6

    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]) == 0
    lines = capsys.readouterr().out.split("\n\n", 1)[1].splitlines()
    assert lines[0].split() == ["file", "psnr", "ssim", "nmse", "mae"]
    assert [line.split()[0] for line in lines[1:]] == ["a.npy", "b.npy", "c.npy", "mean"]
    assert float(lines[-1].split()[3]) == pytest.approx(result["metrics"]["psnr"], abs=1e-3)


def test_mask_restricts_the_metrics(files: Files, tmp_path: Path) -> None:
    pred, ref, prediction, reference = files
    mask = np.zeros(reference.shape, dtype=np.uint8)
    mask[2:12, 3:20] = 1
    np.save(tmp_path / "mask.npy", mask)
    result = evaluate_files(pred, ref, tmp_path / "mask.npy")
    inside = mask.astype(bool)
    expected_mae = np.mean(np.abs(reference[inside].astype(np.float64) - prediction[inside]))
    assert result["metrics"]["mae"] == pytest.approx(expected_mae, rel=1e-12)
    assert result["mask"] == str(tmp_path / "mask.npy")


def test_shape_mismatch_names_both_files_and_shapes(tmp_path: Path, capsys: Capture) -> None:
    np.save(tmp_path / "pred.npy", np.zeros((20, 20), np.float32))
    np.save(tmp_path / "ref.npy", np.ones((20, 22), np.float32))
    assert main(["evaluate", "--pred", str(tmp_path / "pred.npy"), "--ref", str(tmp_path / "ref.npy")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error: ")
    assert str(tmp_path / "pred.npy") in error and str(tmp_path / "ref.npy") in error
    assert "(20, 20)" in error and "(20, 22)" in error


def test_missing_files_exit_2_naming_the_file(files: Files, tmp_path: Path, capsys: Capture) -> None:
    pred, _, _, _ = files
    missing = tmp_path / "nowhere.npy"
    assert main(["evaluate", "--pred", str(pred), "--ref", str(missing)]) == 2
    assert f"{missing}: reference file or folder does not exist" in capsys.readouterr().err
    (tmp_path / "pred_dir").mkdir()
    (tmp_path / "ref_dir").mkdir()
    np.save(tmp_path / "pred_dir" / "subject.npy", np.zeros((12, 12), np.float32))
    np.save(tmp_path / "ref_dir" / "other.npy", np.zeros((12, 12), np.float32))
    assert main(["evaluate", "--pred", str(tmp_path / "pred_dir"), "--ref", str(tmp_path / "ref_dir")]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "pred_dir" / "subject.npy") in error and "no reference of the same name" in error


def test_folder_against_single_file_is_refused(files: Files, tmp_path: Path, capsys: Capture) -> None:
    pred, _, _, _ = files
    (tmp_path / "refs").mkdir()
    np.save(tmp_path / "refs" / "pred.npy", np.zeros((24, 26), np.float32))
    assert main(["evaluate", "--pred", str(pred), "--ref", str(tmp_path / "refs")]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'refs'}: is a folder of images but {pred} is a single image" in error


def test_time_series_frames_are_scored_separately_with_3d_ssim(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    reference = rng.random((12, 13, 14, 2))  # 3 spatial axes + 2 frames
    prediction = reference + 0.1 * rng.standard_normal(reference.shape)
    np.save(tmp_path / "pred.npy", prediction)
    np.save(tmp_path / "ref.npy", reference)
    span = float(reference.max() - reference.min())
    per_frame = [
        structural_similarity(
            reference[..., t], prediction[..., t], data_range=span, gaussian_weights=True, use_sample_covariance=False
        )
        for t in range(2)
    ]
    result = evaluate_files(tmp_path / "pred.npy", tmp_path / "ref.npy")
    assert abs(result["metrics"]["ssim"] - float(np.mean(per_frame))) < 1e-6


def test_constant_reference_is_a_clear_error(tmp_path: Path, capsys: Capture) -> None:
    np.save(tmp_path / "pred.npy", np.zeros((16, 16), np.float32))
    np.save(tmp_path / "ref.npy", np.ones((16, 16), np.float32))
    assert main(["evaluate", "--pred", str(tmp_path / "pred.npy"), "--ref", str(tmp_path / "ref.npy")]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "pred.npy") in error and "data range 0" in error and str(tmp_path / "ref.npy") in error


@pytest.mark.shared_data
def test_oct_subject_1_through_the_command(shared_data: Path, capsys: Capture) -> None:
    subject = shared_data / "oct-duke-bioptigen" / "1"
    if not subject.is_dir():
        pytest.skip(f"{subject} is not present")
    argv = ["evaluate", "--pred", str(subject / "test.tif"), "--ref", str(subject / "average.tif")]
    argv += ["--convention", "oct", "--json"]
    assert main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["psnr"] == pytest.approx(17.78, abs=0.01)
    assert metrics["ssim"] == pytest.approx(0.083, abs=0.001)


def test_a_scintigram_stack_is_scored_frame_by_frame(tmp_path: Path) -> None:
    """An NM volume (eight time frames of a dynamic study) is a stack of planar frames: SSIM is the mean of each frame's
    2-D SSIM (skimage, Gaussian σ = 1.5, the default convention), the same whichever axis a reader stacks them on."""
    from medrestore.core.image import Image, affine_from_spacing
    from medrestore.io import write_image

    rng = np.random.default_rng(8)
    reference = rng.poisson(40.0, size=(8, 48, 40)).astype(np.float32)
    prediction = (reference + rng.normal(0.0, 4.0, reference.shape)).astype(np.float32)
    span = float(reference.max() - reference.min())
    expected = np.mean([
        structural_similarity(reference[k], prediction[k], data_range=span, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for k in range(8)
    ])  # fmt: skip
    for name, layout in (("first", (0, 1, 2)), ("last", (2, 1, 0))):
        affine = affine_from_spacing(tuple((1.0, 3.0, 3.0)[axis] for axis in layout))  # frames 1 mm apart, 3-mm pixels
        files = [
            write_image(Image(np.ascontiguousarray(data.transpose(layout)), affine, 3, "nm", {}), tmp_path / f"{name}-{role}.nii.gz")
            for role, data in (("pred", prediction), ("ref", reference))
        ]
        metrics = evaluate_files(files[0], files[1])["metrics"]
        assert metrics["ssim"] == pytest.approx(expected, abs=1e-6), name
        assert metrics["psnr"] == pytest.approx(peak_signal_noise_ratio(reference, prediction, data_range=span), abs=1e-6)
