"""``medrestore degrade --kind gamma-camera``: outputs, geometry, recorded parameters and errors."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from skimage.metrics import peak_signal_noise_ratio

from dicom_helpers import DCM2NIIX, new_dataset
from medrestore.cli.main import main
from medrestore.core.image import Image, affine_from_spacing
from medrestore.io import read_image, write_image
from medrestore.physics.degradations import GammaCamera, degradation_from_record
from medrestore.tasks.superres import system_response


def _activity(size: int = 256) -> np.ndarray:
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    blob = np.exp(-((rows - 100.0) ** 2 + (columns - 140.0) ** 2) / (2 * 20.0**2))
    image = 10.0 * blob + 2.0 * (np.hypot(rows - 128, columns - 128) < 90)
    image[198:201, 58:61] = 40.0  # a small hot spot outside the disc
    return image.astype(np.float32)


@pytest.fixture
def activity_file(tmp_path: Path) -> Path:
    """A 256×256 activity image in NIfTI with 0.5-mm pixels and an offset origin."""
    affine = np.array([[0.5, 0, 0, -60.0], [0, 0.5, 0, 20.0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    image = Image.from_array(_activity(), affine=affine, spatial_ndim=2)
    return write_image(image, tmp_path / "activity.nii.gz")


def test_default_gamma_camera_is_the_x4_setting(activity_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "low.nii.gz"
    assert main(["degrade", str(activity_file), "-o", str(output), "--kind", "gamma-camera", "--seed", "4"]) == 0
    low = read_image(output)
    assert low.shape == (64, 64) and low.spacing == (2.0, 2.0)
    np.testing.assert_allclose(low.affine[:3, 3], [-60.0 + 0.75, 20.0 + 0.75, 0.0])  # first 4×4 block centre
    counts = low.numpy()
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    # the input's values are its counts: the same total seen through the ×4 matrix
    total = float(_activity().astype(np.float64).sum())
    assert abs(counts.sum() - total) <= 5 * math.sqrt(total)
    sidecar = json.loads(Path(f"{output}.json").read_text())
    degradation = dict(sidecar["degradation"])
    assert degradation.pop("total_counts") == pytest.approx(total, rel=1e-6)
    assert degradation == {
        "kind": "gamma-camera", "scale": 4, "collimator": "LEGP", "distance_mm": 100.0, "isotope": "Tc-99m",
        "pixel_size_mm": 0.5, "peak_counts": None, "scatter_fraction": 0.0, "return_counts": True, "seed": 4,
    }  # fmt: skip
    transform, seed = degradation_from_record(sidecar["degradation"])
    assert transform == GammaCamera(collimator="LEGP", pixel_size_mm=0.5, total_counts=sidecar["degradation"]["total_counts"]) and seed == 4
    assert sidecar["collimator_source"] == "default LEGP (the file names no collimator)"
    assert sidecar["output_shape"] == [64, 64]


def test_collimator_distance_isotope_and_counts_flags(activity_file: Path, tmp_path: Path) -> None:
    outputs = {}
    for collimator in ("LEHR", "LEGP"):
        output = tmp_path / f"{collimator}.npy"
        arguments = ["degrade", str(activity_file), "-o", str(output), "--kind", "gamma-camera", "--collimator",
                     collimator, "--scale", "2", "--distance", "150", "--isotope", "I-123", "--total-counts", "200000",
                     "--pixel-size", "1.0", "--seed", "1"]  # fmt: skip
        assert main(arguments) == 0
        outputs[collimator] = np.load(output).astype(np.float64)
        record = json.loads(Path(f"{output}.json").read_text())["degradation"]
        assert record["isotope"] == "I-123" and record["pixel_size_mm"] == 1.0 and record["peak_counts"] is None
    for counts in outputs.values():
        assert counts.shape == (128, 128)
        assert abs(counts.sum() - 2e5) <= 5 * math.sqrt(2e5)
    # LEHR keeps more of the hot spot's counts within ±5 mm than LEGP (expected ≈ 63 % vs 47 %)
    window = {name: counts[97:102, 27:32].sum() for name, counts in outputs.items()}
    assert window["LEHR"] > window["LEGP"] + 4 * math.sqrt(window["LEHR"] + window["LEGP"])


def test_same_seed_same_counts(activity_file: Path, tmp_path: Path) -> None:
    results = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        output = tmp_path / f"{name}.npy"
        assert main(["degrade", str(activity_file), "-o", str(output), "--kind", "gamma-camera", "--seed", seed]) == 0
        results.append(np.load(output))
    assert np.array_equal(results[0], results[1]) and not np.array_equal(results[0], results[2])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--collimator", "pinhole"], "unknown collimator 'pinhole'"),
        (["--counts", "100", "--total-counts", "1000"], "give peak_counts or total_counts, not both"),
        (["--factor", "4"], "--factor does not apply to --kind gamma-camera"),
        (["--sigma", "0.1"], "--sigma does not apply to --kind gamma-camera"),
        (["--scatter-fraction", "1.5"], "scatter_fraction must be in [0, 0.95]"),
        (["--distance", "-10"], "distance_mm must be a finite number >= 0"),
        (["--isotope", "Xe-133"], "unknown isotope"),
        (["--pixel-size", "0"], "pixel_size_mm must be a finite number > 0"),
        (["--scale", "0"], "scale must be an integer >= 1"),
    ],
)
def test_bad_gamma_camera_options_exit_2(
    activity_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    output = tmp_path / "never.nii.gz"
    assert main(["degrade", str(activity_file), "-o", str(output), "--kind", "gamma-camera", *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error:") and message in error
    assert not output.exists()


def test_gamma_camera_flags_are_refused_for_other_kinds(activity_file: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    output = tmp_path / "never.npy"
    assert main(["degrade", str(activity_file), "-o", str(output), "--kind", "poisson", "--counts", "10",
                 "--collimator", "LEHR"]) == 2  # fmt: skip
    assert "--collimator does not apply to --kind poisson" in capsys.readouterr().err


def test_bad_pixels_are_reported_against_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    negative = tmp_path / "ct.npy"
    np.save(negative, np.full((32, 32), -1000.0, dtype=np.float32))
    assert main(["degrade", str(negative), "-o", str(tmp_path / "o.npy"), "--kind", "gamma-camera"]) == 2
    error = capsys.readouterr().err
    assert str(negative) in error and "non-negative" in error
    series = tmp_path / "series.npy"
    np.save(series, np.ones((8, 8, 8, 2), dtype=np.float32))
    assert main(["degrade", str(series), "-o", str(tmp_path / "v.npy"), "--kind", "gamma-camera", "--scale", "2"]) == 2
    assert f"{series}: a 3-D image is read as a stack of planar frames" in capsys.readouterr().err


def test_a_stack_of_planar_frames_is_acquired_frame_by_frame() -> None:
    """A 3-D image (an NM multi-frame file read as a volume) is its frames along the first axis: the same counts as
    the same frames on a trailing axis, one count scale for all; only the in-plane columns of the affine scale."""
    frames = torch.from_numpy(np.stack([_activity(), 3.0 * _activity()[:, ::-1]]))
    affine = np.array([[1.0, 0, 0, 5.0], [0, 0.5, 0, -3.0], [0, 0, 0.5, 7.0], [0, 0, 0, 1]])
    stack = Image(frames, affine, 3, "nm", {})
    trailing = Image(frames.movedim(0, -1), affine_from_spacing((0.5, 0.5)), 2, "nm", {})
    camera = GammaCamera(scale=4, collimator="LEHR")
    acquired = camera.apply_image(stack, 11)
    np.testing.assert_array_equal(acquired.numpy(), camera.apply_image(trailing, 11).numpy().transpose(2, 0, 1))
    assert acquired.shape == (2, 64, 64) and acquired.spacing == pytest.approx((1.0, 2.0, 2.0))
    np.testing.assert_allclose(acquired.affine[:3, 3], [5.0, -3.0 + 0.75, 7.0 + 0.75])  # first 4×4 block's centre
    totals = acquired.numpy().reshape(2, -1).sum(axis=1)
    assert totals[1] / totals[0] == pytest.approx(3.0, rel=0.02)  # the frames keep their relative count levels
    assert camera.resolve_for_image(stack).pixel_size_mm == 0.5  # the in-plane spacing, not the frame step


def whole_body_file(path: Path, views: np.ndarray, spacing: float, collimator: str = "LEHR") -> Path:
    """A camera-style whole-body NM object: two detectors (anterior, posterior), one energy window, signed 16-bit
    values with a negative background, as the scan the gamma-camera issue reported was stored."""
    dataset = new_dataset(pydicom.uid.NuclearMedicineImageStorage, "NM", "WB-1", views.shape[1], views.shape[2], signed=True)
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY", "EMISSION"]
    dataset.NumberOfFrames, dataset.PixelSpacing = views.shape[0], [spacing, spacing]
    dataset.FrameIncrementPointer = [pydicom.tag.Tag("EnergyWindowVector"), pydicom.tag.Tag("DetectorVector")]
    dataset.EnergyWindowVector, dataset.NumberOfEnergyWindows = [1] * views.shape[0], 1
    dataset.DetectorVector, dataset.NumberOfDetectors = list(range(1, views.shape[0] + 1)), views.shape[0]
    detectors = []
    for _ in range(views.shape[0]):
        detector = Dataset()
        detector.CollimatorGridName = collimator
        detectors.append(detector)
    dataset.DetectorInformationSequence = DicomSequence(detectors)
    dataset.PixelData = views.astype("<i2").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_a_whole_body_scan_with_two_views_round_trips_through_degrade_and_superres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pydicom's real whole-body bone scan as both views of a two-detector file: each view acquired ×4 and restored,
    the file's layout (WHOLE BODY, detector vector) and collimator kept, counts kept per view."""
    scan = pydicom.dcmread(get_testdata_file("JPEG2000.dcm")).pixel_array.astype(np.int16)  # (1024, 256), minimum −30
    views = np.stack([scan, scan[:, ::-1]])
    source = whole_body_file(tmp_path / "wb.dcm", views, 2.26)
    coarse, restored, bicubic = tmp_path / "wb-x4.dcm", tmp_path / "wb-sr.dcm", tmp_path / "wb-bicubic.dcm"
    assert main(["degrade", str(source), "-o", str(coarse), "--kind", "gamma-camera", "--seed", "3"]) == 0
    assert "clipped" in capsys.readouterr().err
    acquired = read_image(coarse)
    assert acquired.shape == (2, 256, 64) and acquired.spacing[1:] == pytest.approx((9.04, 9.04))
    written = pydicom.dcmread(coarse)
    assert written.ImageType[2] == "WHOLE BODY" and list(written.DetectorVector) == [1, 2]
    record = json.loads(Path(f"{coarse}.json").read_text())["degradation"]
    assert record["collimator"] == "LEHR" and record["pixel_size_mm"] == pytest.approx(2.26)
    counts = np.clip(views, 0, None).astype(np.float64)
    assert acquired.numpy().sum() == pytest.approx(counts.sum(), rel=0.01)
    assert main(["superres", str(coarse), "-o", str(restored)]) == 0
    assert main(["superres", str(coarse), "-o", str(bicubic), "--method", "bicubic"]) == 0
    fine, smooth = read_image(restored).numpy().astype(np.float64), read_image(bicubic).numpy().astype(np.float64)
    assert fine.shape == (2, 1024, 256) and read_image(restored).spacing[1:] == pytest.approx((2.26, 2.26))
    assert list(pydicom.dcmread(restored).DetectorVector) == [1, 2]
    for view in range(2):
        assert fine[view].sum() == pytest.approx(acquired.numpy()[view].sum(), rel=1e-3)
        peak = counts[view].max()
        gain = peak_signal_noise_ratio(counts[view], fine[view], data_range=peak) - peak_signal_noise_ratio(counts[view], smooth[view], data_range=peak)
        assert gain > 2.0  # the bone-scan target, view by view (measured: +2.9 dB)


