"""`medrestore recon` on Cartesian k-space from independent sources, beside BART's own pipeline.

Every case is a fully sampled multi-coil slice (the reference is the root-sum-of-squares of its
noise-free coil images where a simulator gives them, else of the data), undersampled with a mask, reconstructed by ``recon``'s default (``auto``) and by
BART as its users run it — ``bart ecalib`` then ``bart pics -l1 -r λ`` — at BART's customary
``λ = 0.01`` and at the best ``λ`` of a grid for that image (an oracle no user has). Scores are
fastMRI PSNR/SSIM after the least-squares intensity fit (``recon --ref``), over the whole image
and inside the reference's support (pixels above 5 % of its 99th percentile, as a cropped
comparison would see them). ``rule`` is the noise-referenced weight alone (what ``auto`` used
before its weight was cross-validated), run in the same pass; a sweep of ``auto``'s own weight (×1/4 … ×8,
each solved from zero) shows how far the chosen weight lands from the best of a grid.

Sources (none is our simulator unless named so):

* ``bart-sl``: BART's Shepp–Logan k-space phantom (``bart phantom -k -s 8 -x 256``) with complex
  noise added by ``bart noise`` at two levels (1 % and 5 % of the RMS k-space amplitude);
* ``bart-tubes``: BART's tubes phantom (``-T``), 4 coils, 192², noise 2 %;
* ``ours-brain``: a real brain slice (ANTs ``r64slice.jpg``) through our 8-coil simulator;
* ``pulseq-16``: the real 16-coil brain slice (twix, 3 T), also compressed to 8 virtual coils
  by ``bart cc -S`` (``pulseq-cc8``); ``pulseq-body-2``: the same slice through the 2-channel
  body coil (low SNR).

Masks: BART's variable-density Poisson disc as its examples use it (``bart poisson -y 1 -z 1 -v
-e -C 20``: about 7.8× at 256², more on smaller grids), our variable-density Poisson disc at 4×,
and fastMRI-style equispaced lines (4×, centre 8 %) on the real slices.

Usage::

    python benchmarks/recon_sources.py --threads 2 --output results/recon_sources.json
    python benchmarks/recon_sources.py --only pulseq --no-sweep      # a subset, faster
    python benchmarks/recon_sources.py --networks                    # the shipped networks beside auto
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.fft import ifftc, rss
from medrestore.core.kspace import KSpace
from medrestore.core.random import make_generator
from medrestore.data.mri_recon import MRISliceSource, load_brain_slices
from medrestore.io import read_kspace
from medrestore.io.raw_bart import read_cfl, write_cfl
from medrestore.physics.mri.masks import MaskSpec, sample_mask
from medrestore.physics.mri.simulation import birdcage_coil_maps, simulate_kspace, smooth_phase
from medrestore.tasks.recon import ReconOptions, reconstruct, score_reconstruction

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PULSEQ = SHARED / "mri-raw-pulseq"
BART_LAMBDAS = (0.001, 0.003, 0.01, 0.03, 0.1)
SWEEP = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
NETWORKS = ("unet", "vgg-unet", "unrolled")
"""The shipped Cartesian reconstruction networks (``--networks``: each beside ``auto`` on every case)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """A fully sampled slice ``(coils, ny, nx)``, a sampling mask ``(ny, nx)`` and its reference:
    the RSS of the noise-free k-space where a simulator gives it (the truth), else of the data."""

    name: str
    kspace: torch.Tensor
    mask: torch.Tensor
    clean: torch.Tensor | None = None

    @property
    def reference(self) -> torch.Tensor:
        return rss(ifftc(self.kspace if self.clean is None else self.clean, 2), coil_axis=0)

    @property
    def acceleration(self) -> float:
        return float(self.mask.numel() / self.mask.sum())


