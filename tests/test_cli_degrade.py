"""``medrestore degrade`` end to end on .npy files: outputs, sidecar records and error exits."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import medrestore
from medrestore.cli.main import main
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.physics.degradations import RicianNoise, degradation_from_record
from medrestore.tasks.degrade import input_digest


def _write_npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def flat_image(tmp_path: Path) -> Path:
    """A 200×200 float32 image of value 10."""
    return _write_npy(tmp_path / "flat.npy", np.full((200, 200), 10.0, dtype=np.float32))


def test_gaussian_noise_output_and_sidecar(flat_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "noisy.npy"
    before = _sha256(flat_image)
    assert main(["degrade", str(flat_image), "-o", str(output), "--kind", "gaussian", "--sigma", "0.5", "--seed", "3"]) == 0
    assert "noisy.npy" in capsys.readouterr().out
    noisy = np.load(output)
    assert noisy.shape == (200, 200) and noisy.dtype == np.float32
    n = noisy.size
    assert abs(float(noisy.mean()) - 10.0) <= 5 * 0.5 / math.sqrt(n)
    assert abs(float(noisy.std()) - 0.5) <= 5 * 0.5 / math.sqrt(2 * n)
    assert _sha256(flat_image) == before  # the input is never modified
    sidecar = json.loads(Path(f"{output}.json").read_text())
    assert sidecar["degradation"] == {"kind": "gaussian", "sigma": 0.5, "relative": False, "seed": 3}
    assert sidecar["input"] == str(flat_image) and sidecar["input_sha256"] == before
    assert sidecar["output_shape"] == [200, 200] and sidecar["output_dtype"] == "float32"
    assert sidecar["medrestore_version"] == medrestore.__version__
    assert not [p.name for p in output.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_relative_sigma_is_recorded_and_rebuilds_the_transform(flat_image: Path, tmp_path: Path) -> None:
    output = tmp_path / "rician.npy"
    assert main(["degrade", str(flat_image), "-o", str(output), "--kind", "rician", "--relative-sigma", "0.03"]) == 0
    sidecar = json.loads(Path(f"{output}.json").read_text())
    transform, seed = degradation_from_record(sidecar["degradation"])
    assert transform == RicianNoise(0.03, relative=True) and seed == 0  # default seed, recorded
    # σ = 0.03 × 10 = 0.3; at SNR 33 the Rician mean is ≈ sqrt(ν² + σ²)
    noisy = np.load(output).astype(np.float64)
    assert abs(float(noisy.mean()) - math.sqrt(100 + 0.09)) <= 5 * 0.3 / math.sqrt(noisy.size)


def test_same_seed_same_output_other_seed_other_output(flat_image: Path, tmp_path: Path) -> None:
    outputs = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        output = tmp_path / f"{name}.npy"
        arguments = ["degrade", str(flat_image), "-o", str(output), "--kind", "speckle", "--looks", "2", "--seed", seed]
        assert main(arguments) == 0
        outputs.append(np.load(output))
    assert np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[0], outputs[2])


def test_blur_downsample_shape(tmp_path: Path) -> None:
    source = _write_npy(tmp_path / "ramp.npy", np.add.outer(np.arange(33.0), np.arange(20.0)).astype(np.float32))
    output = tmp_path / "small.npy"
    assert main(["degrade", str(source), "-o", str(output), "--kind", "blur-downsample", "--factor", "3"]) == 0
    small = np.load(output)
    assert small.shape == (11, 6)
    # a linear ramp is unchanged by a symmetric blur away from the borders; block centres at 3i + 1
    np.testing.assert_allclose(small[2:-2, 2:-2], np.add.outer(3 * np.arange(11.0) + 1, 3 * np.arange(6.0) + 1)[2:-2, 2:-2], atol=1e-4)
    sidecar = json.loads(Path(f"{output}.json").read_text())
    assert sidecar["degradation"]["fwhm"] == 3.0 and sidecar["input_shape"] == [33, 20]


def test_blur_downsample_keeps_world_positions_through_files(tmp_path: Path) -> None:
    affine = np.array([[0.0, -0.8, 0.0, 30.0], [0.6, 0.0, 0.0, -12.0], [0.0, 0.0, 2.0, 4.0], [0, 0, 0, 1]])
    rows, columns = np.meshgrid(np.arange(48.0), np.arange(40.0), indexing="ij")
    blob = np.exp(-((rows - 21.4) ** 2 + (columns - 17.7) ** 2) / (2 * 3.0**2)).astype(np.float32)
    source = write_image(Image.from_array(blob, affine=affine, spatial_ndim=2), tmp_path / "blob.npz")
    output = tmp_path / "blob_small.npz"
    assert main(["degrade", str(source), "-o", str(output), "--kind", "blur-downsample", "--factor", "2"]) == 0
    small = read_image(output)
    assert small.shape == (24, 20) and small.spacing == pytest.approx((1.2, 1.6))

    def world_centroid(image: Image) -> np.ndarray:
        data = image.numpy().astype(np.float64)
        grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in data.shape], indexing="ij")
        index = [float((data * axis).sum() / data.sum()) for axis in grid]
        return (image.affine @ np.array([*index, 0.0, 1.0]))[:3]

    # float32 storage limits the agreement to ~1e-5 mm; a half-voxel error would be 0.3 mm or more
    np.testing.assert_allclose(world_centroid(small), world_centroid(read_image(source)), atol=1e-4)


def test_poisson_counts_in_the_source_dtype(tmp_path: Path) -> None:
    source = _write_npy(tmp_path / "counts.npy", np.full((100, 100), 400, dtype=np.int16))
    output = tmp_path / "noisy.npy"
    arguments = ["degrade", str(source), "-o", str(output), "--kind", "poisson", "--counts", "400", "--dtype", "source"]
    assert main(arguments) == 0
    noisy = np.load(output)
    assert noisy.dtype == np.int16
    # counts at peak 400 rescaled to 400: Poisson(400) per pixel
    assert abs(float(noisy.mean()) - 400.0) <= 5 * math.sqrt(400.0 / noisy.size)
    assert abs(float(noisy.var()) - 400.0) <= 5 * math.sqrt((400.0 + 2 * 400.0**2) / noisy.size)
    assert json.loads(Path(f"{output}.json").read_text())["output_dtype"] == "int16"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--kind", "blur"], "unknown degradation kind 'blur'"),
        (["--kind", "gaussian", "--sigma", "0.1", "--looks", "3"], "--looks does not apply to --kind gaussian"),
        (["--kind", "speckle", "--sigma", "0.1"], "speckle: missing parameter(s) 'looks'"),
        (["--kind", "gaussian", "--sigma", "0.1", "--relative-sigma", "0.1"], "give --sigma or --relative-sigma"),
        (["--kind", "rician", "--sigma", "-1"], "rician: sigma must be a finite number >= 0"),
        (["--kind", "poisson", "--counts", "10", "--seed", "-4"], "seed must be an integer"),
        (["--kind", "speckle", "--looks", "2", "--form", "log"], "speckle: form must be one of"),
    ],
)
def test_bad_kind_or_parameter_exits_2(
    flat_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    output = tmp_path / "never.npy"
    assert main(["degrade", str(flat_image), "-o", str(output), *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error:") and message in error
    assert not output.exists() and not Path(f"{output}.json").exists()


def test_unreadable_input_and_overwriting_the_input_exit_2(
    flat_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.npy"
    assert main(["degrade", str(missing), "-o", str(tmp_path / "x.npy"), "--kind", "gaussian", "--sigma", "1"]) == 2
    assert "missing.npy" in capsys.readouterr().err
    before = _sha256(flat_image)
    assert main(["degrade", str(flat_image), "-o", str(flat_image), "--kind", "gaussian", "--sigma", "1"]) == 2
    assert "overwrite the input" in capsys.readouterr().err
    assert _sha256(flat_image) == before
    negative = _write_npy(tmp_path / "negative.npy", np.full((10, 10), -1.0, dtype=np.float32))
    assert main(["degrade", str(negative), "-o", str(tmp_path / "y.npy"), "--kind", "poisson", "--counts", "10"]) == 2
    assert f"{negative}: holds no positive value (minimum -1); --kind poisson" in capsys.readouterr().err


def test_input_digest_of_a_folder_hashes_its_sorted_files(tmp_path: Path) -> None:
    series = tmp_path / "series"
    (series / "sub").mkdir(parents=True)
    (series / "b.dcm").write_bytes(b"second")
    (series / "sub" / "a.dcm").write_bytes(b"first")
    lines = f"b.dcm {hashlib.sha256(b'second').hexdigest()}\nsub/a.dcm {hashlib.sha256(b'first').hexdigest()}\n"
    assert input_digest(series) == hashlib.sha256(lines.encode()).hexdigest()
    (series / "b.dcm").write_bytes(b"changed")
    assert input_digest(series) != hashlib.sha256(lines.encode()).hexdigest()
    assert input_digest(series / "sub" / "a.dcm") == hashlib.sha256(b"first").hexdigest()
