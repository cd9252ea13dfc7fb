"""Radial reconstruction on independent sources, beside BART ``pics`` on the same data.

Sources (every data set is a BART k-space + trajectory pair read back with
``medrestore.io.read_kspace(k, trajectory=t)``; BART reads the same files):

* ``bart-sl`` — BART's simulator: ``bart traj -x M -y S -r -G -o 2 -c`` (golden angle, 2×
  readout oversampling, an ``M × M`` image), ``bart phantom -k -s C -t`` (Shepp–Logan, ``C``
  analytic coils), ``bart noise`` of standard deviation ``noise · max|k|``; the reference is the
  root-sum-of-squares of ``bart phantom -x M -s C`` (the same analytic coil images, noise-free).
* ``bart-tubes`` — BART's tubes phantom (``-T``) the same way.
* ``ours-brain`` — :func:`medrestore.tasks.radial.simulate_radial` of a real brain slice
  (``brain-mri-ants/r64slice.jpg``, 128²), birdcage coils; the reference is the slice.
* ``...-delay`` rows — the actual trajectory delayed by ``bart traj -O -q 0.3:-0.2:0.15`` while
  the file holds the nominal one: our default corrects it (RING checked by AC-adaptive), BART
  runs ``estdelay`` and ``traj -q`` on its estimate before its reconstruction.

BART as its radial examples run it: ``nufft -i -d M:M:1`` (gridding) → ``fft -u 3`` →
``ecalib -m1`` → ``pics -e -l1 -r λ -t TRAJ`` (its defaults, 30 iterations; ``-e``: the step from the largest eigenvalue, without which its iteration diverges on non-Cartesian data), λ = 0.01 and the best
of 0.001…0.1 for that image. Ours: ``reconstruct_radial`` with no options (``recon`` with no
options), and the sweep ×1/8…×8 of its weight (``--lam``) to show where the best weight lies.
Scores: magnitude after the least-squares intensity fit (fastMRI PSNR/SSIM) against the
reference, each method's image put in the reference's orientation first (the dihedral
transform of best correlation), and "in support" as in ``recon_sources.py``.

Usage::

    python benchmarks/radial_recon_sources.py [--threads 2] [--only NAME] [--no-sweep] [--output results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.image import Image
from medrestore.io import read_image, read_kspace
from medrestore.io.raw_bart import read_cfl
from medrestore.tasks.recon import score_reconstruction
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.tasks.radial import RadialReconOptions, RadialSimulation, reconstruct_radial, simulate_radial
from radial_delays import write_bart_pair  # the delay benchmark's writer (this folder is on the path of a script)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BART_LAMBDAS = (0.001, 0.003, 0.01, 0.03, 0.1)
SWEEP = (8.0, 4.0, 2.0, 0.5, 0.25, 0.125)
DELAY = "0.3:-0.2:0.15"


@dataclasses.dataclass(frozen=True)
class Case:
    """One row: the source, the image size ``M``, the spokes, coils and noise (relative to ``max|k|``)."""

    source: str
    matrix: int = 128
    spokes: int = 64
    coils: int = 8
    noise: float = 0.005
    delayed: bool = False
    seed: int = 0

    @property
    def name(self) -> str:
        return (f"{self.source} {self.matrix}² {self.spokes} spokes {self.coils} coils noise {self.noise:g}"
                + (" delay" if self.delayed else ""))


CASES = (
    Case("bart-sl", 128, 32, 8, 0.005),
    Case("bart-sl", 128, 64, 8, 0.02),
    Case("bart-sl", 128, 96, 4, 0.005),
    Case("bart-sl", 256, 64, 8, 0.005),
    Case("bart-tubes", 128, 48, 4, 0.01),
    Case("bart-sl", 128, 64, 8, 0.005, delayed=True),
    Case("ours-brain", 128, 32, 8, 0.005),
    Case("ours-brain", 128, 64, 8, 0.02),
    Case("ours-brain", 128, 64, 4, 0.005, delayed=True),
)


def bart(folder: Path, *arguments: object, threads: int = 2) -> str:
    return subprocess.run(["bart", *map(str, arguments)], cwd=folder, check=True, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout  # fmt: skip


def _magnitude(path: Path, matrix: int) -> torch.Tensor:
    """A BART image ``[M, M, 1, ...]`` → magnitude ``(M, M)`` (root-sum-of-squares over any coil/map axis)."""
    array = read_cfl(path).reshape(-1, matrix, matrix)
    return torch.from_numpy(np.sqrt((np.abs(array) ** 2).sum(axis=0)).astype(np.float32))


def make_data(folder: Path, case: Case) -> torch.Tensor:
    """``k``/``t`` in ``folder`` (``t`` nominal) and the noise-free reference magnitude ``(M, M)``."""
    options = ["-x", case.matrix, "-y", case.spokes, "-r", "-G", "-o", 2, "-c"]
    bart(folder, "traj", *options, "t")
    if case.source.startswith("bart"):
        shape = ["-T"] if case.source == "bart-tubes" else []
        actual = "t"
        if case.delayed:
            bart(folder, "traj", *options, "-O", "-q", DELAY, "t_actual")
            actual = "t_actual"
        bart(folder, "phantom", *shape, "-k", "-s", case.coils, "-t", actual, "k_clean")
        bart(folder, "phantom", *shape, "-x", case.matrix, "-s", case.coils, "ref")
        reference = _magnitude(folder / "ref", case.matrix)
        peak = float(np.abs(read_cfl(folder / "k_clean")).max())
        bart(folder, "noise", "-s", case.seed + 1, "-n", (case.noise * peak) ** 2, "k_clean", "k")
        return reference
    pixels = read_image(SHARED / "brain-mri-ants" / "r64slice.jpg").data.to(torch.float32)
    pixels = torch.nn.functional.avg_pool2d(pixels[None, None], 256 // case.matrix)[0, 0]
    image = Image.from_array(pixels / pixels.max(), modality="mri")
    dx, dy, dxy = (float(v) for v in DELAY.split(":")) if case.delayed else (0.0, 0.0, 0.0)
    simulation = RadialSimulation(case.spokes, True, False, 2.0, GradientDelay(dy, dx, dxy), case.coils, case.noise, case.seed)
    kspace = simulate_radial(image, simulation)
    write_bart_pair(folder, kspace.data, kspace.trajectory)
    return image.data.to(torch.float32)


def aligned(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``image`` under the dihedral transform (flips, transpose) that correlates best with ``reference``."""
    candidates = []
    for transposed in (False, True):
        base = image.T if transposed else image
        for dims in ((), (0,), (1,), (0, 1)):
            candidate = base.flip(dims) if dims else base
            correlation = float(torch.corrcoef(torch.stack([candidate.flatten(), reference.flatten()]))[0, 1])
            candidates.append((correlation, candidate))
    return max(candidates, key=lambda item: item[0])[1].contiguous()


