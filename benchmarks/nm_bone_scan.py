"""The bone-scan targets' chain on a real whole-body bone scan, run as a user runs it: three commands per method.

pydicom's own test files hold a real whole-body bone scan (NM, "Whole Body Bone", 1024 × 256, 2.26-mm pixels,
about 3.5 M counts) in two encodings: ``JPEG2000.dcm`` (signed int16 with 39 921 negative background values down
to −30, as the issue's scan) and ``JPGExtended.dcm`` (12-bit unsigned JPEG, values 0–264; the same acquisition,
correlation 0.95 with the other). Neither was used to train or tune anything. For each file and seed:

1. ``medrestore degrade FILE --kind gamma-camera --seed S`` (camera defaults: LEGP at 10 cm, Tc-99m, ×4 binning,
   the scan's total counts, pixel size from the DICOM; negatives clipped with a warning) → 256 × 64;
2. ``medrestore superres COARSE --method M`` for each method → 1024 × 256 (``OUT.json``: total counts, seconds);
3. ``medrestore evaluate --pred OUT --ref FILE --json``: PSNR/SSIM against the scan as counts (``evaluate`` sets an
   NM reference's negatives to 0), and, computed here, against the stored values with their negatives.

Targets (issue "gamma-camera super-resolution on real camera images"): the default ≥ +2.0 dB over bicubic and
``(1 − SSIM) ≤ 0.6 × bicubic's``, total counts within 1 %. The whole ``superres`` command of each method is timed
(wall clock of the process) on the same 256 × 64 inputs, its ratio to bicubic's in the same run.

Beside the methods, two restorations that know more than the coarse counts hold (``nm_ceiling.py``): *perfect
denoising* (``dct-mlem``'s ML-EM stage on the noise-free coarse counts of the scan) and *the scan in the coarse band*
(the stored scan itself with every frequency above the ×4 grid's Nyquist limit removed). With no clean truth they say
how much of the scan a ×4 acquisition can give back at all; a scan whose stored values hold most of their
variance above that limit (noise, compression artefacts) caps every restoration's gain.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_bone_scan.py --seeds 5 --json results/nm_bone_scan.json   # about 6 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nm_ceiling  # noqa: E402  (the two oracles)
import nm_superres as chain  # noqa: E402

from medrestore.io import read_image
from medrestore.metrics import evaluate

SCANS = tuple(Path(pydicom.__file__).parent / "data" / "test_files" / name for name in ("JPEG2000.dcm", "JPGExtended.dcm"))
METHODS = ("bicubic", "mlem", "dct-mlem", "dct-mlem-ensemble")
ORACLES = ("perfect denoising", "the scan in the coarse band")
DEFAULT = "dct-mlem"


def command(*arguments: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``medrestore ARGUMENTS`` in a new process; its result and wall-clock seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "medrestore.cli.main", *arguments], check=True, capture_output=True, text=True)
    return done, time.perf_counter() - started


def run_scan(scan: Path, seed: int, folder: Path) -> dict[str, dict[str, float]]:
    """Every method on one degraded copy of ``scan``: scores against the counts and against the stored values."""
    stored = read_image(scan).data.to(torch.float64)
    coarse = folder / f"{scan.stem}-{seed}-coarse.nii.gz"
    command("degrade", str(scan), "-o", str(coarse), "--kind", "gamma-camera", "--seed", str(seed))
    rows: dict[str, dict[str, float]] = {}
    for method in METHODS:
        output = folder / f"{scan.stem}-{seed}-{method}.nii.gz"
        _, seconds = command("superres", str(coarse), "-o", str(output), "--method", method)
        record = json.loads(Path(f"{output}.json").read_text())
        scored, _ = command("evaluate", "--pred", str(output), "--ref", str(scan), "--json")
        counts = json.loads(scored.stdout)["metrics"]
        restored = read_image(output).data.to(torch.float64)
        as_stored = evaluate(restored, stored, convention="default")
        total_in = float(read_image(coarse).data.to(torch.float64).sum())
        rows[method] = {
            "psnr": counts["psnr"], "ssim": counts["ssim"], "psnr_stored": as_stored["psnr"], "ssim_stored": as_stored["ssim"],
            "count_error": abs(float(restored.sum()) - total_in) / total_in, "command_seconds": seconds,
            "compute_seconds": float(record.get("seconds", float("nan"))),
        }  # fmt: skip
        print(f"{scan.name} seed {seed} {method}: " + ", ".join(f"{k} {v:.4g}" for k, v in rows[method].items()), flush=True)
    counts, pixel = stored.clamp_min(0), float(read_image(scan).spacing[-1])
    acquired = read_image(coarse).data.to(torch.float64)
    fwhm = chain.SystemResponse(chain.PlanarAcquisition(), pixel, "benchmark").fwhm_pixels
    oracles = {
        "perfect denoising": nm_ceiling.perfect_denoising(counts, acquired, pixel, fwhm),
        "the scan in the coarse band": nm_ceiling.coarse_band(counts, chain.SCALE),
    }  # fmt: skip
    for name, image in oracles.items():
        rows[name] = {k: v for k, v in chain.score(image.to(torch.float32), counts, acquired).items() if k != "count_error"}
    floor = float((stored.clamp(max=0) ** 2).mean())  # MSE against the stored values of any non-negative image
    bicubic = read_image(folder / f"{scan.stem}-{seed}-bicubic.nii.gz").data.to(torch.float64)
    ceiling = None if floor == 0 else 10 * float(torch.log10(((bicubic - stored) ** 2).mean() / floor))  # no negatives: none
    rows["stored_ceiling"] = {"db_over_bicubic": ceiling}  # type: ignore[dict-item]
    return rows


def summary(results: dict[str, list[dict[str, dict[str, float]]]]) -> str:
    """Markdown: per scan and method, min–max over seeds of the gain and the SSIM ratio, and command times."""
    lines = ["| scan | method | PSNR / SSIM (seed 0) | gain over bicubic (dB), min–max | (1 − SSIM) / bicubic's, min–max | "
             "against the stored negatives: gain (dB) | total counts (max rel. error) | command (s), median | × bicubic |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, runs in results.items():
        base_time = statistics.median(run["bicubic"]["command_seconds"] for run in runs)
        for method in METHODS:
            gains = [run[method]["psnr"] - run["bicubic"]["psnr"] for run in runs]
            ratios = [(1 - run[method]["ssim"]) / (1 - run["bicubic"]["ssim"]) for run in runs]
            stored = [run[method]["psnr_stored"] - run["bicubic"]["psnr_stored"] for run in runs]
            seconds = statistics.median(run[method]["command_seconds"] for run in runs)
            label = f"**{method}** (default)" if method == DEFAULT else method
            lines.append(
                f"| {name} | {label} | {runs[0][method]['psnr']:.2f} / {runs[0][method]['ssim']:.4f} | {min(gains):+.2f} to {max(gains):+.2f} | "
                f"{min(ratios):.2f}–{max(ratios):.2f} | {min(stored):+.2f} to {max(stored):+.2f} | "
                f"{max(run[method]['count_error'] for run in runs):.1e} | {seconds:.2f} | {seconds / base_time:.2f} |"
            )
        for oracle in ORACLES:
            gains = [run[oracle]["psnr"] - run["bicubic"]["psnr"] for run in runs]
            ratios = [(1 - run[oracle]["ssim"]) / (1 - run["bicubic"]["ssim"]) for run in runs]
            lines.append(f"| {name} | *{oracle}* | {runs[0][oracle]['psnr']:.2f} / {runs[0][oracle]['ssim']:.4f} | "
                         f"{min(gains):+.2f} to {max(gains):+.2f} | {min(ratios):.2f}–{max(ratios):.2f} | – | – | – | – |")  # fmt: skip
        ceiling = [run["stored_ceiling"]["db_over_bicubic"] for run in runs]
        if all(value is not None for value in ceiling):
            lines.append(f"| {name} | *any non-negative image*, against the stored negatives (ceiling) | – | – | – | "
                         f"{min(ceiling):+.2f} to {max(ceiling):+.2f} | – | – | – |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="degradation seeds 0…N−1 per scan")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tables-only", action="store_true", help="print the table of an existing --json and stop")
    arguments = parser.parse_args(argv)
    if arguments.tables_only:
        print(summary(json.loads(arguments.json.read_text())))
        return
    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for scan in SCANS:
            if not scan.is_file():
                raise SystemExit(f"{scan}: not found (the installed pydicom has no such test file)")
            results[scan.name] = [run_scan(scan, seed, Path(folder)) for seed in range(arguments.seeds)]
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(summary(results))


if __name__ == "__main__":
    main()