def bart(*words: str, threads: int = 2) -> None:
    subprocess.run(["bart", *words], check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def as_slice(array: np.ndarray) -> torch.Tensor:
    """A BART ``[x, y, 1, coils]`` array (read as C-order ``(coils, 1, y, x)``) → ``(coils, y, x)``."""
    return torch.from_numpy(np.ascontiguousarray(array.reshape(array.shape[0], *array.shape[-2:]))).to(torch.complex64)


Pair = tuple[torch.Tensor, torch.Tensor | None]
"""``(k-space with noise, noise-free k-space or None)``."""


def bart_phantom(folder: Path, options: list[str], size: int, coils: int, noise: float, seed: int) -> Pair:
    """BART's k-space phantom with ``bart noise`` of standard deviation ``noise`` × its RMS amplitude."""
    bart("phantom", "-k", "-s", str(coils), "-x", str(size), *options, str(folder / "clean"))
    clean = as_slice(read_cfl(folder / "clean"))
    variance = (noise * float(clean.abs().square().mean().sqrt())) ** 2
    bart("noise", "-s", str(seed), "-n", f"{variance:.6g}", str(folder / "clean"), str(folder / "noisy"))
    return as_slice(read_cfl(folder / "noisy")), clean


def _poisson(folder: Path, shape: tuple[int, int], per_axis: float, seed: int) -> torch.Tensor:
    bart("poisson", "-Y", str(shape[0]), "-Z", str(shape[1]), "-y", f"{per_axis:.4f}", "-z", f"{per_axis:.4f}", "-C", "20",
         "-v", "-e", "-s", str(seed), str(folder / "mask"))  # fmt: skip
    pattern = np.abs(read_cfl(folder / "mask")).reshape(shape[1], shape[0]).T  # BART [1, Y, Z] → (Y, Z)
    return torch.from_numpy(pattern > 0)


def bart_poisson_mask(folder: Path, shape: tuple[int, int], seed: int) -> torch.Tensor:
    """BART's variable-density Poisson disc at its densest (``-y 1 -z 1 -v -e -C 20``): about 7.8× at 256²,
    the pattern of BART's own examples."""
    return _poisson(folder, shape, 1.0, seed)


def our_poisson_mask(shape: tuple[int, int], acceleration: float, seed: int) -> torch.Tensor:
    """Our variable-density Poisson disc (centre 8 %)."""
    return torch.broadcast_to(sample_mask(MaskSpec("poisson", acceleration, 0.08, seed), shape), shape).clone()


def equispaced_mask(shape: tuple[int, int]) -> torch.Tensor:
    return torch.broadcast_to(sample_mask(MaskSpec("equispaced", 4.0, 0.08, 0), shape), shape).clone()


def compressed(folder: Path, kspace: torch.Tensor, coils: int) -> Pair:
    write_cfl(kspace.numpy()[:, None], folder / "many")
    bart("cc", "-p", str(coils), "-S", str(folder / "many"), str(folder / "few"))
    return as_slice(read_cfl(folder / "few")), None


def our_brain(noise: float, seed: int) -> Pair:
    source = MRISliceSource(files=(str(SHARED / "brain-mri-ants" / "r64slice.jpg"),))
    _, image = next(iter(load_brain_slices(source, 256)))
    generator = make_generator(seed)
    shape = tuple(image.shape)
    obj = torch.polar(image, smooth_phase(shape, generator, max_phase=1.0))  # type: ignore[arg-type]
    clean = simulate_kspace(obj, birdcage_coil_maps(shape, 8), 0.0, generator).to(torch.complex64)  # type: ignore[arg-type]
    rms = float(clean.abs().square().mean().sqrt())
    noise_draw = torch.randn(clean.shape, dtype=torch.complex64, generator=generator) * noise * rms
    return clean + noise_draw, clean


def real(path: Path) -> Pair:
    return read_kspace(path).data, None


def cases(folder: Path, only: str | None) -> Iterator[Case]:
    """The cases of every source (``only``: those whose name contains it)."""
    sources: dict[str, Callable[[], Pair]] = {
        "bart-sl-8-lownoise": lambda: bart_phantom(folder, [], 256, 8, 0.01, 1),
        "bart-sl-8-noisy": lambda: bart_phantom(folder, [], 256, 8, 0.05, 2),
        "bart-tubes-4": lambda: bart_phantom(folder, ["-T"], 192, 4, 0.02, 3),
        "ours-brain-8": lambda: our_brain(0.02, 4),
    }
    if PULSEQ.is_dir():
        sources["pulseq-16"] = lambda: real(PULSEQ / "2024-02-06-164128.dat")
        sources["pulseq-cc8"] = lambda: compressed(folder, real(PULSEQ / "2024-02-06-164128.dat")[0], 8)
        sources["pulseq-body-2"] = lambda: real(PULSEQ / "2024-02-06-164120.dat")
    for index, (name, make) in enumerate(sources.items()):
        if only is not None and only not in name:
            continue
        kspace, clean = make()
        shape = tuple(kspace.shape[-2:])
        masks = {"bart-poisson": bart_poisson_mask(folder, shape, index), "poisson4": our_poisson_mask(shape, 4.0, index)}
        if name.startswith("pulseq"):
            masks["lines4"] = equispaced_mask(shape)
        for mask_name, mask in masks.items():
            yield Case(f"{name}/{mask_name}", kspace, mask, clean)


def support_scores(image: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """The scores inside the reference's support (pixels above 5 % of its 99th percentile)."""
    support = (reference > 0.05 * torch.quantile(reference.flatten(), 0.99)).to(torch.float32)
    scores = score_reconstruction(image * support, reference * support)
    return {"psnr_support": scores["psnr"], "ssim_support": scores["ssim"]}


def scored(image: torch.Tensor, reference: torch.Tensor, seconds: float, **extra: Any) -> dict[str, Any]:
    scores = score_reconstruction(image, reference)
    return {"psnr": scores["psnr"], "ssim": scores["ssim"], **support_scores(image, reference), "seconds": seconds, **extra}


def ours(case: Case, lam: float | None = None, method: str = "auto") -> dict[str, Any]:
    data = KSpace(case.kspace * case.mask, tuple(case.kspace.shape[-2:]), case.mask, None, np.eye(4), {})
    start = time.perf_counter()
    result = reconstruct(data, ReconOptions(method=method, lam=lam))
    selection = result.image.metadata.get("recon_lambda_selection") or [{}]
    return scored(result.image.data, case.reference, time.perf_counter() - start, method=result.method, lam=result.lam,
                  rule_lam=selection[0].get("rule_lambda"))  # fmt: skip


def bart_pics(case: Case, folder: Path, lambdas: tuple[float, ...], threads: int) -> dict[float, dict[str, Any]]:
    """``bart ecalib`` (its defaults) then ``bart pics -l1 -r λ`` (its defaults) for each ``λ``."""
    write_cfl((case.kspace * case.mask).numpy()[:, None], folder / "under")
    start = time.perf_counter()
    bart("ecalib", "-m1", str(folder / "under"), str(folder / "sens"), threads=threads)
    calibration = time.perf_counter() - start
    results = {}
    for lam in lambdas:
        start = time.perf_counter()
        bart("pics", "-l1", "-r", str(lam), str(folder / "under"), str(folder / "sens"), str(folder / "out"), threads=threads)
        seconds = calibration + time.perf_counter() - start
        image = torch.from_numpy(np.abs(read_cfl(folder / "out")).reshape(case.kspace.shape[-2:]).astype(np.float32))
        results[lam] = scored(image, case.reference, seconds, lam=lam)
    return results


def run_case(case: Case, folder: Path, threads: int, sweep: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"case": case.name, "acceleration": round(case.acceleration, 2), "coils": int(case.kspace.shape[0])}
    row["auto"] = ours(case)
    if row["auto"]["rule_lam"]:  # the noise rule alone, as recon ran before the hold-out choice (100 iterations from zero)
        row["rule"] = ours(case, row["auto"]["rule_lam"])
    if sweep and row["auto"]["lam"]:
        row["auto-sweep"] = {str(factor): ours(case, factor * row["auto"]["lam"]) for factor in SWEEP}
    if shutil.which("bart") is not None:
        grid = bart_pics(case, folder, BART_LAMBDAS, threads)
        best = max(grid, key=lambda lam: grid[lam]["psnr"])
        row["bart@0.01"], row["bart-best"] = grid[0.01], {**grid[best]}
    summary = {key: round(row[key]["psnr"], 2) for key in ("auto", "bart@0.01", "bart-best") if key in row}
    print(case.name, f"R={row['acceleration']}", summary, flush=True)
    return row


def network_row(case: Case) -> dict[str, Any]:
    """``auto`` and each shipped reconstruction network (:data:`NETWORKS`) on ``case``."""
    row: dict[str, Any] = {"case": case.name, "acceleration": round(case.acceleration, 2), "auto": ours(case)}
    for method in NETWORKS:
        row[method] = ours(case, method=method)
    print(case.name, {key: round(row[key]["psnr"], 2) for key in ("auto", *NETWORKS)}, flush=True)
    return row


def network_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | R | `auto` | " + " | ".join(f"`{m}`" for m in NETWORKS) + " |", "|---|---|---|" + "---|" * len(NETWORKS)]
    for row in rows:
        cells = [f"{row[key]['psnr']:.2f} / {row[key]['ssim']:.3f}" for key in ("auto", *NETWORKS)]
        lines.append(f"| {row['case']} | {row['acceleration']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | R | auto dB / SSIM (support) | s | BART λ=0.01 | BART best λ | best ×auto-λ |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        def cell(entry: dict[str, Any] | None) -> str:
            if entry is None:
                return "–"
            return f"{entry['psnr']:.2f} / {entry['ssim']:.3f} ({entry['psnr_support']:.2f} / {entry['ssim_support']:.3f})"
        best_factor = ""
        if "auto-sweep" in row:
            factor = max(row["auto-sweep"], key=lambda f: row["auto-sweep"][f]["psnr"])
            best_factor = f"×{factor}: {row['auto-sweep'][factor]['psnr']:.2f}"
        best = row.get("bart-best")
        best_text = f"{cell(best)} λ={best['lam']:g}" if best else "–"
        lines.append(f"| {row['case']} | {row['acceleration']} | {cell(row['auto'])} | {row['auto']['seconds']:.2f} | "
                     f"{cell(row.get('bart@0.01'))} | {best_text} | {best_factor} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="run the sources whose name contains this")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep of auto's weight")
    parser.add_argument("--networks", action="store_true", help="the shipped networks beside auto instead of BART")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.networks:
        with tempfile.TemporaryDirectory() as name:
            rows = [network_row(case) for case in cases(Path(name), args.only)]
        print(network_table(rows))
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))
        return
    with tempfile.TemporaryDirectory() as name:
        rows = [run_case(case, Path(name), args.threads, not args.no_sweep) for case in cases(Path(name), args.only)]
    print(table(rows))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
