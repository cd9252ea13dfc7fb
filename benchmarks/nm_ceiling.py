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

for ``dct-mlem`` (the default), for the noise-free expectation (*truth*), and for two restorations that know more
than the data hold, to say where what is left is lost:

* *perfect denoising*: ``dct-mlem``'s own ML-EM stage (40 iterations, 1-pixel post-filter) run on the noise-free
  coarse counts (the camera model's expectation of the original, scaled to the acquisition's total) — what the chain
  would reach with a denoiser that removed all of the coarse acquisition's noise;
* *truth in the coarse band*: the truth with every spatial frequency above the coarse grid's Nyquist limit
  (``1 / (2k)`` cycles per fine pixel on each axis) removed — everything the ×4 grid can represent, recovered
  exactly and without noise.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_ceiling.py --json results/nm_ceiling.json
    OMP_NUM_THREADS=2 python benchmarks/nm_ceiling.py --quadrant-counts 5e6 2e7 8e7   # the quadrant bars' count level
    OMP_NUM_THREADS=2 python benchmarks/nm_ceiling.py --skip-scans --quadrant-pixel 0.59 --quadrant-counts 5e6 2e7   # and pixel size
    OMP_NUM_THREADS=2 python benchmarks/nm_ceiling.py --skip-scans --quadrant-pixel 0.59 --quadrant-counts 5e6 2e7 --quadrant-collimator INTR
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

from medrestore.models.count_restoration import DCT_MLEM, CountRestoration
from medrestore.physics.degradations import GammaCamera
from medrestore.physics.gamma_camera import DEFAULT_COLLIMATOR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nm_real  # noqa: E402  (the quadrant-bar acquisitions)
import nm_superres as chain  # noqa: E402  (the benchmark's own chain and test set)

METHODS = ("bicubic", "dct-mlem")
ORACLES = ("perfect denoising", "truth in the coarse band", "truth")
NOISE_FREE_MLEM = CountRestoration(denoise=False, iterations=DCT_MLEM.iterations, post_filter_fwhm=DCT_MLEM.post_filter_fwhm)