def scored(image: torch.Tensor, reference: torch.Tensor, seconds: float, **extra: Any) -> dict[str, Any]:
    image = aligned(image, reference)
    support = (reference > 0.05 * torch.quantile(reference.flatten(), 0.99)).to(torch.float32)
    whole, inside = score_reconstruction(image, reference), score_reconstruction(image * support, reference * support)
    return {"psnr": whole["psnr"], "ssim": whole["ssim"], "psnr_support": inside["psnr"], "ssim_support": inside["ssim"],
            "seconds": seconds, **extra}  # fmt: skip


def ours(folder: Path, reference: torch.Tensor, lam: float | None = None) -> dict[str, Any]:
    kspace = read_kspace(folder / "k.cfl", trajectory=folder / "t.cfl")
    start = time.perf_counter()
    result = reconstruct_radial(kspace, RadialReconOptions(lam=lam))
    seconds = time.perf_counter() - start
    selection = (result.image.metadata.get("recon_lambda_selection") or [None])[0] or {}
    return scored(result.image.data, reference, seconds, method=result.method, lam=result.lam, rule_lam=selection.get("rule_lambda"),
                  delay=None if result.delay is None else list(result.delay.delay.as_tuple()))  # fmt: skip


def bart_pics(folder: Path, case: Case, reference: torch.Tensor, threads: int) -> dict[float, dict[str, Any]]:
    """BART's radial pipeline (module notes) at each λ of :data:`BART_LAMBDAS`; ``estdelay`` first on delayed rows."""
    start = time.perf_counter()
    trajectory = "t"
    if case.delayed:
        delay = bart(folder, "estdelay", "t", "k", threads=threads).strip().splitlines()[-1]
        bart(folder, "traj", "-x", case.matrix, "-y", case.spokes, "-r", "-G", "-o", 2, "-c", "-O", "-q", delay,
             "t_est", threads=threads)  # fmt: skip
        trajectory = "t_est"
    bart(folder, "nufft", "-i", "-d", f"{case.matrix}:{case.matrix}:1", trajectory, "k", "grid", threads=threads)
    bart(folder, "fft", "-u", 3, "grid", "kgrid", threads=threads)
    bart(folder, "ecalib", "-m1", "kgrid", "sens", threads=threads)
    calibration = time.perf_counter() - start
    results = {}
    for lam in BART_LAMBDAS:
        start = time.perf_counter()
        bart(folder, "pics", "-e", "-l1", "-r", lam, "-t", trajectory, "k", "sens", "out", threads=threads)
        results[lam] = scored(_magnitude(folder / "out", case.matrix), reference,
                              calibration + time.perf_counter() - start, lam=lam)  # fmt: skip
    return results


