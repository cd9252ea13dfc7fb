"""Non-Cartesian BART data (k-space + trajectory files) made by the real `bart` binary.

Established here against BART itself: the trajectory's units (grid units of BART's matrix,
``1/OS`` between readout samples), its axes (coordinate 0 = READ = our ``kx``), our NUFFT adjoint
against `bart nufft -a`, gradient delays in `bart traj -q`'s axes next to `bart estdelay`, and
reconstructions next to `bart nufft -i`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bart_helpers import bart, needs_bart
from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.io import read_kspace
from medrestore.io.raw_bart import read_cfl, write_cfl
from medrestore.physics.mri.nufft import NUFFTOperator
from medrestore.physics.mri.trajectory import spoke_geometry

pytestmark = needs_bart

MATRIX = 64
SPOKES = 48


def radial(folder: Path, delay: str | None = None, transverse: bool = False, noise: float = 0.0) -> None:
    """Golden-angle spokes, 2× oversampled, centred: nominal trajectory ``t``, k-space ``k`` of the 8-coil phantom
    acquired on the trajectory delayed by ``delay`` (``DX:DY:DXY``; ``-O`` keeps the transverse part), with
    `bart noise` of standard deviation ``noise · max|k|``."""
    options = ["-x", MATRIX, "-y", SPOKES, "-r", "-G", "-o", 2, "-c"]
    bart(folder, "traj", *options, "t")
    delayed = "t"
    if delay is not None:
        bart(folder, "traj", *options, *(["-O"] if transverse else []), "-q", delay, "t_actual")
        delayed = "t_actual"
    bart(folder, "phantom", "-k", "-s", 8, "-t", delayed, "k" if noise == 0 else "k_clean")
    if noise > 0:
        peak = float(np.abs(read_cfl(folder / "k_clean")).max())
        bart(folder, "noise", "-s", 1, "-n", (noise * peak) ** 2, "k_clean", "k")


def test_trajectory_units_and_axes(tmp_path: Path) -> None:
    """`traj -x 8 -o 2 -c`: 16 samples 1/2 apart in [-4, 4); coordinate 0 → our kx (last), 1 → our ky; matrix 8 × 8."""
    bart(tmp_path, "traj", "-x", 8, "-y", 4, "-r", "-o", 2, "-c", "t")
    bart(tmp_path, "phantom", "-k", "-s", 2, "-t", "t", "k")
    kspace = read_kspace(tmp_path / "k.cfl", trajectory=tmp_path / "t.cfl")
    coordinates = read_cfl(tmp_path / "t").real  # C order: (spokes, samples, 3)
    assert tuple(kspace.data.shape) == (2, 4, 16) and kspace.image_shape == (8, 8)
    np.testing.assert_array_equal(kspace.trajectory[..., 0].numpy(), coordinates[..., 1])
    np.testing.assert_array_equal(kspace.trajectory[..., 1].numpy(), coordinates[..., 0])
    geometry = spoke_geometry(kspace.trajectory)
    assert geometry.sample_spacing == pytest.approx(0.5)
    np.testing.assert_allclose(geometry.positions[0].numpy(), (np.arange(16) - 8) / 2, atol=1e-6)  # DC at sample 8
    np.testing.assert_allclose(geometry.directions[0].numpy(), [1.0, 0.0], atol=1e-6)  # BART's first spoke runs along ky
    assert kspace.metadata["delay_axes"] == "bart"


def test_our_nufft_adjoint_equals_barts(tmp_path: Path) -> None:
    """Same samples, same trajectory: our adjoint NUFFT is `bart nufft -a` (correlation 1, same scale) — units, axes and sign agree."""
    radial(tmp_path)
    bart(tmp_path, "nufft", "-a", "-d", f"{MATRIX}:{MATRIX}:1", "t", "k", "adjoint")
    kspace = read_kspace(tmp_path / "k.cfl", trajectory=tmp_path / "t.cfl")
    ours = NUFFTOperator(kspace.trajectory, kspace.image_shape).adjoint(kspace.data).numpy()
    theirs = read_cfl(tmp_path / "adjoint").reshape(ours.shape)  # [x, y, 1, coils] → (coils, y, x)
    correlation = abs(np.vdot(ours, theirs)) / np.linalg.norm(ours) / np.linalg.norm(theirs)
    assert correlation > 0.9999 and np.linalg.norm(theirs) / np.linalg.norm(ours) == pytest.approx(1.0, abs=0.01)


def bart_estdelay(folder: Path, *flags: str) -> list[float]:
    return [float(value) for value in bart(folder, "estdelay", *flags, "t", "k").strip().split(":")]


def ours(folder: Path, capsys: pytest.CaptureFixture[str], method: str) -> dict:
    argv = ["estimate-delay", str(folder / "k.cfl"), "--trajectory", str(folder / "t.cfl"), "--method", method, "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["delay_axes"] == "bart"
    return report


@pytest.mark.parametrize(("delay", "transverse"), [
    ("0.5:-0.3:0", True), ("0.3:-0.2:0.15", True), ("0.5:-0.3:0", False), ("0.3:-0.2:0.15", False),
])
def test_delays_are_reported_in_bart_axes_like_bart_estdelay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], delay: str, transverse: bool
) -> None:
    """Delays simulated by `bart traj -q` (noise-free) come back with BART's signs and axes.

    RING fits both delay models (the whole shift ``S·n``, `-O`, and its part along the spoke,
    BART's default) and is exact on either (1e-3), naming the model; `bart estdelay -R` is exact on
    `-O` data only. Our AC-adaptive is BART's estimator: exact along the spoke (0.005, as `bart
    estdelay`), and on `-O` data biased like `bart estdelay` (within 0.005 of it).
    """
    radial(tmp_path, delay, transverse)
    truth = [float(value) for value in delay.split(":")]
    ring = ours(tmp_path, capsys, "ring")
    np.testing.assert_allclose([ring["delay_x"], ring["delay_y"], ring["delay_xy"]], truth, atol=1e-3)
    assert ring["decision"]["estimates"][0]["model"] == ("full" if transverse else "along")
    ac = ours(tmp_path, capsys, "ac-adaptive")
    ac_delay = [ac["delay_x"], ac["delay_y"], ac["delay_xy"]]
    theirs = bart_estdelay(tmp_path)
    np.testing.assert_allclose(ac_delay, theirs, atol=0.005)
    if not transverse:
        np.testing.assert_allclose(ac_delay, truth, atol=0.005)
    else:
        np.testing.assert_allclose(bart_estdelay(tmp_path, "-R"), truth, atol=0.02)


@pytest.mark.parametrize("transverse", [True, False])
def test_default_on_noisy_bart_data_is_as_good_as_bart_estdelay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], transverse: bool
) -> None:
    """`bart noise` at the default noise of simulate-radial (0.005 of max|k|): the default (`auto`: RING checked by
    AC-adaptive) is within 0.002 samples RMS of BART's `estdelay` or better, on both delay models."""
    radial(tmp_path, "0.5:-0.3:0.1", transverse, noise=0.005)
    truth = np.array([0.5, -0.3, 0.1])
    report = ours(tmp_path, capsys, "auto")
    assert report["applied"] == "ring" and not report["decision"]["fallback"]
    error = float(np.sqrt(np.mean((np.array([report["delay_x"], report["delay_y"], report["delay_xy"]]) - truth) ** 2)))
    bart_error = float(np.sqrt(np.mean((np.array(bart_estdelay(tmp_path)) - truth) ** 2)))
    assert error <= bart_error + 0.002 and error < 0.005, (error, bart_error)


def test_pure_noise_is_not_corrected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """BART's trajectory with k-space of pure noise: both estimators unsound, no correction, one warning line."""
    radial(tmp_path)
    bart(tmp_path, "scale", 0, "k", "zero")
    bart(tmp_path, "noise", "-s", 3, "zero", "k")
    assert main(["estimate-delay", str(tmp_path / "k.cfl"), "--trajectory", str(tmp_path / "t.cfl"), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["applied"] is None and report["delay_x"] is None and report["decision"]["fallback"]
    assert {failure["method"] for failure in report["decision"]["failures"]} == {"ring", "ac-adaptive"}
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and "not corrected" in warning[0] and "k.cfl" in warning[0], warning


def _psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (peak of the truth) after the least-squares intensity gain."""
    gain = float((image * truth).sum() / (image * image).sum())
    return float(10 * np.log10(truth.max() ** 2 / np.mean((gain * image - truth) ** 2)))


def test_reconstruction_with_the_nominal_trajectory_and_bart_delays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """k-space acquired with `-O -q 0.5:-0.3:0`, reconstructed from the nominal trajectory.

    * gridding without correction matches `bart nufft -i -m 10` + `rss` on the same data (correlation
      ≥ 0.99; density compensation vs 10 iterations of unregularised CG, whose image drifts from the
      gridded one as further iterations amplify the corners, 0.98–0.99 at BART's default);
    * auto (RING then CS-TV) reports the delay in BART's axes and beats no correction;
    * `--delay 0.5 -0.3 0` (BART's axes) beats no correction, which beats the same numbers swapped or negated.
    """
    radial(tmp_path, "0.5:-0.3:0", transverse=True)
    bart(tmp_path, "phantom", "-x", MATRIX, "truth")
    truth = np.abs(read_cfl(tmp_path / "truth"))
    bart(tmp_path, "nufft", "-i", "-m", 10, "-d", f"{MATRIX}:{MATRIX}:1", "t", "k", "coils")
    bart(tmp_path, "rss", 8, "coils", "bart_gridded")
    base = ["recon", str(tmp_path / "k.cfl"), "--trajectory", str(tmp_path / "t.cfl"), "--json"]

    def reconstruct(name: str, *options: str) -> tuple[np.ndarray, dict[str, object]]:
        assert main([*base, "-o", str(tmp_path / f"{name}.npy"), *options]) == 0
        return np.load(tmp_path / f"{name}.npy"), json.loads(capsys.readouterr().out)

    gridded, _ = reconstruct("gridded", "--method", "zero-filled", "--delay-correction", "none")
    theirs = np.abs(read_cfl(tmp_path / "bart_gridded"))
    assert np.vdot(gridded, theirs) / np.linalg.norm(gridded) / np.linalg.norm(theirs) > 0.99
    auto, report = reconstruct("auto")
    assert report["delay_axes"] == "bart" and np.allclose(report["delay"], [0.5, -0.3, 0.0], atol=0.02)
    uncorrected, _ = reconstruct("uncorrected", "--delay-correction", "none")
    assert _psnr(auto, truth) > _psnr(uncorrected, truth) + 0.3
    scores = {}
    for name, delay in {"right": ["0.5", "-0.3", "0"], "none": ["0", "0"], "swapped": ["-0.3", "0.5"], "negated": ["-0.5", "0.3"]}.items():
        image, report = reconstruct(f"sense_{name}", "--method", "sense", "--delay", *delay)
        assert report["delay_correction"] == "given"
        scores[name] = _psnr(image, truth)
    assert scores["right"] > scores["none"] + 0.3 > scores["swapped"] + 0.3 and scores["none"] > scores["negated"] + 0.3


def test_pairing_errors_name_the_file(tmp_path: Path) -> None:
    radial(tmp_path)
    bart(tmp_path, "traj", "-x", MATRIX, "-y", SPOKES - 1, "-r", "-o", 2, "t_short")
    with pytest.raises(InputError, match=r"t_short\.hdr: trajectory of 128 samples × 47 spokes does not match"):
        read_kspace(tmp_path / "k.cfl", trajectory=tmp_path / "t_short.cfl")
    bart(tmp_path, "phantom", "-k", "-x", 16, "-s", 2, "cartesian")
    with pytest.raises(InputError, match=r"cartesian\.hdr: non-Cartesian BART k-space has READ = 1"):
        read_kspace(tmp_path / "cartesian.cfl", trajectory=tmp_path / "t.cfl")
    np.save(tmp_path / "k.npy", np.ones((2, 4, 8), dtype=np.complex64))
    with pytest.raises(InputError, match=r"t\.cfl: a separate trajectory goes with BART k-space"):
        read_kspace(tmp_path / "k.npy", trajectory=tmp_path / "t.cfl")
    write_cfl(np.ones((SPOKES, 2 * MATRIX, 3), dtype=np.complex64) * 1j, tmp_path / "t_imaginary")
    with pytest.raises(InputError, match=r"t_imaginary\.hdr: a BART trajectory holds real coordinates"):
        read_kspace(tmp_path / "k.cfl", trajectory=tmp_path / "t_imaginary.cfl")
