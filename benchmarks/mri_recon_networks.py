"""Ship trained MRI reconstruction networks to the zoo and score them on held-out data.

Takes the best checkpoint of ``medrestore train`` runs (``configs/mri-*.yaml``), writes each to
the zoo (``src/medrestore/zoo``) and scores ``recon --method <network>`` for every network in
the zoo beside zero-filled and CS-TV (same ESPIRiT maps, fastMRI metrics after the
least-squares intensity fit) on:

* **held-out simulated slices**: the ANTs brain images r64 and r85 (never seen in training or
  validation), an 8-coil birdcage array (radius 1.5) and a 12-coil Gaussian array, smooth phase
  (seed 0), 1 % complex noise; random, equispaced and Poisson-disc masks at 4× and 8× (centre
  fraction 0.08, seed 0) — 24 problems; reference = the object's magnitude;
* **the real 16-coil brain slice** ``../shared/data/mri-raw-pulseq/2024-02-06-164128.dat``
  (reference: RSS of the fully sampled k-space), same masks — 6 problems.

The card's metrics are these means; the per-problem rows are printed and written with ``--output``.

Usage::

    python benchmarks/mri_recon_networks.py --ship unet=results/mri-unet --ship unrolled=results/mri-unrolled \
        --ship vgg-unet=results/mri-vgg-unet --threads 1 --output results/mri-networks-eval.json
"""

from __future__ import annotations

import argparse
import json
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
from medrestore.io import read_kspace
from medrestore.models import create_model
from medrestore.physics.mri import MaskSpec, espirit_maps, sample_mask
from medrestore.physics.mri.simulation import birdcage_coil_maps, gaussian_coil_maps, simulate_kspace, smooth_phase
from medrestore.tasks.recon import RECON_ESPIRIT, ReconOptions, reconstruct, score_reconstruction
from medrestore.tasks.recon_networks import NETWORK_MODELS, network_available
from medrestore.training.checkpoint import load_checkpoint
from medrestore.zoo import save_to_zoo

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BRAIN = DATA / "mri-raw-pulseq" / "2024-02-06-164128.dat"
HELD_OUT = ("r64slice.jpg", "r85slice.jpg")
SETTINGS = [(kind, acceleration) for acceleration in (4, 8) for kind in ("random", "equispaced", "poisson")]
ZOO = ROOT / "src" / "medrestore" / "zoo"
INPUTS = {"unet": "image", "vgg-unet": "image", "unrolled": "physics"}
CONFIGS = {"unet": "configs/mri-recon-unet.yaml", "vgg-unet": "configs/mri-recon-vgg-unet.yaml", "unrolled": "configs/mri-recon-unrolled.yaml"}
SPLIT = (
    "training: Colin27 axial slices z = 50-112 (every 2nd) + ANTs r16/r27/r30/r62; validation (best epoch): Colin27 z = 122, 126; "
    "held out (these metrics): ANTs r64/r85 (simulated 8-coil birdcage and 12-coil Gaussian arrays) and the real 16-coil "
    "pulseq brain slice 164128 (never used in training)"
)


def held_out_problems() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, full multi-coil k-space, reference magnitude)`` for the simulated held-out slices and the real slice."""
    slices = load_brain_slices(MRISliceSource(files=tuple(str(DATA / "brain-mri-ants" / name) for name in HELD_OUT)), 128)
    problems = []
    for index, (name, magnitude) in enumerate(slices):
        for array, maps in (("birdcage8", birdcage_coil_maps((128, 128), 8, 1.5, 0.3)), ("gaussian12", gaussian_coil_maps((128, 128), 12, 0.7))):
            phase = smooth_phase((128, 128), make_generator(index))
            full = simulate_kspace(torch.polar(magnitude, phase), maps, 0.01, make_generator(100 + index))
            problems.append((f"{name}/{array}", full, magnitude))
    if BRAIN.is_file():
        full = read_kspace(BRAIN).data
        reference = rss(ifftc(full), 0)
        problems.append(("pulseq-164128", full / reference.max(), reference / reference.max()))
    return problems


def evaluate(methods: list[str]) -> list[dict[str, Any]]:
    """Rows ``{problem, mask, acceleration, method, psnr, ssim, nmse, seconds}`` for zero-filled, cs-tv, auto and ``methods``."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, full, reference in held_out_problems():
            for kind, acceleration in SETTINGS:
                mask = sample_mask(MaskSpec(kind, acceleration, 0.08, 0), tuple(full.shape[1:]))  # type: ignore[arg-type]
                kspace = KSpace((full * mask).to(torch.complex64), tuple(full.shape[1:]), mask)
                maps, _ = espirit_maps(kspace.data, mask, RECON_ESPIRIT)
                maps_path = Path(folder) / "maps.npy"
                np.save(maps_path, maps.numpy())
                for recon_method in ("zero-filled", "cs-tv", "auto", *methods):
                    result = reconstruct(kspace, ReconOptions(method=recon_method, coil_maps=str(maps_path)))
                    metrics = score_reconstruction(result.image.data, reference)
                    rows.append({"problem": name, "mask": kind, "acceleration": acceleration, "method": recon_method,
                                 "psnr": metrics["psnr"], "ssim": metrics["ssim"], "nmse": metrics["nmse"], "seconds": result.seconds})
    return rows


