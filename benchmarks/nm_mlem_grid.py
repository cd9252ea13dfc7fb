"""ML-EM iterations × post-filter on validation phantoms and bone scans (none of the benchmark's test images).

What the no-training methods of ``medrestore superres --modality nm`` (``mlem``, and ``dct-mlem``: the
coarse counts denoised first) can reach by their two settings, measured on images kept apart from ``benchmarks/nm_superres.py``'s test sets: paper
phantoms of the training configs' validation sources (Colin27 at 45 %, scikit-image astronaut and
rocket, hot-spot and skeleton maps of phantom seed 500) at 1-mm and 2.4-mm pixels, and 8 simulated
bone scans of seeds 9000–9007 (the test set uses 7000–7007). Same chain and scores as the
benchmark; printed as gains over bicubic (PSNR dB / SSIM).

Usage::

    python benchmarks/nm_mlem_grid.py --iterations 10,20,40 --post-filters 0,1,2,3
    python benchmarks/nm_mlem_grid.py --methods mlem,dct-mlem --iterations 20,30,40,60 --post-filters 0,1,1.5,2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import nm_superres as bench
from medrestore.data.nm import NMSources
from medrestore.tasks.superres import CountSuperResolution


VALIDATION_SOURCES = NMSources(
    files=(str(bench.SHARED / "ch2.nii.gz"),), slice_fractions=(0.45,), skimage_images=("astronaut", "rocket"),
    generated=(("hot-spot", 4), ("skeleton", 4)), phantom_seed=500, crops_per_image=1,
)  # fmt: skip
VALIDATION_BONE_SEED = 9000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", default="10,20,40")
    parser.add_argument("--post-filters", default="0,1,2,3", help="Gaussian post-filter FWHM in fine pixels")
    parser.add_argument("--methods", default="mlem", help="comma-separated: mlem, dct-mlem")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = {
        "phantoms 1 mm": bench.phantom_images(1.0, VALIDATION_SOURCES),
        "phantoms 2.4 mm": bench.phantom_images(2.4, VALIDATION_SOURCES),
        "bone scans": bench.bone_scan_images(first_seed=VALIDATION_BONE_SEED),
    }
    methods = {"bicubic": CountSuperResolution("bicubic", bench.SCALE)}
    labels = {"mlem": "ML-EM", "dct-mlem": "DCT-denoised counts + ML-EM"}
    for name in args.methods.split(","):
        for iterations in (int(v) for v in args.iterations.split(",")):
            for fwhm in (float(v) for v in args.post_filters.split(",")):
                method = CountSuperResolution(name, bench.SCALE, iterations=iterations, post_filter_fwhm=fwhm)
                methods[f"{labels[name]} {iterations} it, post-filter {fwhm:g}"] = method
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for set_name, images in sets.items():
        for index, image in enumerate(images):
            coarse = bench.degrade(image, seed=100 + index)
            fwhm = bench.SystemResponse(bench.PlanarAcquisition(), image.pixel_size_mm, "default camera").fwhm_pixels
            for label, method in methods.items():
                result = bench.score(method(coarse, fwhm), image.original, coarse)
                scores.setdefault((label, set_name), []).append((result["psnr"], result["ssim"]))
    base = {name: np.mean(scores[("bicubic", name)], axis=0) for name in sets}
    print("| method | " + " | ".join(f"{name}: Δ PSNR / Δ SSIM" for name in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for label in methods:
        cells = [np.mean(scores[(label, name)], axis=0) - base[name] for name in sets]
        print(f"| {label} | " + " | ".join(f"{d[0]:+.2f} / {d[1]:+.3f}" for d in cells) + " |")


if __name__ == "__main__":
    main()
