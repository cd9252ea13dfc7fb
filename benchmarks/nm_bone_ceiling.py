"""How far the bone-scan targets can be met: ``dct-mlem`` beside bicubic and the noise-free truth, scan by scan.

The held-out target on a real bone scan is scored against the scan as stored, which is itself a noisy acquisition.
On the simulated bone scans of ``nm_superres.py`` (seeds 7000…7007; LEHR at 5–10 cm, 0.3–1.5 M counts, Poisson) the
noise-free expectation of each scan is known, so it can be scored the same way as a restoration: it is the best a
restoration could return without knowing the scan's own noise. Per scan, under the same chain (``degrade`` ×4 with
the scan's total counts, seed = its index; PSNR/SSIM against the noisy original, ``default`` convention):

* the gain over bicubic in dB (target ≥ +2.0 dB), and
* ``(1 − SSIM) / (1 − SSIM_bicubic)`` (target ≤ 0.6),

for ``dct-mlem`` (the default) and for the noise-free expectation.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_bone_ceiling.py --json results/nm_bone_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nm_superres as chain  # noqa: E402  (the benchmark's own chain and test set)

METHODS = ("bicubic", "dct-mlem")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    methods = {name: chain.load_super_resolution(name, chain.SCALE, None) for name in METHODS}
    rows = []
    print("| scan | counts | bicubic | dct-mlem | noise-free truth | dct-mlem: dB / (1 − SSIM) ratio | truth: dB / ratio |")
    print("|---|---|---|---|---|---|---|")
    for index, image in enumerate(chain.bone_scan_images()):
        coarse = chain.degrade(image, seed=index)
        fwhm = chain.SystemResponse(chain.PlanarAcquisition(), image.pixel_size_mm, "default camera").fwhm_pixels
        scores = {name: chain.score(method(coarse, fwhm), image.original, coarse) for name, method in methods.items()}
        scores["truth"] = chain.score(image.expected.to(torch.float32), image.original, coarse)
        base = scores["bicubic"]
        gains = {
            name: {"db": scores[name]["psnr"] - base["psnr"], "ssim_ratio": (1 - scores[name]["ssim"]) / (1 - base["ssim"])}
            for name in ("dct-mlem", "truth")
        }
        rows.append({"scan": image.name, "counts": float(image.original.sum()), "scores": scores, "gains": gains})
        cells = [f"{scores[name]['psnr']:.2f} / {scores[name]['ssim']:.3f}" for name in (*METHODS, "truth")]
        print(
            f"| {image.name} | {float(image.original.sum()) / 1e6:.2f} M | " + " | ".join(cells)
            + f" | {gains['dct-mlem']['db']:+.2f} / {gains['dct-mlem']['ssim_ratio']:.2f}"
            + f" | {gains['truth']['db']:+.2f} / {gains['truth']['ssim_ratio']:.2f} |",
            flush=True,
        )
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps({"scans": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
