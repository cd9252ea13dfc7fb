"""``dct-mlem``'s ML-EM iterations against the system response's width in fine pixels, and line-source widths.

ML-EM recovers detail more slowly the wider the response is in fine pixels. ``dct-mlem`` ran 40 iterations whatever
the pixel size; with no ``--iterations`` it now runs ``40 · (FWHM / 9 px)²`` within 40…160
(:func:`~medrestore.models.count_restoration.response_iterations`). Two tables, every default of the targets' chain
(``degrade --kind gamma-camera``: LEGP at 10 cm, Tc-99m, the original's total counts; restored with the same model):

1. **PSNR** (``default`` convention, against the original) of 40 iterations, of the rule and of twice the rule on
   the held-out paper phantoms of ``nm_superres.py`` (18 images) at 0.3, 0.6, 0.8, 1.0 and 2.4-mm pixels, ×2, ×4 and ×8, on
   the simulated bone scans, and on the real images of ``nm_real.py`` (×4, seeded as there): mean and worst change
   against 40 per set.
2. **Line-source FWHM** (NEMA NU 1, :func:`~medrestore.metrics.nema.line_source_widths`) of the original, bicubic,
   ``dct-mlem`` at 40 iterations and ``dct-mlem`` as it runs now, after ×4: the real line sources
   (``Spatial_Resol_X.dcm``: as stored, binned ×2, thinned to ¼ and 1/16 of its counts), the real slit pattern of
   ``Lin_X`` (seven slits 30 mm apart, intrinsic resolution) and synthetic pairs of Gaussian lines (FWHM 3.5–14 mm,
   pixels 0.6–2 mm, peaks of 30 and 300 counts, 2 % background, Poisson).

3. The same widths for **intrinsic acquisitions** acquired and restored through the camera's intrinsic resolution
   alone (``--collimator INTR``, 3.8 mm): the ``Lin_X`` slits and synthetic lines of 2.5–5 mm.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_iterations.py --json results/nm_iterations.json   # about 13 min
    OMP_NUM_THREADS=2 python benchmarks/nm_iterations.py --intrinsic-only --json results/nm_intrinsic_lines.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from medrestore.core.random import make_generator
from medrestore.io import read_image
from medrestore.metrics.nema import line_source_widths
from medrestore.models.count_restoration import DCT_MLEM, CountRestoration, response_iterations
from medrestore.physics.degradations import GammaCamera

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nm_real  # noqa: E402  (the real images and the line-source crop)
import nm_superres as bench  # noqa: E402  (the held-out phantoms and bone scans, the score)

PHANTOM_GRIDS = ((0.3, 4), (0.6, 4), (0.8, 4), (1.0, 4), (2.4, 4), (0.6, 2), (1.0, 2), (0.6, 8))
"""``(fine pixel mm, scale)`` of the paper-phantom sets."""
SLITS = (slice(330, 690), slice(300, 700))  # seven of Lin_X's slits, whole, along 236 mm
SLIT_COUNT = 7


def response_fwhm(pixel_mm: float, collimator: str = "LEGP") -> float:
    """The camera's response FWHM in fine pixels of ``pixel_mm`` (the default camera, or ``collimator`` at 10 cm)."""
    return nm_real.SystemResponse(nm_real.PlanarAcquisition(collimator), pixel_mm, "benchmark").fwhm_pixels


def psnr_by_iterations(original: torch.Tensor, pixel_mm: float, scale: int, seed: int) -> tuple[list[float], list[int]]:
    """PSNR of ``dct-mlem`` at 40 iterations, the rule and twice the rule; and those counts."""
    coarse = GammaCamera(scale=scale, pixel_size_mm=pixel_mm)(original, make_generator(seed))
    fwhm = response_fwhm(pixel_mm)
    rule = response_iterations(DCT_MLEM.iterations, fwhm)
    counts = [DCT_MLEM.iterations, rule, 2 * rule]
    scores = [bench.score(CountRestoration(True, n, DCT_MLEM.post_filter_fwhm)(coarse, fwhm, scale), original, coarse)["psnr"] for n in counts]
    return scores, counts


