"""Radial MRI benchmark: gradient-delay estimation, reconstruction with/without correction, NUFFT speed.

Data: real brain slices (``../shared/data/brain-mri-ants/r*slice.jpg``), 8 simulated birdcage
coils, golden-angle full spokes, 2× readout oversampling, delays (x, y) = (0.7, −0.4) samples,
complex noise of standard deviation ``noise · max|y|``.

1. Delay estimation: RMS error (over x, y, xy and over slices × seeds) of RING and AC-adaptive
   versus the number of spokes and the noise; BART's ``estdelay`` (AC-adaptive, ``-R`` RING
   with its default central region of 1.5 samples, and ``-R -r 3``) on the same data when the
   ``bart`` command is installed.
2. Reconstruction (128² crop of the slices, 48 spokes): PSNR/SSIM (fastMRI convention after a
   least-squares intensity fit) of gridding, CG-SENSE, L1-wavelet and TV without delays, with
   uncorrected delays and after RING / AC-adaptive correction.
3. NUFFT: accuracy against the exact non-uniform DFT (32² grid, 16 spokes) and time of the
   adjoint (gridding) on 256², 64 spokes × 512 samples, 8 coils, one thread: our FINUFFT
   operator, sigpy's ``nufft_adjoint`` and torchkbnufft.

Usage::

    python benchmarks/radial.py [--json results.json] [--quick] [--sections nufft delays recon]
    python benchmarks/radial.py --figure benchmarks/figures/radial_delay_correction.png
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medrestore.io import read_image
from medrestore.io.raw_bart import write_cfl
from medrestore.physics.mri.delay_estimation import estimate_delay_ac_adaptive, estimate_delay_ring
from medrestore.physics.mri.density import pipe_menon_density
from medrestore.physics.mri.nufft import NUFFTOperator, nonuniform_dft
from medrestore.physics.mri.radial import gridding, radial_coil_maps
from medrestore.physics.mri.simulation import birdcage_coil_maps
from medrestore.physics.mri.sense import SenseOperator
from medrestore.physics.mri.trajectory import GradientDelay, RadialSpec, delayed_trajectory, radial_trajectory
from medrestore.tasks.radial import RadialReconOptions, solve_radial
from medrestore.tasks.recon import score_reconstruction
from medrestore.core.fft import rss

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brain-mri-ants"
TRUE_DELAY = GradientDelay(0.7, -0.4)


def brain_slices(size: int | None = None) -> list[torch.Tensor]:
    slices = []
    for path in sorted(DATA.glob("r*slice.jpg")):
        image = read_image(path).data.to(torch.float32)
        if size is not None:
            image = torch.nn.functional.avg_pool2d(image[None, None], 2)[0, 0]
            start = (image.shape[0] - size) // 2
            image = image[start : start + size, start : start + size].contiguous()
        slices.append(image / image.max())
    return slices


def acquire(image: torch.Tensor, spokes: int, delay: GradientDelay, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    matrix = image.shape[-1]
    nominal = radial_trajectory(RadialSpec(matrix, spokes, 2.0, golden=True))
    operator = SenseOperator(birdcage_coil_maps((matrix, matrix), 8), NUFFTOperator(delayed_trajectory(nominal, delay), (matrix, matrix), 1e-6))
    data = operator.forward(image.to(torch.complex64))
    if noise > 0:
        generator = torch.Generator().manual_seed(seed)
        data = data + noise * float(data.abs().max()) / math.sqrt(2) * torch.complex(
            torch.randn(data.shape, generator=generator), torch.randn(data.shape, generator=generator))
    return data, nominal


def bart_estimate(data: torch.Tensor, nominal: torch.Tensor, ring: bool, folder: Path, region: float | None = None) -> GradientDelay | None:
    """BART estdelay on the same data: trajectory (3, readout, spokes) in samples, data (1, readout, spokes, coils)."""
    if shutil.which("bart") is None:
        return None
    trajectory = nominal.numpy() * 2.0  # grid units → samples (2× oversampling)
    # write_cfl stores C-order arrays as BART dims in reverse order: (spokes, readout, 3) → [3, readout, spokes]
    bart_trajectory = np.stack([trajectory[..., 0], trajectory[..., 1], np.zeros_like(trajectory[..., 0])], axis=-1)
    write_cfl(bart_trajectory.astype(np.complex64), folder / "traj")
    write_cfl(data.numpy()[..., None], folder / "data")  # (coils, spokes, readout, 1) → [1, readout, spokes, coils]
    options = (["-R"] if ring else []) + ([] if region is None else ["-r", str(region)])
    command = ["bart", "estdelay", *options, str(folder / "traj"), str(folder / "data")]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    x, y, xy = (float(v) for v in output.split(":"))
    return GradientDelay(x, y, xy)


def delay_table(spoke_counts: list[int], noises: list[float], seeds: int) -> list[dict]:
    slices = brain_slices()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for noise in noises:
            for spokes in spoke_counts:
                errors: dict[str, list[float]] = {"ring": [], "ac-adaptive": [], "bart-ac": [], "bart-ring": [], "bart-ring-r3": []}
                seconds = {"ring": 0.0, "ac-adaptive": 0.0}
                for index, image in enumerate(slices):
                    for seed in range(seeds):
                        data, nominal = acquire(image, spokes, TRUE_DELAY, noise, 100 * index + seed)
                        for name, estimator in (("ring", estimate_delay_ring), ("ac-adaptive", estimate_delay_ac_adaptive)):
                            start = time.perf_counter()
                            estimate = estimator(data, nominal)
                            seconds[name] += time.perf_counter() - start
                            errors[name].append(estimate.delay.error(TRUE_DELAY) ** 2)
                        for name, ring, region in (("bart-ac", False, None), ("bart-ring", True, None), ("bart-ring-r3", True, 3.0)):
                            bart = bart_estimate(data, nominal, ring, Path(folder), region)
                            if bart is not None:
                                errors[name].append(bart.error(TRUE_DELAY) ** 2)
                count = len(slices) * seeds
                row = {"noise": noise, "spokes": spokes, "cases": count,
                       **{f"rms_{name}": (math.sqrt(np.mean(values)) if values else None) for name, values in errors.items()},
                       **{f"seconds_{name}": seconds[name] / count for name in seconds}}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def recon_table(spokes: int, noise: float, size: int, slice_count: int) -> list[dict]:
    slices = brain_slices(size)[:slice_count]
    conditions = ("no delay", "delay, uncorrected", "delay, RING", "delay, AC-adaptive")
    methods = ("zero-filled", "sense", "cs-wavelet", "cs-tv")
    scores: dict[tuple[str, str], list[dict]] = {}
    for index, image in enumerate(slices):
        for condition in conditions:
            delay = GradientDelay() if condition == "no delay" else TRUE_DELAY
            data, nominal = acquire(image, spokes, delay, noise, 7 + index)
            trajectory = nominal
            if condition == "delay, RING":
                trajectory = delayed_trajectory(nominal, estimate_delay_ring(data, nominal).delay)
            elif condition == "delay, AC-adaptive":
                trajectory = delayed_trajectory(nominal, estimate_delay_ac_adaptive(data, nominal).delay)
            weights = pipe_menon_density(trajectory, (size, size))
            maps = radial_coil_maps(data, trajectory, (size, size), weights)
            for method in methods:
                start = time.perf_counter()
                if method == "zero-filled":
                    result = rss(gridding(data, trajectory, (size, size), weights), coil_axis=0)
                else:
                    result, _, _, _ = solve_radial(method, data, trajectory, weights, maps, RadialReconOptions(method))
                seconds = time.perf_counter() - start
                score = score_reconstruction(result.abs().to(torch.float32), image)
                scores.setdefault((condition, method), []).append({**score, "seconds": seconds})
    rows = []
    for (condition, method), values in scores.items():
        row = {"condition": condition, "method": method, "psnr": float(np.mean([v["psnr"] for v in values])),
               "ssim": float(np.mean([v["ssim"] for v in values])), "seconds": float(np.mean([v["seconds"] for v in values]))}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def _time(function, repeats: int = 5) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def nufft_table() -> list[dict]:
    import sigpy
    import torchkbnufft

    generator = torch.Generator().manual_seed(0)
    small = radial_trajectory(RadialSpec(32, 16, 2.0, golden=True)) + 0.137
    image = torch.randn(32, 32, dtype=torch.complex64, generator=generator)
    exact = nonuniform_dft(image, small).numpy()

    def relative(values: np.ndarray) -> float:
        return float(np.linalg.norm(values - exact) / np.linalg.norm(exact))

    big = radial_trajectory(RadialSpec(256, 64, 2.0, golden=True))
    samples = torch.randn(8, 64, 512, dtype=torch.complex64, generator=generator)
    rows = []
    for tolerance in (1e-4, 1e-5, 1e-6):
        error = relative(NUFFTOperator(small, (32, 32), tolerance).forward(image).numpy())
        operator = NUFFTOperator(big, (256, 256), tolerance)
        rows.append({"library": f"medrestore (finufft, eps {tolerance:g})", "relative_error": error,
                     "adjoint_seconds": _time(lambda: operator.adjoint(samples))})
    # sigpy: coordinates in grid units, same orthonormal centred convention
    coordinates = small.numpy()
    for width, oversampling in ((4, 1.25), (6, 1.25), (8, 2.0)):
        error = relative(sigpy.nufft(image.numpy(), coordinates, oversamp=oversampling, width=width))
        big_coordinates, values = big.numpy(), samples.numpy()
        seconds = _time(lambda: sigpy.nufft_adjoint(values, big_coordinates, (8, 256, 256), oversamp=oversampling, width=width))
        rows.append({"library": f"sigpy 0.1.27 (width {width}, oversamp {oversampling:g})", "relative_error": error, "adjoint_seconds": seconds})
    # torchkbnufft: ω = 2π k / N; its 'ortho' norm divides by the oversampled grid's size (factor 2 in 2-D)
    omega = (2 * math.pi * small.reshape(-1, 2).T / 32).to(torch.float32)
    forward = torchkbnufft.KbNufft(im_size=(32, 32))
    values = 2.0 * forward(image[None, None], omega, norm="ortho")[0, 0].reshape(small.shape[:-1])
    adjoint = torchkbnufft.KbNufftAdjoint(im_size=(256, 256))
    big_omega = (2 * math.pi * big.reshape(-1, 2).T / 256).to(torch.float32)
    seconds = _time(lambda: adjoint(samples.reshape(1, 8, -1), big_omega))
    rows.append({"library": "torchkbnufft 1.5.2 (defaults)", "relative_error": relative(values.numpy()), "adjoint_seconds": seconds})
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def streak_figure(path: Path, spokes: int = 64, noise: float = 0.001) -> dict:
    """Gridding and TV of one brain slice: delay-free, delayed uncorrected, RING-corrected (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = brain_slices()[0]
    size = image.shape[-1]
    panels, scores = [], {}
    for label, delay, correct in (("no delay", GradientDelay(), False), ("delay (0.7, -0.4), uncorrected", TRUE_DELAY, False),
                                  ("delay, RING-corrected", TRUE_DELAY, True)):
        data, nominal = acquire(image, spokes, delay, noise, 11)
        trajectory = delayed_trajectory(nominal, estimate_delay_ring(data, nominal).delay) if correct else nominal
        weights = pipe_menon_density(trajectory, (size, size))
        grid = rss(gridding(data, trajectory, (size, size), weights), coil_axis=0)
        maps = radial_coil_maps(data, trajectory, (size, size), weights)
        tv, _, _, _ = solve_radial("cs-tv", data, trajectory, weights, maps, RadialReconOptions("cs-tv"))
        for method, result in (("gridding", grid), ("TV", tv.abs())):
            score = score_reconstruction(result.to(torch.float32), image)
            scores[f"{label} / {method}"] = score["psnr"]
            panels.append((f"{method}, {label}\nPSNR {score['psnr']:.1f} dB", result / result.max()))
    figure, axes = plt.subplots(2, 3, figsize=(12, 8.4))
    for index, (title, result) in enumerate(panels):
        axis = axes[index % 2, index // 2]
        axis.imshow(result.numpy(), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle(f"{spokes} golden-angle spokes, 8 coils, 2x oversampled readout, brain slice r16")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    print(json.dumps(scores), flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer spokes, noise levels and slices")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", default=None, help="only write the streak figure (PNG) to this path")
    parser.add_argument("--sections", nargs="+", choices=("nufft", "delays", "recon"), default=["nufft", "delays", "recon"],
                        help="which tables to measure (default all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.figure:
        streak_figure(Path(args.figure))
        return
    results: dict[str, list[dict]] = {}
    if "nufft" in args.sections:
        results["nufft"] = nufft_table()
    spoke_counts = [8, 16, 32] if args.quick else [8, 16, 32, 64, 128]
    noises = [0.0, 0.001] if args.quick else [0.0, 0.001, 0.003]
    if "delays" in args.sections:
        results["delays"] = delay_table(spoke_counts, noises, 1)
    if "recon" in args.sections:
        results["recon"] = recon_table(48, 0.001, 128, 1 if args.quick else 3)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
