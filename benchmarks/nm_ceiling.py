"""How far the held-out gamma-camera targets can be met: ``dct-mlem`` beside bicubic and the noise-free truth.

The held-out targets on a real bone scan and a real quadrant-bar image are scored against the image as stored, which
is itself a noisy acquisition. On simulated ones the noise-free expectation is known, so it can be scored the same way
as a restoration: it is the best a restoration could return without knowing the image's own noise. Per image, under
the same chain (``degrade`` ×4 with the image's total counts; PSNR/SSIM against the noisy original, ``default``
convention):

* the eight simulated bone scans of ``nm_superres.py`` (seeds 7000…7007; LEHR at 5–10 cm, 0.3–1.5 M counts,
  Poisson; coarse seed = the scan's index): the gain over bicubic in dB (target ≥ +2.0 dB) and
  ``(1 − SSIM) / (1 − SSIM_bicubic)`` (target ≤ 0.6);
* the two simulated quadrant-bar acquisitions of ``nm_real.py`` (2.0–3.5-mm and 3.2–6.4-mm bars, 1-mm pixels, 3.5-mm
  intrinsic blur, 5 M counts; restored as ``nm_real.py`` restores them): the gain over bicubic (target ≥ +1.0 dB),

for ``dct-mlem`` (the default) and for the noise-free expectation.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_ceiling.py --json results/nm_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nm_real  # noqa: E402  (the quadrant-bar acquisitions)
import nm_superres as chain  # noqa: E402  (the benchmark's own chain and test set)

METHODS = ("bicubic", "dct-mlem")


def gains(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Gain over bicubic in dB and the ``(1 − SSIM)`` ratio to bicubic's, for ``dct-mlem`` and the truth."""
    base = scores["bicubic"]
    return {
        name: {"db": scores[name]["psnr"] - base["psnr"], "ssim_ratio": (1 - scores[name]["ssim"]) / (1 - base["ssim"])}
        for name in ("dct-mlem", "truth")
    }


def row(label: str, counts: float, scores: dict[str, dict[str, float]], gain: dict[str, dict[str, float]]) -> str:
    """One Markdown row: the scores of bicubic, ``dct-mlem`` and the truth, then the two gains."""
    cells = [f"{scores[name]['psnr']:.2f} / {scores[name]['ssim']:.3f}" for name in (*METHODS, "truth")]
    return (
        f"| {label} | {counts / 1e6:.2f} M | " + " | ".join(cells)
        + f" | {gain['dct-mlem']['db']:+.2f} / {gain['dct-mlem']['ssim_ratio']:.2f}"
        + f" | {gain['truth']['db']:+.2f} / {gain['truth']['ssim_ratio']:.2f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    methods = {name: chain.load_super_resolution(name, chain.SCALE, None) for name in METHODS}
    results: dict[str, list[dict[str, object]]] = {"scans": [], "quadrant_bars": []}
    print("| image | counts | bicubic | dct-mlem | noise-free truth | dct-mlem: dB / (1 − SSIM) ratio | truth: dB / ratio |")
    print("|---|---|---|---|---|---|---|")
    for index, image in enumerate(chain.bone_scan_images()):
        coarse = chain.degrade(image, seed=index)
        fwhm = chain.SystemResponse(chain.PlanarAcquisition(), image.pixel_size_mm, "default camera").fwhm_pixels
        scores = {name: chain.score(method(coarse, fwhm), image.original, coarse) for name, method in methods.items()}
        scores["truth"] = chain.score(image.expected.to(torch.float32), image.original, coarse)
        counts, gain = float(image.original.sum()), gains(scores)
        results["scans"].append({"scan": image.name, "counts": counts, "scores": scores, "gains": gain})
        print(row(image.name, counts, scores, gain), flush=True)
    for index, name in enumerate(nm_real.QUADRANT_BARS):
        expected, original, coarse = nm_real.quadrant_bar_acquisition(index)
        scores = {label: chain.score(nm_real.restore(label, method, coarse, nm_real.QUADRANT_PIXEL_MM)[0], original, coarse)
                  for label, method in methods.items()}
        scores["truth"] = chain.score(expected.to(torch.float32), original, coarse)
        counts, gain = float(original.sum()), gains(scores)
        results["quadrant_bars"].append({"image": name, "counts": counts, "scores": scores, "gains": gain})
        print(row(f"quadrant bars, {name}", counts, scores, gain), flush=True)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