def summarise(label: str, rows: list[list[float]], counts: list[int]) -> dict[str, object]:
    table = torch.tensor(rows)
    change = table - table[:, :1]
    result = {
        "set": label, "images": len(rows), "iterations": counts, "mean_psnr": table.mean(0).tolist(),
        "mean_change": change.mean(0).tolist(), "worst_change": change.min(0).values.tolist(),
    }  # fmt: skip
    print(f"| {label} | {len(rows)} | {counts[0]} / {counts[1]} / {counts[2]} | "
          + " / ".join(f"{v:.2f}" for v in result["mean_psnr"]) + " | "  # type: ignore[union-attr]
          + " · ".join(f"{m:+.2f} / {w:+.2f}" for m, w in zip(change.mean(0)[1:].tolist(), change.min(0).values[1:].tolist())) + " |", flush=True)
    return result


def psnr_table() -> list[dict[str, object]]:
    print("| set | images | iterations: 40 / rule / 2 × rule | mean PSNR (dB) | rule · 2 × rule: mean / worst change against 40 (dB) |")
    print("|---|---|---|---|---|")
    results = []
    for pixel, scale in PHANTOM_GRIDS:
        rows = []
        for index, image in enumerate(bench.phantom_images(pixel)):
            scores, counts = psnr_by_iterations(image.original, pixel, scale, index)
            rows.append(scores)
        results.append(summarise(f"phantoms {pixel} mm ×{scale}", rows, counts))
    rows = []
    for index, image in enumerate(bench.bone_scan_images()):
        scores, counts = psnr_by_iterations(image.original, image.pixel_size_mm, bench.SCALE, index)
        rows.append(scores)
    results.append(summarise(f"simulated bone scans {bench.BONE_SCAN_PIXEL_SIZE} mm ×4", rows, counts))
    for index, (name, original, pixel) in enumerate(nm_real.real_images()):
        scores, counts = psnr_by_iterations(original, pixel, bench.SCALE, index)
        results.append(summarise(f"{name} ({pixel:.2f} mm) ×4", [scores], counts))
    return results


def synthetic_lines(pixel_mm: float, fwhm_mm: float, peak: float) -> torch.Tensor:
    """Two vertical Gaussian lines 60 mm apart on 2 % background, 300 × 160 mm, Poisson counts."""
    rows, columns = round(300 / pixel_mm), round(160 / pixel_mm)
    x = (torch.arange(columns, dtype=torch.float64) + 0.5) * pixel_mm
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    profile = sum(torch.exp(-0.5 * ((x - centre) / sigma) ** 2) for centre in (50.0, 110.0))
    return torch.poisson((peak * profile + 0.02 * peak)[None, :].expand(rows, columns).clone(), generator=make_generator(1))


def widths(name: str, original: torch.Tensor, pixel_mm: float, lines: int, axis: int, collimator: str = "LEGP") -> dict[str, object]:
    """FWHM (mm) of the original and of each restoration after ×4 through ``collimator`` (``INTR``: none)."""
    coarse = GammaCamera(pixel_size_mm=pixel_mm, collimator=collimator)(original, make_generator(0))
    fwhm = response_fwhm(pixel_mm, collimator)
    restorations = {
        "bicubic": bench.load_super_resolution("bicubic", bench.SCALE, None)(coarse),
        "dct-mlem 40": DCT_MLEM(coarse, fwhm, bench.SCALE),
        "dct-mlem": bench.load_super_resolution("dct-mlem", bench.SCALE, None)(coarse, fwhm),
    }
    measured = {"original": line_source_widths(original, pixel_mm, lines=lines, line_axis=axis).mean_fwhm_mm}
    measured.update({label: line_source_widths(image, pixel_mm, lines=lines, line_axis=axis).mean_fwhm_mm for label, image in restorations.items()})
    row = {"image": name, "collimator": collimator, "pixel_mm": pixel_mm, "counts": float(original.sum()),
           "iterations": response_iterations(DCT_MLEM.iterations, fwhm), "fwhm_mm": measured}  # fmt: skip
    error = {label: 100.0 * (value / measured["original"] - 1.0) for label, value in measured.items() if label != "original"}
    print(f"| {name} | {pixel_mm:.2f} | {float(original.sum()) / 1e6:.2f} M | {measured['original']:.2f} | "
          + " | ".join(f"{measured[label]:.2f} ({error[label]:+.0f} %)" for label in restorations) + f" | {row['iterations']} |", flush=True)
    return row