def test_dcm2niix_s_nifti_of_a_whole_body_scan_is_read_as_its_two_views(tmp_path: Path) -> None:
    """dcm2niix writes the two-view file as ``(columns, rows, views)`` and a JSON without ``Modality``: read as an NM
    stack along its last axis, acquired and restored view by view, as the DICOM file itself."""
    if DCM2NIIX is None:
        pytest.skip("dcm2niix is not installed (Debian/Ubuntu: apt-get install dcm2niix)")
    scan = pydicom.dcmread(get_testdata_file("JPEG2000.dcm")).pixel_array.astype(np.int16)
    views = np.stack([scan, scan[:, ::-1]])
    source = whole_body_file(tmp_path / "wb.dcm", views, 2.26)
    subprocess.run([DCM2NIIX, "-s", "y", "-z", "y", "-f", "wb", "-o", str(tmp_path), str(source)], check=True, capture_output=True)
    converted = read_image(tmp_path / "wb.nii.gz")
    assert converted.shape == (256, 1024, 2) and converted.modality == "nm" and "wb.json" in converted.metadata["modality_source"]
    assert system_response(converted, 4).pixel_size_mm == pytest.approx(2.26 / 4)  # the views' pixels, not the view step
    coarse, restored, bicubic = tmp_path / "x4.nii.gz", tmp_path / "sr.nii.gz", tmp_path / "bicubic.nii.gz"
    assert main(["degrade", str(tmp_path / "wb.nii.gz"), "-o", str(coarse), "--kind", "gamma-camera", "--seed", "3"]) == 0
    acquired = read_image(coarse)
    assert acquired.shape == (64, 256, 2) and acquired.spacing[:2] == pytest.approx((9.04, 9.04))
    assert main(["superres", str(coarse), "-o", str(restored)]) == 0
    assert json.loads(Path(f"{restored}.json").read_text())["planar_frames"] == {"frames": 2, "stack_axis": 2, "in_plane_axes": [0, 1]}
    assert main(["superres", str(coarse), "-o", str(bicubic), "--method", "bicubic"]) == 0
    original = np.clip(converted.numpy(), 0, None).astype(np.float64)
    fine, smooth = read_image(restored).numpy().astype(np.float64), read_image(bicubic).numpy().astype(np.float64)
    assert fine.shape == (256, 1024, 2)
    for view in range(2):
        assert fine[..., view].sum() == pytest.approx(acquired.numpy()[..., view].sum(), rel=1e-3)
        peak = original[..., view].max()
        psnr = [peak_signal_noise_ratio(original[..., view], image[..., view], data_range=peak) for image in (fine, smooth)]
        assert psnr[0] - psnr[1] > 2.0