def run_case(case: Case, threads: int, sweep: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        reference = make_data(folder, case)
        row: dict[str, Any] = {"case": case.name, "auto": ours(folder, reference)}
        if row["auto"]["rule_lam"]:  # the noise rule alone, as auto ran before the hold-out choice (60 iterations from zero)
            row["rule"] = ours(folder, reference, row["auto"]["rule_lam"])
        if sweep and row["auto"]["lam"]:
            row["sweep"] = {str(f): ours(folder, reference, f * row["auto"]["lam"]) for f in SWEEP}
        grid = bart_pics(folder, case, reference, threads)
    best = max(grid, key=lambda lam: grid[lam]["psnr"])
    row["bart@0.01"], row["bart-best"] = grid[0.01], grid[best]
    print(case.name, {key: round(row[key]["psnr"], 2) for key in ("auto", "rule", "bart@0.01", "bart-best") if key in row}, flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | `auto` PSNR / SSIM | in support | s | noise rule alone | s | BART λ = 0.01 | BART best (λ) | BART s "
             "| best of ×1/8…×8 auto's λ |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        auto, low, best, rule = row["auto"], row["bart@0.01"], row["bart-best"], row.get("rule")
        rule_cells = f"{rule['psnr']:.2f} / {rule['ssim']:.3f} | {rule['seconds']:.2f}" if rule else "– | –"
        factor = ""
        if "sweep" in row:
            options = {"1": auto, **row["sweep"]}
            chosen = max(options, key=lambda f: options[f]["psnr"])
            factor = f"×{chosen}: {options[chosen]['psnr']:.2f}"
        lines.append(
            f"| {row['case']} | {auto['psnr']:.2f} / {auto['ssim']:.3f} | {auto['psnr_support']:.2f} / {auto['ssim_support']:.3f} "
            f"| {auto['seconds']:.2f} | {rule_cells} | {low['psnr']:.2f} / {low['ssim']:.3f} | {best['psnr']:.2f} / {best['ssim']:.3f} "
            f"({best['lam']:g}) | {best['seconds']:.2f} | {factor} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep of auto's weight")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run_case(case, args.threads, not args.no_sweep) for case in CASES if args.only is None or args.only in case.name]
    print(table(rows))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
