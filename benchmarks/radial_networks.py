"""Radial MRI networks: a U-Net on gridded radial images, a learned gradient-delay correction, the unrolled network.

Data (``make-data``): real brain slices (Colin27 ``ch2.nii.gz`` axial z = 50…112 every 2nd for
training, z = 122 and 126 for validation, 128×128) turned into simulated radial acquisitions
(:func:`medrestore.tasks.radial.simulate_radial`: golden-angle full spokes, 48–96 spokes,
8 birdcage coils, 2× readout oversampling, noise 0.001–0.003 of ``max|y|``) and gridded on the
*nominal* trajectory (:func:`~medrestore.tasks.radial.reconstruct_radial`, ``zero-filled`` =
Pipe–Menon density-compensated gridding + RSS, no delay correction). ``--delays`` draws per-axis
gradient delays uniformly in [−1, 1] samples for every acquisition (the learned delay network),
otherwise the acquisitions have no delay (the gridding U-Net). Input = gridded magnitude,
target = the clean slice; both are divided by the input's 99th percentile. Files:
``OUT/{train,val}/{input,target}/NAME.npy`` (matched by name, ``paired-folders`` layout).

Evaluation (``evaluate``): the ANTs slices ``r64slice.jpg`` and ``r85slice.jpg`` (never used
for training or validation), 64 golden-angle spokes, 8 coils, noise 0.002; PSNR/SSIM after the
least-squares intensity fit (:func:`medrestore.tasks.recon.score_reconstruction`) of gridding,
gridding + U-Net and CS-TV without delays, and with delays (0.7, −0.4) of uncorrected gridding,
RING-corrected gridding (also followed by the gridding U-Net, which is what ``recon --method unet``
does), RING-corrected CS-TV and the learned delay network on the uncorrected gridding; the same slices
magnified ×1.6 (central window resampled) so that the brain fills the field of view, delayed and
RING-corrected (gridding, CS-TV and the networks); with
``--unrolled`` also the radial unrolled network (NUFFT-SENSE data consistency; trained on its own
on-the-fly data, ``configs/radial-unrolled.yaml``) without delays and after RING correction.

Usage::

    python benchmarks/radial_networks.py make-data --out results/radial-data/plain
    python benchmarks/radial_networks.py make-data --out results/radial-data/delay --delays
    medrestore train --config configs/radial-unet.yaml
    medrestore train --config configs/radial-delay-unet.yaml
    python benchmarks/radial_networks.py evaluate --unet results/radial-unet/best.pt \
        --delay-unet results/radial-delay-unet/best.pt --json results/radial-networks.json
    python benchmarks/radial_networks.py ship results/radial-unet/best.pt --config configs/radial-unet.yaml \
        --evaluation results/radial-networks.json     # zoo model unet-radial-brain (recon --method unet)
    medrestore train --config configs/radial-unrolled.yaml
    python benchmarks/radial_networks.py evaluate --unet results/radial-unet/best.pt \
        --unrolled results/radial-unrolled/best.pt --json results/radial-networks.json
    python benchmarks/radial_networks.py ship-unrolled results/radial-unrolled/best.pt \
        --config configs/radial-unrolled.yaml --evaluation results/radial-networks.json   # unrolled-radial-brain
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medrestore.core.image import Image
from medrestore.data.mri_recon import MRISliceSource, load_brain_slices
from medrestore.inference.predictor import Predictor
from medrestore.physics.mri.trajectory import GradientDelay
from medrestore.tasks.radial import (
    RADIAL_NETWORK, RADIAL_UNROLLED, RadialReconOptions, RadialSimulation, apply_radial_network, network_scale, reconstruct_radial, simulate_radial,
)
from medrestore.tasks.models import publish_checkpoint
from medrestore.tasks.recon import score_reconstruction

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "src" / "medrestore" / "zoo"
DATA = ROOT.parent / "shared" / "data" / "brain-mri-ants"
VOLUME = DATA / "ch2.nii.gz"
TRAINING = MRISliceSource(files=(str(VOLUME),), slice_range=(0.28, 0.62), slice_step=2)  # z = 50…112
VALIDATION = MRISliceSource(files=(str(VOLUME),), slice_range=(0.68, 0.71), slice_step=4)  # z = 122, 126
HELD_OUT = MRISliceSource(files=(str(DATA / "r64slice.jpg"), str(DATA / "r85slice.jpg")))
SIZE = 128
SPOKE_RANGE = (48, 96)
NOISE_RANGE = (0.001, 0.003)
MAX_DELAY = 1.0
TRUE_DELAY = GradientDelay(0.7, -0.4)
FILL_ZOOM = 1.6
"""Magnification of the held-out slices in the "fills the field of view" condition."""


def gridded(
    image: torch.Tensor, simulation: RadialSimulation, correction: str = "none", method: str = "zero-filled",
    network: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Magnitude reconstruction of a simulated radial acquisition of ``image`` (nominal trajectory unless corrected)."""
    kspace = simulate_radial(Image.from_array(image, modality="mri"), simulation)
    return reconstruct_radial(kspace, RadialReconOptions(method, delay_correction=correction), network).image.data


