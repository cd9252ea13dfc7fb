"""``medrestore degrade --kind gamma-camera``: outputs, geometry, recorded parameters and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from medrestore.cli.main import main
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.physics.degradations import GammaCamera, degradation_from_record


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
    volume = tmp_path / "volume.npy"
    np.save(volume, np.ones((8, 8, 8), dtype=np.float32))
    assert main(["degrade", str(volume), "-o", str(tmp_path / "v.npy"), "--kind", "gamma-camera", "--scale", "2"]) == 2
    assert "planar (2-D)" in capsys.readouterr().err