def line_table() -> list[dict[str, object]]:
    print("| lines | pixel (mm) | counts | original FWHM (mm) | bicubic | dct-mlem, 40 iterations | dct-mlem (default) | its iterations |")
    print("|---|---|---|---|---|---|---|---|")
    stored = read_image(nm_real.NMQC / nm_real.LINES)
    pixel = float(stored.spacing[-1])
    crop = stored.data.to(torch.float64).clamp_min(0)[nm_real.LINES_CROP]
    rows = [widths("Spatial_Resol_X (real, system)", crop, pixel, 2, 0)]
    h, w = (size // 2 * 2 for size in crop.shape)
    rows.append(widths("Spatial_Resol_X binned ×2", crop[:h, :w].reshape(h // 2, 2, w // 2, 2).sum((1, 3)), 2 * pixel, 2, 0))
    for fraction in (0.25, 0.0625):
        thinned = torch.binomial(crop, torch.full_like(crop, fraction), generator=make_generator(5))
        rows.append(widths(f"Spatial_Resol_X thinned to {fraction:g}", thinned, pixel, 2, 0))
    grid = read_image(nm_real.NMQC / nm_real.GRID)
    slits = grid.data.to(torch.float64).clamp_min(0)[SLITS]
    rows.append(widths("Lin_X slits (real, intrinsic)", slits, float(grid.spacing[-1]), SLIT_COUNT, 1))
    for pixel_mm in (0.6, 1.0, 2.0):
        for fwhm_mm in (3.5, 5.0, 7.5, 10.0, 14.0):
            for peak in (30.0, 300.0):
                rows.append(widths(f"synthetic {fwhm_mm:g} mm, peak {peak:g}", synthetic_lines(pixel_mm, fwhm_mm, peak), pixel_mm, 2, 0))
    return rows


def intrinsic_line_table() -> list[dict[str, object]]:
    """Line widths of intrinsic acquisitions acquired ×4 through the intrinsic resolution alone (``INTR``)."""
    print("| lines (intrinsic chain) | pixel (mm) | counts | original FWHM (mm) | bicubic | dct-mlem, 40 iterations | dct-mlem (default) | its iterations |")
    print("|---|---|---|---|---|---|---|---|")
    grid = read_image(nm_real.NMQC / nm_real.GRID)
    slits = grid.data.to(torch.float64).clamp_min(0)[SLITS]
    rows = [widths("Lin_X slits (real, intrinsic)", slits, float(grid.spacing[-1]), SLIT_COUNT, 1, "INTR")]
    for pixel_mm in (0.6, 1.0, 2.0):
        for fwhm_mm in (2.5, 3.5, 5.0):
            for peak in (30.0, 300.0):
                lines = synthetic_lines(pixel_mm, fwhm_mm, peak)
                rows.append(widths(f"synthetic {fwhm_mm:g} mm, peak {peak:g}", lines, pixel_mm, 2, 0, "INTR"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--intrinsic-only", action="store_true", help="only the intrinsic chain's line table (about 1 min)")
    arguments = parser.parse_args(argv)
    if arguments.intrinsic_only:
        results: dict[str, object] = {"intrinsic_lines": intrinsic_line_table()}
        if arguments.json:
            arguments.json.parent.mkdir(parents=True, exist_ok=True)
            arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return
    results = {"psnr": psnr_table()}
    print()
    results["lines"] = line_table()
    print()
    results["intrinsic_lines"] = intrinsic_line_table()
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