def summary(rows: list[dict[str, Any]], method: str) -> dict[str, float]:
    """Mean PSNR/SSIM of ``method`` and its gain over CS-TV, on simulated and on real problems."""
    out: dict[str, float] = {}
    for group, test in (("simulated", lambda p: p != "pulseq-164128"), ("real", lambda p: p == "pulseq-164128")):
        for recon_method, prefix in ((method, ""), ("cs-tv", "cs_tv_"), ("zero-filled", "zero_filled_")):
            selected = [row for row in rows if test(row["problem"]) and row["method"] == recon_method]
            if selected:
                out[f"{prefix}{group}_psnr"] = round(float(np.mean([row["psnr"] for row in selected])), 3)
                out[f"{prefix}{group}_ssim"] = round(float(np.mean([row["ssim"] for row in selected])), 4)
    network = [row["seconds"] for row in rows if row["method"] == method]
    out["seconds_per_slice"] = round(float(np.median(network)), 3)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| problem | mask | R | method | PSNR | SSIM | NMSE | s |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['problem']} | {row['mask']} | {row['acceleration']} | {row['method']} | {row['psnr']:.2f} | "
                     f"{row['ssim']:.3f} | {row['nmse']:.4f} | {row['seconds']:.2f} |")
    return "\n".join(lines)


def ship(method: str, run: Path, metrics: dict[str, object], wall_seconds: float | None = None) -> None:
    checkpoint = load_checkpoint(run / "best.pt")
    model = create_model(checkpoint["model"]["name"], checkpoint["model"]["options"])
    model.load_state_dict(checkpoint["model"]["state_dict"])
    history = load_checkpoint(run / "last.pt")["history"]
    training = {
        "data": "real brain MRI (ANTs Colin27 + 2-D slices, Apache-2.0) turned into multi-coil k-space: random birdcage "
                "(8/12/16 loops) or Gaussian coil arrays with sum |S|^2 = 1, smooth random phase, 0-2 % noise; random/equispaced "
                "lines (R 4-8, either axis) and Poisson-disc (R 4, 8) masks, centre 0.08, new draw every epoch (medrestore.data.mri_recon)",
        "split": SPLIT,
        "command": f"medrestore train --config {CONFIGS[method]}",
        "seed": 0,
        "epochs": len(history),
        "best_epoch": checkpoint["progress"]["best_epoch"],
        "duration_s": round(sum(float(row["seconds"]) for row in history), 1) if wall_seconds is None else round(wall_seconds, 1),
        "loss": "l1",
        "threads": 1,
    }
    normalisation = {"kind": "none", "scale": "quantile 0.99 of |zero-filled coil-combined image|", "inputs": INPUTS[method]}
    description = {
        "unet": "fastMRI-style U-Net (residual, complex as 2 channels) on the coil-combined zero-filled image; `medrestore recon "
                "--method unet`. A small CPU-trained baseline (~250 steps): barely above zero-filled, far below CS-TV.",
        "vgg-unet": "U-Net with a VGG19 encoder (widths / 4, trained from scratch, no ImageNet weights); `medrestore recon --method "
                    "vgg-unet`. A small CPU-trained baseline (~250 steps): barely above zero-filled, far below CS-TV.",
        "unrolled": "Unrolled ISTA-Net+ (6 stages, per-stage weights, learned soft thresholds) with SENSE data consistency, started "
                    "from 10 CG-SENSE iterations; `medrestore recon --method unrolled`. Below CS-TV on the held-out data (not used by auto).",
    }[method]
    save_to_zoo(model, name=NETWORK_MODELS[method], task="recon", modality="mri", normalisation=normalisation, training=training,
                metrics=metrics, licence="Apache-2.0", description=description, zoo_dir=ZOO, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ship", action="append", default=[], metavar="METHOD=RUN", help="write RUN/best.pt to the zoo as METHOD's model")
    parser.add_argument("--wall", action="append", default=[], metavar="METHOD=SECONDS", help="measured training wall time for the card")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = dict(item.split("=", 1) for item in args.ship)
    walls = {key: float(value) for key, value in (item.split("=", 1) for item in args.wall)}
    for method, run in runs.items():
        ship(method, Path(run), {"convention": "pending evaluation"}, walls.get(method))
    methods = [method for method in NETWORK_MODELS if network_available(method)]
    start = time.perf_counter()
    rows = evaluate(methods)
    results = {}
    for method in methods:
        metrics = {"convention": "fastmri, after least-squares intensity fit; means over held-out problems (benchmarks/mri_recon_networks.py)",
                   **summary(rows, method)}
        results[method] = metrics
        if method in runs:
            ship(method, Path(runs[method]), metrics, walls.get(method))
    print(table(rows))
    print(json.dumps(results, indent=2))
    print(f"evaluation {time.perf_counter() - start:.0f} s")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"metrics": results, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
