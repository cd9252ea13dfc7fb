"""`recon --method auto` against BART's hand-tuned `pics` on 8-coil, ~7.9× Poisson-disc brain slices.

A stand-in for a held-out measured slice of that kind (which we do not have): real brain images
never used for training (ANTs ``r64slice.jpg``, ``r85slice.jpg``; Colin27 axial z = 122, 126),
at 256 × 256, turned into 8-coil k-space (birdcage coils, a smooth object phase, complex noise
of ``--noise`` × the RMS k-space amplitude), undersampled with a 2-D variable-density
Poisson-disc mask (R = 7.9, fully sampled centre fraction 0.08, seed 0). Reference: the RSS
of the fully sampled noisy k-space (as a scanner's reference would be). Scores: fastMRI PSNR
and SSIM after the least-squares intensity fit (:func:`medrestore.tasks.recon.score_reconstruction`).

Rows, in one run with the same ESPIRiT maps (``RECON_ESPIRIT``) for every method:

* ours, no per-image tuning: ``auto`` (= ``cs-wavelet``: L1-wavelet with random shifts, λ
  referenced to the noise of the outer k-space), ``cs-tv``, ``sense``; wall seconds of the whole
  ``recon`` (ESPIRiT included) with ``--threads`` threads; and two ablations of ``auto``:
  without the random shifts (``cs-wavelet-fixed``) and with the scale rule
  ``λ = 1e-3 max|Aᴴy|`` instead of the noise-referenced weight (``cs-wavelet-scale-rule``);
* BART ``pics`` (its own data scaling, its default iterations) at its usual ``λ = 0.01`` and
  with ``λ`` tuned on each image (the best of ``LAMBDAS``, an oracle no user has), for
  ``-R W`` (L1-wavelet) and ``-R T`` (TV).

Usage::

    python benchmarks/mri_recon_poisson8.py --threads 2 --output results/mri_recon_poisson8.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.fft import ifftc, rss
from medrestore.core.kspace import KSpace
from medrestore.core.random import make_generator
from medrestore.data.mri_recon import MRISliceSource, load_brain_slices
from medrestore.io.raw_bart import read_cfl, write_cfl
from medrestore.physics.mri.espirit import RECON_ESPIRIT, espirit_maps
from medrestore.physics.mri.masks import MaskSpec, sample_mask
from medrestore.physics.mri.sense import cartesian_sense
from medrestore.physics.mri.simulation import birdcage_coil_maps, simulate_kspace, smooth_phase
from medrestore.solvers import l1_wavelet_reconstruction
from medrestore.physics.mri.kspace_noise import kspace_noise_std
from medrestore.solvers.regularisation import DEFAULT_RELATIVE_WEIGHTS, data_scale, relative_weight
from medrestore.tasks.recon import RECON_WAVELET, ReconOptions, reconstruct, score_reconstruction

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brain-mri-ants"
SOURCES = (
    MRISliceSource(files=(str(DATA / "r64slice.jpg"), str(DATA / "r85slice.jpg"))),
    MRISliceSource(files=(str(DATA / "ch2.nii.gz"),), slice_range=(0.68, 0.71), slice_step=4),
)
LAMBDAS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
SIZE = 256


def acquisition(image: torch.Tensor, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(undersampled k-space (8, N, N), mask, reference)`` of one magnitude slice."""
    generator = make_generator(seed)
    shape = tuple(image.shape)
    obj = torch.polar(image, smooth_phase(shape, generator, max_phase=1.0))  # type: ignore[arg-type]
    full = simulate_kspace(obj, birdcage_coil_maps(shape, 8), noise, generator)  # type: ignore[arg-type]
    mask = torch.broadcast_to(sample_mask(MaskSpec("poisson", 7.9, 0.08, 0), shape), shape)
    reference = rss(ifftc(full, 2), coil_axis=0)
    return full * mask, mask, reference


def bart(kspace: torch.Tensor, maps: torch.Tensor, regulariser: str, threads: int) -> tuple[np.ndarray, float]:
    """BART ``pics -R regulariser`` (its own scaling and iterations): image and wall seconds."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        write_cfl(kspace.numpy()[:, None], base / "kspace")
        write_cfl(maps.numpy()[:, None], base / "maps")
        start = time.perf_counter()
        subprocess.run(["bart", "pics", "-d0", "-R", regulariser, str(base / "kspace"), str(base / "maps"), str(base / "out")],
                       check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        seconds = time.perf_counter() - start
        return read_cfl(base / "out").reshape(kspace.shape[-2:]), seconds


def evaluate(name: str, image: torch.Tensor, noise: float, seed: int, threads: int) -> dict[str, Any]:
    kspace, mask, reference = acquisition(image, noise, seed)
    scale = float(reference.max())
    kspace, reference = kspace / scale, reference / scale
    rows: dict[str, Any] = {}
    data = KSpace(kspace, tuple(kspace.shape[-2:]), mask.to(torch.bool), None, np.eye(4), {})
    for method in ("auto", "cs-tv", "sense"):
        start = time.perf_counter()
        result = reconstruct(data, ReconOptions(method=method))
        rows[method] = {**score_reconstruction(result.image.data, reference), "seconds": time.perf_counter() - start}
    maps, _ = espirit_maps(kspace, mask, RECON_ESPIRIT)
    operator = cartesian_sense(maps, mask)
    level = data_scale(operator, kspace)
    relative = relative_weight("cs-wavelet", level, kspace_noise_std(kspace, mask))  # recon's weight
    fixed, _ = l1_wavelet_reconstruction(operator, kspace / level, relative, 100)
    rows["cs-wavelet-fixed"] = score_reconstruction(fixed.abs().to(torch.float32), reference)
    scale_rule, _ = l1_wavelet_reconstruction(operator, kspace / level, DEFAULT_RELATIVE_WEIGHTS["cs-wavelet"], 100, RECON_WAVELET)
    rows["cs-wavelet-scale-rule"] = score_reconstruction(scale_rule.abs().to(torch.float32), reference)
    if shutil.which("bart") is not None:
        for kind in ("W", "T"):
            sweep = {}
            for lam in LAMBDAS:
                out, seconds = bart(kspace, maps, f"{kind}:3:0:{lam}", threads)
                sweep[lam] = {**score_reconstruction(torch.from_numpy(np.abs(out)).to(torch.float32), reference), "seconds": seconds}
            rows[f"bart-{kind}@0.01"] = sweep[0.01]
            best = max(sweep, key=lambda lam: sweep[lam]["psnr"])
            rows[f"bart-{kind}-tuned"] = {**sweep[best], "lambda": best}
    print(name, {k: round(v["psnr"], 2) for k, v in rows.items()}, flush=True)
    return {"slice": name, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.02, help="complex noise std relative to the RMS k-space amplitude")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for index, (name, image) in enumerate(s for source in SOURCES for s in load_brain_slices(source, SIZE)):
        results.append(evaluate(name, image, args.noise, index, args.threads))
    methods = list(results[0]["rows"])
    lines = ["| method | PSNR (dB) | SSIM | seconds |", "|---|---|---|---|"]
    for method in methods:
        rows = [r["rows"][method] for r in results]
        seconds = f"{np.mean([r['seconds'] for r in rows]):.2f}" if "seconds" in rows[0] else ""
        lines.append(f"| {method} | {np.mean([r['psnr'] for r in rows]):.2f} | {np.mean([r['ssim'] for r in rows]):.3f} | {seconds} |")
    print("\n".join(lines))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"noise": args.noise, "threads": args.threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