def scaled_pair(source: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """``(input, target, scale)``: both divided by the input's 99th percentile."""
    scale = network_scale(source)
    return (source / scale).numpy().astype(np.float32), (target / scale).numpy().astype(np.float32), scale


def draw_simulation(rng: np.random.Generator, delays: bool, seed: int) -> RadialSimulation:
    spokes = int(rng.integers(SPOKE_RANGE[0], SPOKE_RANGE[1] + 1))
    noise = float(rng.uniform(*NOISE_RANGE))
    delay = GradientDelay(*(float(v) for v in rng.uniform(-MAX_DELAY, MAX_DELAY, 2))) if delays else GradientDelay()
    return RadialSimulation(spokes=spokes, golden=True, coils=8, noise=noise, delay=delay, seed=seed)


def make_pairs(slices: list[tuple[str, torch.Tensor]], out: Path, draws: int, delays: bool, seed: int) -> list[dict[str, Any]]:
    """Write ``draws`` simulated acquisitions per slice to ``out/input`` and ``out/target``; returns one record per pair."""
    (out / "input").mkdir(parents=True, exist_ok=True)
    (out / "target").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for index, (name, image) in enumerate(slices):
        for draw in range(draws):
            simulation = draw_simulation(rng, delays, seed * 100_000 + index * 100 + draw)
            source, target, scale = scaled_pair(gridded(image, simulation), image)
            stem = f"{index:03d}_{draw}"
            np.save(out / "input" / f"{stem}.npy", source)
            np.save(out / "target" / f"{stem}.npy", target)
            records.append({"file": f"{stem}.npy", "slice": name, "spokes": simulation.spokes, "noise": simulation.noise,
                            "delay": list(simulation.delay.as_tuple()), "scale": scale})
    return records


def make_data(out: Path, delays: bool, draws: int, validation_draws: int, seed: int) -> None:
    start = time.perf_counter()
    train = make_pairs(load_brain_slices(TRAINING, SIZE), out / "train", draws, delays, seed)
    val = make_pairs(load_brain_slices(VALIDATION, SIZE), out / "val", validation_draws, delays, seed + 1)
    (out / "pairs.json").write_text(json.dumps({"train": train, "val": val}, indent=1))
    print(json.dumps({"out": str(out), "train": len(train), "val": len(val), "seconds": round(time.perf_counter() - start, 1)}))


def evaluate(unet: Path | None, delay_unet: Path | None, unrolled: Path | None, spokes: int, noise: float) -> list[dict[str, Any]]:
    networks = {"unet": Predictor.from_checkpoint(unet, "cpu").model.eval() if unet else None,
                "delay-unet": Predictor.from_checkpoint(delay_unet, "cpu").model.eval() if delay_unet else None,
                "unrolled": Predictor.from_checkpoint(unrolled, "cpu").model.eval() if unrolled else None}
    rows: list[dict[str, Any]] = []

    def add(condition: str, method: str, name: str, result: torch.Tensor, reference: torch.Tensor) -> None:
        score = score_reconstruction(result.to(torch.float32), reference)
        rows.append({"condition": condition, "method": method, "slice": name, "psnr": score["psnr"], "ssim": score["ssim"]})

    for index, (name, image) in enumerate(load_brain_slices(HELD_OUT, SIZE)):
        plain = RadialSimulation(spokes=spokes, golden=True, coils=8, noise=noise, seed=7 + index)
        delayed = RadialSimulation(spokes=spokes, golden=True, coils=8, noise=noise, delay=TRUE_DELAY, seed=7 + index)
        grid = gridded(image, plain)
        add("no delay", "gridding", name, grid, image)
        add("no delay", "CS-TV", name, gridded(image, plain, "none", "cs-tv"), image)
        if networks["unet"] is not None:
            add("no delay", "gridding + U-Net", name, apply_radial_network(networks["unet"], grid), image)
        if networks["unrolled"] is not None:
            add("no delay", "unrolled (NUFFT DC)", name, gridded(image, plain, "none", "unrolled", networks["unrolled"]), image)
        uncorrected = gridded(image, delayed)
        add("delay (0.7, -0.4)", "gridding, uncorrected", name, uncorrected, image)
        corrected = gridded(image, delayed, "ring")
        add("delay (0.7, -0.4)", "gridding, RING", name, corrected, image)
        if networks["unet"] is not None:
            add("delay (0.7, -0.4)", "gridding, RING + U-Net", name, apply_radial_network(networks["unet"], corrected), image)
        add("delay (0.7, -0.4)", "CS-TV, RING", name, gridded(image, delayed, "ring", "cs-tv"), image)
        if networks["unrolled"] is not None:
            add("delay (0.7, -0.4)", "unrolled (NUFFT DC), RING", name, gridded(image, delayed, "ring", "unrolled", networks["unrolled"]), image)
        if networks["delay-unet"] is not None:
            add("delay (0.7, -0.4)", "learned delay network (uncorrected gridding)", name, apply_radial_network(networks["delay-unet"], uncorrected), image)
        # the same slice magnified so that the brain fills the field of view (unlike whole-head slices)
        filled = fills_field_of_view(image)
        condition = f"fills the FOV (×{FILL_ZOOM:g}), delay, RING"
        add(condition, "gridding", name, gridded(filled, delayed, "ring"), filled)
        add(condition, "CS-TV", name, gridded(filled, delayed, "ring", "cs-tv"), filled)
        if networks["unet"] is not None:
            add(condition, "gridding + U-Net", name, apply_radial_network(networks["unet"], gridded(filled, delayed, "ring")), filled)
        if networks["unrolled"] is not None:
            add(condition, "unrolled (NUFFT DC)", name, gridded(filled, delayed, "ring", "unrolled", networks["unrolled"]), filled)
    return rows


def fills_field_of_view(image: torch.Tensor, zoom: float | None = None) -> torch.Tensor:
    """The central ``size / zoom`` window of ``image`` resampled to ``size`` (bilinear): anatomy up to the edges."""
    zoom = FILL_ZOOM if zoom is None else zoom
    size = image.shape[-1]
    width = int(round(size / zoom))
    start = (size - width) // 2
    window = image[start : start + width, start : start + width]
    return torch.nn.functional.interpolate(window[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = list(dict.fromkeys((row["condition"], row["method"]) for row in rows))
    table = []
    for condition, method in keys:
        chosen = [row for row in rows if (row["condition"], row["method"]) == (condition, method)]
        table.append({"condition": condition, "method": method, "psnr": float(np.mean([r["psnr"] for r in chosen])),
                      "ssim": float(np.mean([r["ssim"] for r in chosen]))})
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| condition | method | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    lines += [f"| {row['condition']} | {row['method']} | {row['psnr']:.2f} | {row['ssim']:.4f} |" for row in table]
    return "\n".join(lines)


def _publish(checkpoint: Path, name: str, training: dict[str, Any], metrics: dict[str, Any], description: str) -> None:
    """Write ``checkpoint`` to the packaged zoo as the radial reconstruction model ``name`` and print its metrics."""
    card = publish_checkpoint(checkpoint, name=name, task="recon", modality="mri", training=training, metrics=metrics,
                              description=description, zoo_dir=ZOO)
    print(json.dumps({"name": card.name, "metrics": metrics}))


def ship(checkpoint: Path, config: str, delays: bool, evaluation: Path) -> None:
    """Publish ``checkpoint`` as the zoo's radial U-Net with its held-out metrics from an ``evaluate --json`` file."""
    table = json.loads(evaluation.read_text())["table"]
    prefix = "learned delay network" if delays else "gridding + U-Net"
    row = next(row for row in table if row["method"].startswith(prefix))
    draw = "per-axis gradient delays uniform in [-1, 1] samples, gridded on the nominal trajectory" if delays else "no gradient delay"
    training = {
        "data": "Colin27 axial slices (ANTs, Apache-2.0) at 128x128 turned into simulated golden-angle radial acquisitions "
                f"(48-96 spokes, 8 birdcage coils, 2x readout oversampling, noise 0.001-0.003 of max|y|, {draw}); input = "
                "Pipe-Menon density-compensated gridding + RSS, target = the clean slice, both divided by the input's 99th "
                "percentile; 8 acquisitions per slice (benchmarks/radial_networks.py make-data)",
        "split": "training: Colin27 z = 50-112 (every 2nd); validation (best epoch): z = 122, 126; held out (these metrics): "
                 "ANTs r64slice/r85slice",
        "command": f"medrestore train --config {config}",
        "loss": "l1",
        "threads": 1,
    }
    metrics = {
        "convention": f"fastmri, after least-squares intensity fit; mean over the held-out slices, 64 golden-angle spokes, 8 coils, "
                      f"noise 0.002, {row['condition']} (benchmarks/radial_networks.py evaluate)",
        "psnr": round(row["psnr"], 3), "ssim": round(row["ssim"], 4),
    }
    corrected = [row for row in table if row["method"] == "gridding, RING + U-Net"]
    if not delays and corrected:  # what recon --method unet does on delayed data: RING, gridding, the network
        metrics.update(psnr_delay_ring=round(corrected[0]["psnr"], 3), ssim_delay_ring=round(corrected[0]["ssim"], 4))
        metrics["convention"] += "; *_delay_ring: delays (0.7, -0.4), RING-corrected gridding + the network"
    description = ("U-Net (residual, 1 channel) on the density-compensated gridded magnitude of radial MRI; `medrestore recon "
                   "--method unet` on radial k-space grids (after the delay correction) and applies it. A small CPU-trained model: "
                   "6 dB above gridding on the held-out slices without delays, below CS-TV and the unrolled network "
                   "(unrolled-radial-brain, the auto default; benchmarks/README.md, Radial).")
    _publish(checkpoint, RADIAL_NETWORK, training, metrics, description)


def ship_unrolled(checkpoint: Path, config: str, evaluation: Path) -> None:
    """Publish ``checkpoint`` as the zoo's radial unrolled network with its held-out metrics from an ``evaluate --json`` file."""
    table = {row["method"]: row for row in json.loads(evaluation.read_text())["table"]}
    plain, corrected = table["unrolled (NUFFT DC)"], table["unrolled (NUFFT DC), RING"]
    training = {
        "data": "Colin27 axial slices and the ANTs r16/r27/r30/r62 pictures (Apache-2.0) at 128x128, each acquired anew every epoch "
                "(data.mri.radial): golden-angle full spokes (48/64/96, pattern rotated by one of 8 angles), 2x readout "
                "oversampling, random birdcage/Gaussian arrays of 8-16 coils, smooth object phase, noise 0.0005-0.004 of max|y|, "
                "a residual delay of up to +-0.05 samples per axis not given to the network; input = the Pipe-Menon "
                "density-compensated coil-combined gridding, k-space, nominal trajectory, weights and the true (phase-aligned) "
                "coil maps, all divided by the gridding's 99th percentile; target = the complex slice",
        "split": "training: Colin27 z = 50-112 (every 2nd) + ANTs r16/r27/r30/r62; validation (best epoch): Colin27 z = 122, 126 "
                 "(64 spokes); held out (these metrics): ANTs r64slice/r85slice",
        "command": f"medrestore train --config {config}",
        "loss": "l1",
    }
    metrics = {
        "convention": "fastmri, after least-squares intensity fit; mean over the held-out slices, 64 golden-angle spokes, 8 birdcage "
                      "coils (ESPIRiT maps from the radial centre at reconstruction), noise 0.002, no delay "
                      "(benchmarks/radial_networks.py evaluate); *_delay_ring: delays (0.7, -0.4), RING-corrected trajectory",
        "psnr": round(plain["psnr"], 3), "ssim": round(plain["ssim"], 4),
        "psnr_delay_ring": round(corrected["psnr"], 3), "ssim_delay_ring": round(corrected["ssim"], 4),
    }
    description = ("Unrolled CS + DL network for radial MRI (ISTA-Net+ stages, 8 CG-SENSE iterations first); every stage ends on a "
                   "data-consistency step through the density-weighted NUFFT-SENSE operator. `medrestore recon --method unrolled` "
                   "on radial k-space runs it after the delay correction (benchmarks/README.md, Radial).")
    _publish(checkpoint, RADIAL_UNROLLED, training, metrics, description)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-data", help="write the paired gridded-radial dataset")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--delays", action="store_true", help="random per-axis delays in [-1, 1] samples (nominal-trajectory gridding)")
    make.add_argument("--draws", type=int, default=4, help="acquisitions per training slice")
    make.add_argument("--validation-draws", type=int, default=2)
    make.add_argument("--seed", type=int, default=0)
    score = commands.add_parser("evaluate", help="held-out PSNR/SSIM table")
    score.add_argument("--unet", type=Path, help="checkpoint of the gridding U-Net")
    score.add_argument("--delay-unet", type=Path, help="checkpoint of the learned delay network")
    score.add_argument("--unrolled", type=Path, help="checkpoint of the radial unrolled network (configs/radial-unrolled.yaml)")
    score.add_argument("--spokes", type=int, default=64)
    score.add_argument("--noise", type=float, default=0.002)
    score.add_argument("--json", type=Path)
    publish = commands.add_parser("ship", help=f"publish a checkpoint to the zoo as {RADIAL_NETWORK}")
    publish.add_argument("checkpoint", type=Path)
    publish.add_argument("--config", required=True, help="the training configuration (recorded on the card)")
    publish.add_argument("--delays", action="store_true", help="the checkpoint is the learned delay network")
    publish.add_argument("--evaluation", type=Path, required=True, help="evaluate --json output with its held-out metrics")
    publish_unrolled = commands.add_parser("ship-unrolled", help=f"publish a checkpoint to the zoo as {RADIAL_UNROLLED}")
    publish_unrolled.add_argument("checkpoint", type=Path)
    publish_unrolled.add_argument("--config", required=True, help="the training configuration (recorded on the card)")
    publish_unrolled.add_argument("--evaluation", type=Path, required=True, help="evaluate --unrolled --json output")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "make-data":
        make_data(args.out, args.delays, args.draws, args.validation_draws, args.seed)
        return
    if args.command == "ship":
        ship(args.checkpoint, args.config, args.delays, args.evaluation)
        return
    if args.command == "ship-unrolled":
        ship_unrolled(args.checkpoint, args.config, args.evaluation)
        return
    rows = evaluate(args.unet, args.delay_unet, args.unrolled, args.spokes, args.noise)
    table = summarise(rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "table": table}, indent=1))
    print(markdown(table))


if __name__ == "__main__":
    main()
