"""``dct-mlem`` with the noise level measured on the counts against Poisson's σ = 1, on Poisson and super-Poisson chains.

``dct-mlem`` thresholds the DCT of Anscombe-transformed counts at 2.7 σ with σ = 1, the level of Poisson counts.
A real camera's counts are over-dispersed (the shared flood: variance 1.45 × the mean, ``nm_real.py``), so
after the transform σ ≈ √1.45 ≈ 1.2. :func:`~medrestore.solvers.dct_denoise.count_noise_sigma` measures σ on
each frame (patch PCA of the transformed counts, only where the response is at least 1.5 coarse pixels wide,
never below 1); this script scores both choices
(``CountSuperResolution.estimate_noise``) on

* the real images of ``nm_real.py`` and the simulated sets of ``nm_superres.py`` through the usual chain
  (``degrade --kind gamma-camera`` defaults: a Poisson draw, seed = the image's index), and
* the same chain with counts as over-dispersed as the real flood's: a negative-binomial draw of the
  camera model's expected counts with variance ``--fano`` × the mean
  (:func:`~medrestore.physics.noise.super_poisson_counts`, same seeds).

PSNR against the original (``default`` convention), per set the mean and the worst image's difference.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/nm_noise_level.py          # about 3 minutes on one thread
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

import nm_real as real
import nm_superres as bench
from medrestore.core.random import make_generator
from medrestore.physics.degradations import GammaCamera
from medrestore.physics.noise import super_poisson_counts
from medrestore.tasks.superres import PlanarAcquisition, SystemResponse, load_super_resolution

FLOOD_FANO = 1.45


def coarse_counts(image: bench.TestImage, seed: int, fano: float) -> torch.Tensor:
    """The ×4 acquisition of ``image``: the default camera's Poisson draw, or a negative-binomial one (``fano > 1``)."""
    if fano == 1.0:
        return bench.degrade(image, seed)
    expected = GammaCamera(pixel_size_mm=image.pixel_size_mm).expected_counts(image.original)
    return super_poisson_counts(expected, fano, make_generator(seed))


def run(fano: float) -> dict[str, dict[str, dict[str, object]]]:
    poisson = load_super_resolution("dct-mlem", bench.SCALE)
    measured = dataclasses.replace(poisson, estimate_noise=True)
    sets = {f"real: {name}": [(index, bench.TestImage(name, o, o, p))] for index, (name, o, p) in enumerate(real.real_images())}
    sets.update({f"simulated: phantoms {p:g} mm": list(enumerate(bench.phantom_images(p))) for p in bench.PHANTOM_PIXEL_SIZES})
    sets["simulated: bone-scans"] = list(enumerate(bench.bone_scan_images()))
    results: dict[str, dict[str, dict[str, object]]] = {}
    for chain, level in (("Poisson", 1.0), (f"variance {fano:g} × mean", fano)):
        results[chain] = {}
        for set_name, images in sets.items():
            fixed, estimated, sigmas = [], [], []
            for seed, image in images:
                coarse = coarse_counts(image, seed, level)
                fwhm = SystemResponse(PlanarAcquisition(), image.pixel_size_mm, "benchmark").fwhm_pixels
                sigmas.append(measured.noise_sigma(coarse, fwhm)["estimate"])  # type: ignore[index]
                fixed.append(bench.score(poisson(coarse, fwhm), image.original, coarse)["psnr"])
                estimated.append(bench.score(measured(coarse, fwhm), image.original, coarse)["psnr"])
            known = [s for s in sigmas if s is not None]
            results[chain][set_name] = {
                "images": len(images), "psnr_sigma_1": float(np.mean(fixed)), "psnr_measured": float(np.mean(estimated)),
                "gain": float(np.mean(estimated) - np.mean(fixed)), "worst_image_gain": float(min(np.subtract(estimated, fixed))),
                "sigma_estimates": [min(known), max(known)] if known else None, "not_measured": len(sigmas) - len(known),
            }  # fmt: skip
            print(chain, set_name, results[chain][set_name], flush=True)
    return results


def table(results: dict[str, dict[str, dict[str, object]]]) -> str:
    lines = ["| chain | set | σ̂ measured (min–max) | PSNR σ = 1 | PSNR σ measured | gain (mean / worst image) |", "|---|---|---|---|---|---|"]
    for chain, rows in results.items():
        for name, row in rows.items():
            estimates = row["sigma_estimates"]
            sigma = "not measured (response < 1.5 coarse pixels)" if estimates is None else f"{estimates[0]:.2f}–{estimates[1]:.2f}"  # type: ignore[index]
            lines.append(f"| {chain} | {name} ({row['images']}) | {sigma} | {row['psnr_sigma_1']:.2f} | {row['psnr_measured']:.2f} | "
                         f"{row['gain']:+.3f} / {row['worst_image_gain']:+.3f} |")  # fmt: skip
    worst = min(row["gain"] for rows in results.values() for row in rows.values())  # type: ignore[type-var]
    lines.append(f"\nWorst set-mean gain of the measured σ over σ = 1: {worst:+.3f} dB")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fano", type=float, default=FLOOD_FANO, help="variance / mean of the super-Poisson chain")
    parser.add_argument("--json", type=Path, default=real.ROOT / "results" / "nm_noise_level.json")
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args()
    if args.tables_only:
        print(table(json.loads(args.json.read_text())))
        return
    torch.set_num_threads(1)
    results = run(args.fano)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