def coarse_band(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``image (H, W)`` with every DFT frequency above ``1 / (2·scale)`` cycles per pixel on either axis set to 0."""
    keep = [torch.fft.fftfreq(n, dtype=torch.float64).abs() <= 1.0 / (2 * scale) for n in image.shape]
    return torch.fft.ifft2(torch.fft.fft2(image.to(torch.float64)) * (keep[0][:, None] & keep[1][None, :])).real


def perfect_denoising(
    original: torch.Tensor, coarse: torch.Tensor, pixel_mm: float, fwhm_pixels: float, collimator: str = DEFAULT_COLLIMATOR
) -> torch.Tensor:
    """``dct-mlem``'s ML-EM stage on the noise-free coarse counts of ``original`` through ``collimator`` (its total:
    ``coarse``'s)."""
    expected = GammaCamera(pixel_size_mm=pixel_mm, collimator=collimator).expected_counts(original.to(torch.float64))
    return NOISE_FREE_MLEM(expected * (coarse.sum() / expected.sum()), fwhm_pixels, chain.SCALE)


def oracle_scores(
    expected: torch.Tensor, original: torch.Tensor, coarse: torch.Tensor, pixel_mm: float, fwhm_pixels: float,
    collimator: str = DEFAULT_COLLIMATOR,
) -> dict[str, dict[str, float]]:
    """The scores of :data:`ORACLES` against the noisy ``original``."""
    restored = {
        "perfect denoising": perfect_denoising(original, coarse, pixel_mm, fwhm_pixels, collimator),
        "truth in the coarse band": coarse_band(expected, chain.SCALE), "truth": expected,
    }  # fmt: skip
    return {name: chain.score(image.to(torch.float32), original, coarse) for name, image in restored.items()}


def gains(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Gain over bicubic in dB and the ``(1 − SSIM)`` ratio to bicubic's, for ``dct-mlem`` and the oracles."""
    base = scores["bicubic"]
    return {
        name: {"db": scores[name]["psnr"] - base["psnr"], "ssim_ratio": (1 - scores[name]["ssim"]) / (1 - base["ssim"])}
        for name in ("dct-mlem", *ORACLES)
    }


def row(label: str, counts: float, scores: dict[str, dict[str, float]], gain: dict[str, dict[str, float]]) -> str:
    """One Markdown row: bicubic's PSNR / SSIM, then the gain / ratio of ``dct-mlem`` and each oracle."""
    base = scores["bicubic"]
    cells = [f"{gain[name]['db']:+.2f} / {gain[name]['ssim_ratio']:.2f}" for name in ("dct-mlem", *ORACLES)]
    return f"| {label} | {counts / 1e6:.2f} M | {base['psnr']:.2f} / {base['ssim']:.3f} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quadrant-counts", type=float, nargs="+", default=[nm_real.QUADRANT_COUNTS], metavar="N",
                        help="total counts of the quadrant-bar acquisitions (default: nm_real.py's 5 M)")
    parser.add_argument("--quadrant-pixel", type=float, default=nm_real.QUADRANT_PIXEL_MM, metavar="MM",
                        help="their pixel size, the same 512-mm field (default: nm_real.py's 1 mm)")
    parser.add_argument("--quadrant-collimator", default=DEFAULT_COLLIMATOR, type=str.upper, metavar="NAME",
                        help="the collimator they are acquired and restored through (default: the camera model's, LEGP; "
                             "INTR: an intrinsic bar test)")
    parser.add_argument("--skip-scans", action="store_true", help="only the quadrant bars")
    arguments = parser.parse_args(argv)
    methods = {name: chain.load_super_resolution(name, chain.SCALE, None) for name in METHODS}
    results: dict[str, list[dict[str, object]]] = {"scans": [], "quadrant_bars": []}
    print("| image | counts | bicubic: PSNR / SSIM | gain (dB) / (1 − SSIM) ratio over bicubic: dct-mlem | " + " | ".join(ORACLES) + " |")
    print("|---|---|---|---|---|---|---|")
    for index, image in enumerate([] if arguments.skip_scans else chain.bone_scan_images()):
        coarse = chain.degrade(image, seed=index)
        fwhm = chain.SystemResponse(chain.PlanarAcquisition(), image.pixel_size_mm, "default camera").fwhm_pixels
        scores = {name: chain.score(method(coarse, fwhm), image.original, coarse) for name, method in methods.items()}
        scores.update(oracle_scores(image.expected, image.original, coarse, image.pixel_size_mm, fwhm))
        counts, gain = float(image.original.sum()), gains(scores)
        results["scans"].append({"scan": image.name, "counts": counts, "scores": scores, "gains": gain})
        print(row(image.name, counts, scores, gain), flush=True)
    pixel, collimator = arguments.quadrant_pixel, arguments.quadrant_collimator
    for counts, (index, name) in itertools.product(arguments.quadrant_counts, enumerate(nm_real.QUADRANT_BARS)):
        expected, original, coarse = nm_real.quadrant_bar_acquisition(index, counts, pixel, collimator)
        scores = {label: chain.score(nm_real.restore(label, method, coarse, pixel, collimator)[0], original, coarse)
                  for label, method in methods.items()}
        fwhm = chain.SystemResponse(chain.PlanarAcquisition(collimator), pixel, "benchmark").fwhm_pixels
        scores.update(oracle_scores(expected, original, coarse, pixel, fwhm, collimator))
        counts, gain = float(original.sum()), gains(scores)
        results["quadrant_bars"].append({"image": name, "collimator": collimator, "counts": counts, "scores": scores, "gains": gain})
        label = f"quadrant bars, {name}" + (f", {pixel:g}-mm pixels" if pixel != nm_real.QUADRANT_PIXEL_MM else "")
        print(row(label + (f", {collimator}" if collimator != DEFAULT_COLLIMATOR else ""), counts, scores, gain), flush=True)
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
