"""Values real scanners produce (negative counts and magnitudes, NaN/±Inf) and one-slice volumes read as 2-D."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from medrestore.cli.main import build_parser, main
from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.io.values import clip_negative, to_float32, value_changes
from medrestore.tasks.viewer import Viewer, display_plane

OBLIQUE = np.array([[0.0, -0.9, 0.1, 12.0], [1.1, 0.0, 0.0, -30.0], [0.0, 0.05, 2.5, 7.5], [0, 0, 0, 1]])


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray = OBLIQUE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _signed_counts(size: int = 64) -> np.ndarray:
    """A planar count image stored int16 with a negative background (as some cameras export)."""
    rows, columns = np.mgrid[0:size, 0:size]
    counts = 200.0 * np.exp(-((rows - 30.0) ** 2 + (columns - 34.0) ** 2) / 60.0) - 3.0
    return np.rint(counts).astype(np.int16)


# -- non-finite values ---------------------------------------------------------------------------
def test_nonfinite_policies(tmp_path: Path) -> None:
    values = np.array([[1.0, np.nan], [np.inf, -np.inf]], np.float64)
    with pytest.raises(InputError, match=r"x\.nii: contains 1 NaN, 1 \+Inf and 1 -Inf values; pass --nonfinite zero"):
        to_float32(tmp_path / "x.nii", values)
    zeroed, record = to_float32(tmp_path / "x.nii", values, "zero")
    assert zeroed.dtype == np.float32 and zeroed.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert record == {"nan": 1, "posinf": 1, "neginf": 1, "float32_overflow": 0, "count": 3}
    kept, record = to_float32(tmp_path / "x.nii", values, "keep")
    assert record is None and np.isnan(kept[0, 1])
    overflow, record = to_float32(tmp_path / "x.nii", np.array([1.0, 1e300]), "zero")
    assert overflow.tolist() == [1.0, 0.0] and record is not None and record["float32_overflow"] == 1
    with pytest.raises(InputError, match="float32 range"):
        to_float32(tmp_path / "x.nii", np.array([1.0, -1e300]))
    with pytest.raises(InputError, match="policy"):
        read_image(tmp_path / "x.nii", nonfinite="ignore")


def test_read_image_zero_policy_records_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.ones((6, 7, 5), np.float32)
    data[1, 2, 3], data[0, 0, 0] = np.nan, -np.inf
    source = _nifti(tmp_path / "holes.nii.gz", data)
    image = read_image(source, nonfinite="zero")
    assert float(image.data[1, 2, 3]) == 0.0 and bool(torch.isfinite(image.data).all())
    assert image.metadata["nonfinite_replaced"]["count"] == 2
    assert value_changes(image) == {"nonfinite_replaced": image.metadata["nonfinite_replaced"]}
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"medrestore: warning: {source}: replaced 1 NaN")


def test_every_image_command_has_the_nonfinite_option() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001 - argparse has no public getter
    for name in ("evaluate", "degrade", "denoise", "superres", "harmonize", "simulate-radial", "view"):
        found = [action for action in commands[name]._actions if "--nonfinite" in action.option_strings]  # noqa: SLF001
        assert len(found) == 1, name
        assert found[0].default == "refuse" and tuple(found[0].choices) == ("refuse", "zero"), name


def test_evaluate_nonfinite_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    data[3, 4] = np.nan
    source = _nifti(tmp_path / "pred.nii", data)
    assert main(["evaluate", "--pred", str(source), "--ref", str(source)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith(f"medrestore: error: {source}: contains 1 NaN")
    assert "--nonfinite zero" in error and "allow_nonfinite" not in error
    assert main(["evaluate", "--pred", str(source), "--ref", str(source), "--json", "--nonfinite", "zero"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["nmse"] == 0.0 and result["nonfinite_replaced"][str(source)]["nan"] == 1


def test_degrade_records_replaced_values(tmp_path: Path) -> None:
    data = np.full((32, 32), 5.0, np.float32)
    data[0, 0] = np.inf
    source = tmp_path / "image.npy"
    np.save(source, data)
    output = tmp_path / "noisy.npy"
    assert main(["degrade", str(source), "-o", str(output), "--kind", "gaussian", "--sigma", "0.1", "--nonfinite", "zero"]) == 0
    record = json.loads(Path(f"{output}.json").read_text())
    assert record["nonfinite_replaced"]["posinf"] == 1 and "clipped_negative" not in record


# -- negative values -------------------------------------------------------------------------------
def test_clip_negative_counts_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    image = Image.from_array(np.array([[-2.0, 3.0], [-0.5, 0.0]], np.float32))
    clipped = clip_negative(image, "scan.dcm", "gamma-camera counts")
    assert clipped.data.tolist() == [[0.0, 3.0], [0.0, 0.0]]
    assert clipped.metadata["clipped_negative"] == {"count": 2, "minimum": -2.0}
    assert capsys.readouterr().err == (
        "medrestore: warning: scan.dcm: clipped 2 negative values (minimum -2) to 0 for gamma-camera counts\n"
    )
    assert clip_negative(clipped, "scan.dcm", "counts") is clipped and capsys.readouterr().err == ""
    with pytest.raises(InputError, match=r"ct.npy: holds no positive value \(minimum -1000\); counts needs non-negative"):
        clip_negative(Image.from_array(np.full((4, 4), -1000.0, np.float32)), "ct.npy", "counts")


def test_gamma_camera_degrade_of_a_signed_nifti(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = _signed_counts()
    source = _nifti(tmp_path / "bone.nii.gz", counts[:, :, None], np.diag([2.0, 2.0, 2.0, 1.0]))
    before = source.read_bytes()
    output = tmp_path / "camera.nii.gz"
    assert main(["degrade", str(source), "-o", str(output), "--kind", "gamma-camera", "--scale", "2"]) == 0
    negatives = int((counts < 0).sum())
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"medrestore: warning: {source}: clipped {negatives} negative values (minimum -3) to 0 "
                     "for --kind gamma-camera (counts are never negative)"]  # fmt: skip
    record = json.loads(Path(f"{output}.json").read_text())
    assert record["clipped_negative"] == {"count": negatives, "minimum": -3.0}
    assert read_image(output).shape == (32, 32) and source.read_bytes() == before


def test_gamma_camera_degrade_and_superres_of_signed_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    counts = _signed_counts()
    dataset.Modality, dataset.PixelRepresentation, dataset.PixelData = "NM", 1, counts.tobytes()
    source = tmp_path / "signed.dcm"
    dataset.save_as(source)
    output = tmp_path / "camera.dcm"
    assert main(["degrade", str(source), "-o", str(output), "--kind", "gamma-camera", "--scale", "2", "--dtype", "source"]) == 0
    assert json.loads(Path(f"{output}.json").read_text())["clipped_negative"]["minimum"] == -3.0
    restored = tmp_path / "restored.nii.gz"
    assert main(["superres", str(source), "-o", str(restored), "--method", "bicubic", "--scale", "2"]) == 0
    record = json.loads(Path(f"{restored}.json").read_text())
    assert record["clipped_negative"]["count"] == int((counts < 0).sum())
    assert record["frame_total_counts"] == [float(np.clip(counts, 0, None).sum())]
    assert capsys.readouterr().err.count("medrestore: warning:") == 2


def test_mri_denoise_clips_resampling_negatives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, columns = np.mgrid[0:48, 0:48]
    magnitude = (100.0 * (np.hypot(rows - 24, columns - 24) < 16)).astype(np.float32)
    magnitude += np.random.default_rng(1).normal(0, 2.0, magnitude.shape).astype(np.float32)
    magnitude[magnitude < 0] *= 0.1  # a few small negative values, as resampling leaves
    source = _nifti(tmp_path / "resampled.nii", magnitude, np.eye(4))
    output = tmp_path / "denoised.nii"
    assert main(["denoise", "--modality", "mri", str(source), "-o", str(output), "--method", "nlm", "--sigma", "2"]) == 0
    assert "negative values" in capsys.readouterr().err and float(read_image(output).data.min()) >= 0


def test_evaluate_keeps_negative_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = np.random.default_rng(2).uniform(-1000, 1000, (32, 32)).astype(np.float32)
    np.save(tmp_path / "ref.npy", reference)
    np.save(tmp_path / "pred.npy", reference - 10.0)
    assert main(["evaluate", "--pred", str(tmp_path / "pred.npy"), "--ref", str(tmp_path / "ref.npy"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["metrics"]["mae"] == pytest.approx(10.0, rel=1e-5) and captured.err == ""


# -- one-slice volumes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "squeezed", "expected"),
    [((50, 40, 1), 2, (50, 40)), ((50, 40, 1, 3), 2, (50, 40, 3)), ((50, 1, 40), 1, (50, 40)), ((1, 50, 40), 0, (50, 40))],
)
def test_one_slice_nifti_is_2d_and_writes_back_the_same_geometry(
    tmp_path: Path, shape: tuple[int, ...], squeezed: int, expected: tuple[int, ...]
) -> None:
    data = np.random.default_rng(3).random(shape).astype(np.float32)
    source = _nifti(tmp_path / "slice.nii.gz", data)
    image = read_image(source)
    assert image.spatial_ndim == 2 and image.shape == expected and image.metadata["squeezed_axis"] == squeezed
    kept = [axis for axis in range(3) if axis != squeezed]
    assert np.allclose(image.affine[:, :3], OBLIQUE[:, [*kept, squeezed]]) and np.allclose(image.affine[:, 3], OBLIQUE[:, 3])
    assert image.spacing == pytest.approx([np.linalg.norm(OBLIQUE[:3, axis]) for axis in kept], rel=1e-6)
    written = nib.load(write_image(image, tmp_path / "back.nii.gz"))
    assert written.shape == shape and np.allclose(written.affine, OBLIQUE, atol=1e-6)
    assert np.array_equal(np.asarray(written.dataobj), data)
    fresh = nib.load(write_image(Image(image.data, image.affine, 2), tmp_path / "fresh.nii.gz"))  # no squeezed_axis
    voxel = np.array([3, 5, 0, 1.0])  # same world point whatever layout the 2-D image is stored in
    source_voxel = np.insert(voxel[:2], squeezed, 0.0).tolist() + [1.0]
    assert np.allclose(fresh.affine @ voxel, OBLIQUE @ source_voxel, atol=1e-5)


def test_one_slice_numpy_and_dicom_series_are_2d(tmp_path: Path) -> None:
    np.save(tmp_path / "last.npy", np.ones((20, 30, 1), np.float32))
    np.save(tmp_path / "first.npy", np.ones((1, 20, 30), np.float32))
    np.save(tmp_path / "line.npy", np.ones((1, 1, 30), np.float32))
    assert read_image(tmp_path / "last.npy").shape == (20, 30) and read_image(tmp_path / "first.npy").shape == (20, 30)
    assert read_image(tmp_path / "line.npy").spatial_ndim == 3  # two axes of length 1: no single slice to show
    series = tmp_path / "series"
    series.mkdir()
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    dataset.save_as(series / "IM0001.dcm")
    image = read_image(series)
    assert image.spatial_ndim == 2 and image.shape == (dataset.Rows, dataset.Columns)


def test_evaluate_command_on_one_slice_volumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    for name, shape in (("a.nii.gz", (50, 50, 1)), ("t.nii.gz", (50, 50, 1, 3))):
        reference = rng.random(shape).astype(np.float32)
        _nifti(tmp_path / f"ref-{name}", reference)
        _nifti(tmp_path / f"pred-{name}", reference + rng.normal(0, 0.05, shape).astype(np.float32))
        assert main(["evaluate", "--pred", str(tmp_path / f"pred-{name}"), "--ref", str(tmp_path / f"ref-{name}"), "--json"]) == 0
        metrics = json.loads(capsys.readouterr().out)["metrics"]
        assert 0.0 < metrics["ssim"] < 1.0 and 20.0 < metrics["psnr"] < 40.0
    np.save(tmp_path / "ref.npy", rng.random((40, 40, 1)).astype(np.float32))
    assert main(["evaluate", "--pred", str(tmp_path / "ref.npy"), "--ref", str(tmp_path / "ref.npy")]) == 0


def test_viewer_scores_and_shows_a_one_slice_volume(tmp_path: Path) -> None:
    rows, columns = np.mgrid[0:40, 0:36]
    plane = (rows + 2 * columns).astype(np.float32)
    affine = np.diag([-1.0, 1.2, 3.0, 1.0])
    _nifti(tmp_path / "clean.nii.gz", plane[:, :, None], affine)
    _nifti(tmp_path / "noisy.nii.gz", (plane + 1.0)[:, :, None], affine)
    study = Viewer(tmp_path, tmp_path / "work").open("noisy.nii.gz", reference="clean.nii.gz")
    assert study.image.spatial_ndim == 2 and study.describe()["shape"] == [40, 36]
    assert study.metrics("input")["mae"] == pytest.approx(1.0)
    as_volume = Image(torch.from_numpy(plane[:, :, None].copy()), affine, 3)
    assert np.array_equal(display_plane(read_image(tmp_path / "clean.nii.gz")), display_plane(as_volume, 2, 0))
    assert study.slice_png("input").startswith(b"\x89PNG")
