"""Scanner harmonisation 1.5 T ↔ 3 T on the simulated scanner pair's held-out test subjects.

Data: ``medrestore harmonize-data simulate ../shared/data/brain-mri-ants/ch2.nii.gz -o
results/harmonize-sim`` (made here when missing): 16 subjects derived from Colin27 by seeded
smooth deformations, 10 axial 128 × 128 slices each, imaged by scanner a (1.5 T-like) and b
(3 T-like, with the occipital hyperintensity); subjects split 10 train / 2 validation / 4 test.

Methods (each trained or fitted on training subjects only):

* ``oracle`` — the target scanner's noise-free rendering of the same anatomy: the ideal output,
  which calibrates every column (what a perfect harmoniser scores);
* ``identity`` — no harmonisation (the "before" row);
* ``histogram-matching`` — fitted here on the unpaired training folders;
* ``coupled-dictionary`` — ``harmonizer.pt`` of ``configs/harmonize-coupled-dictionary-sim.yaml``
  (fitted here with that config's options when the file is missing);
* ``unet-paired`` — ``best.pt`` of ``configs/harmonize-unet-sim.yaml`` (b2a only; skipped when missing),
  and ``unet-paired+noise`` (then noise matching as below);
* ``cyclegan`` — the zoo model ``cyclegan-sim`` (or ``--cyclegan PATH`` to a run; with ``--publish RUN…``
  the mean of those runs' generators, then written into the zoo);
* ``cyclegan+noise`` — the same, then white Rician noise up to the target scanner's noise level
  (median wavelet estimate over its training slices; ``medrestore harmonize --noise-level``).

Measures (:mod:`medrestore.tasks.harmonize_eval`): scanner-classifier accuracy on target-scanner
test slices + harmonised source slices (classifier trained on the 2 validation subjects; 50 % =
chance), PSNR/SSIM inside the brain to the target scanner's acquired slice and to its noise-free
rendering, tissue-class Jaccard to the input (at the coarser scanner's resolution outside the
hyperintensity region, and over the whole brain as acquired) and to the clean anatomy, hyperintensity contrast
before/after and its removal (b2a), seconds per slice; plus the sparse analysis
(:mod:`medrestore.tasks.harmonize_analysis`) of the test pairs: contrast of the robust-PCA sparse
map and of the L1 map between the hyperintense region and the cortex elsewhere.

Usage::

    python benchmarks/harmonize.py --json results/harmonize-benchmark.json
    python benchmarks/harmonize.py --publish results/harmonize-cyclegan-sim results/harmonize-cyclegan-sim-seed1 \
        --json results/harmonize-benchmark.json   # score the mean of the two runs and write it into the zoo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from medrestore.data.harmonize import SimulationPlan, read_folder_slices, read_paired_folders, write_simulated_dataset
from medrestore.models.harmonizers import Harmonizer, NetworkHarmonizer, NoiseMatched
from medrestore.tasks.harmonize import resolve_harmonizer
from medrestore.tasks.harmonize_analysis import region_contrast, scanner_difference_maps
from medrestore.tasks.harmonize_eval import TARGET_OF, EvaluationSet, evaluate_direction, load_evaluation_set, train_judge
from medrestore.physics.scanner import estimate_noise_sigma, robust_level
from medrestore.training import load_checkpoint
from medrestore.training.harmonize import build_harmonizer, cyclegan_ensemble, load_harmonizer, load_harmonization_config
from medrestore.zoo import PACKAGED_ZOO, save_to_zoo

ROOT = Path(__file__).resolve().parents[1]
COLIN27 = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"


def ensure_data(root: Path) -> None:
    if not (root / "manifest.json").is_file():
        write_simulated_dataset(COLIN27, root, SimulationPlan(subjects=16, slices_per_subject=10))


def histogram_matching(root: Path) -> Harmonizer:
    harmonizer = build_harmonizer("histogram-matching")
    harmonizer.fit(read_folder_slices(root / "unpaired/train/a")[1], read_folder_slices(root / "unpaired/train/b")[1])
    return harmonizer


def coupled_dictionary(root: Path, path: Path) -> tuple[Harmonizer, float | None]:
    if path.is_file():
        return load_harmonizer(path), None
    options = load_harmonization_config(ROOT / "configs/harmonize-coupled-dictionary-sim.yaml").options
    harmonizer = build_harmonizer("coupled-dictionary", options)
    _, slices_a, slices_b = read_paired_folders(root / "paired/train/a", root / "paired/train/b")
    start = time.perf_counter()
    harmonizer.fit(slices_a, slices_b, seed=0)
    return harmonizer, time.perf_counter() - start


def sparse_contrast(data: EvaluationSet, source_like_b: torch.Tensor) -> dict[str, float]:
    """Region-minus-cortex contrast of the sparse and L1 difference maps of (a, b-like) test pairs."""
    maps = scanner_difference_maps(data.acquired["a"], source_like_b)
    region, control = data.region.any(dim=0), data.control.all(dim=0)
    return {
        "sparse_map_contrast": region_contrast(maps.sparse_difference, region, control),
        "l1_map_contrast": region_contrast(maps.l1_difference, region, control),
        "low_rank_rank": float(maps.low_rank_rank),
    }


class Oracle:
    """The ideal harmoniser: returns the target scanner's noise-free rendering of the test anatomy."""

    def __init__(self, data: EvaluationSet) -> None:
        self.data = data

    def harmonize(self, slices: torch.Tensor, direction: str) -> torch.Tensor:
        return self.data.noiseless[TARGET_OF[direction]]


def evaluate_all(args: argparse.Namespace, published: Harmonizer | None = None) -> dict[str, object]:
    """Every method on the test subjects; ``published`` (the CycleGAN about to be published) replaces ``--cyclegan``."""
    root = Path(args.data)
    ensure_data(root)
    data = load_evaluation_set(root)
    start = time.perf_counter()
    judge = train_judge(root, seed=0)
    judge_seconds = time.perf_counter() - start
    methods: dict[str, Harmonizer | Oracle | None] = {"oracle": Oracle(data), "identity": None, "histogram-matching": histogram_matching(root)}
    fit_seconds: dict[str, float | None] = {}
    methods["coupled-dictionary"], fit_seconds["coupled-dictionary"] = coupled_dictionary(root, Path(args.coupled))
    noise_levels = {s: float(estimate_noise_sigma(read_folder_slices(root / f"unpaired/train/{s}")[1]).median()) for s in "ab"}
    if Path(args.unet).is_file():
        methods["unet-paired"] = resolve_harmonizer(args.unet, "b2a")[0]
        methods["unet-paired+noise"] = NoiseMatched(methods["unet-paired"], noise_levels)  # type: ignore[arg-type]
    if args.cyclegan != "none":
        methods["cyclegan"] = None
        methods["cyclegan+noise"] = None
    results: dict[str, object] = {}
    for name, harmonizer in methods.items():
        rows: dict[str, object] = {}
        for direction in ("b2a", "a2b"):
            if name.startswith("unet-paired") and direction == "a2b":
                continue
            method = harmonizer
            if name.startswith("cyclegan"):
                method = published if published is not None else resolve_harmonizer(args.cyclegan, direction)[0]
                method = NoiseMatched(method, noise_levels) if name.endswith("+noise") else method
            row = evaluate_direction(method, data, judge, direction)  # type: ignore[arg-type]
            if direction == "b2a":
                output = data.acquired["b"] if method is None else method.harmonize(data.acquired["b"], "b2a")
                row.update(sparse_contrast(data, output))
            rows[direction] = row
            print(name, direction, json.dumps({key: round(value, 4) for key, value in row.items()}), flush=True)
        results[name] = rows
    return {
        "data": str(root),
        "test_subjects": sorted({name.split("_")[0] for name in data.names}),
        "test_slices": len(data.names),
        "classifier_training_seconds": judge_seconds,
        "noise_levels": noise_levels,
        "intensity_reference": {s: round(robust_level(read_folder_slices(root / f"unpaired/train/{s}")[1]), 4) for s in "ab"},
        "fit_seconds": fit_seconds,
        "threads": torch.get_num_threads(),
        "methods": results,
    }


def markdown(report: dict[str, object]) -> str:
    header = (
        "| method | direction | classifier acc. | PSNR (dB) | SSIM | SSIM noise-free | Jaccard input | Jaccard input, whole "
        "| Jaccard anatomy | hyperint. C after | removal | sparse-map contrast | s/slice |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for name, rows in report["methods"].items():  # type: ignore[union-attr]
        for direction, row in rows.items():
            def cell(key: str, digits: int = 3) -> str:
                return f"{row[key]:.{digits}f}" if key in row else "–"

            lines.append(
                f"| {name} | {direction} | {row['classifier_accuracy'] * 100:.0f} % | {cell('psnr', 2)} | {cell('ssim')} | "
                f"{cell('ssim_noiseless')} | {cell('jaccard_input')} | {cell('jaccard_input_whole')} | {cell('jaccard_anatomy')} | {cell('hyperintensity_after')} | "
                f"{cell('hyperintensity_removal')} | {cell('sparse_map_contrast', 4)} | {cell('seconds_per_slice', 4)} |"
            )
    return "\n".join(lines)


def publish(
    run_dirs: list[Path], checkpoints: list[dict[str, Any]], harmonizer: NetworkHarmonizer, report: dict[str, object], noise_levels: dict[str, float]
) -> None:
    """Write ``harmonizer`` (the mean of the runs' best generators) into the packaged zoo as ``cyclegan-sim-{a2b,b2a}``."""
    lasts = [load_checkpoint(run / "last.pt") for run in run_dirs]
    duration = float(sum(row["seconds"] for last in lasts for row in last["history"]))
    train = yaml.safe_load(checkpoints[0]["config"])["train"]
    losses = {key: train[key] for key in ("cycle_weight", "identity_weight", "adversarial_weight", "structure_weight", "structure_smoothing")}
    rows = report["methods"]["cyclegan"]  # type: ignore[index]
    for direction, network in harmonizer.networks.items():
        row = rows[direction]
        target = "a" if direction == "b2a" else "b"
        metrics = {
            "convention": "simulated scanner pair, 4 held-out test subjects (40 slices); SSIM/PSNR inside the brain, "
            "data range = target maximum; classifier trained on 2 validation subjects (50 % = chance); jaccard_input: "
            "tissue classes of output vs input at the coarser scanner's resolution outside the hyperintensity region, "
            "jaccard_input_whole: over the whole brain at native resolutions (the ideal output scores 0.930 / 0.885 in b2a)",
            **{key: round(float(value), 4) for key, value in row.items() if key != "low_rank_rank"},
        }
        noisy_row = report["methods"].get("cyclegan+noise", {}).get(direction)  # type: ignore[union-attr]
        if noisy_row:
            for key in ("classifier_accuracy", "ssim", "ssim_noiseless", "hyperintensity_removal"):
                if key in noisy_row:
                    metrics[f"{key}_noise_matched"] = round(float(noisy_row[key]), 4)
        save_to_zoo(
            network,
            name=f"cyclegan-sim-{direction}",
            task="harmonize",
            modality="mri",
            normalisation={"kind": "range", "scale": harmonizer.scale, "offset": 0.0},
            training={
                "data": "simulated 1.5 T-like (a) / 3 T-like (b) scanner pair from Colin27 (ANTs data, Apache-2.0): "
                "`medrestore harmonize-data simulate ../shared/data/brain-mri-ants/ch2.nii.gz -o results/harmonize-sim`",
                "split": "unpaired: scanner a on 5 training subjects, scanner b on 5 other training subjects; "
                "validation 2 subjects, test 4 subjects (never trained on)",
                "command": "; ".join(f"medrestore train --config configs/{run.name}.yaml" for run in run_dirs),
                "members": len(run_dirs),
                "seed": int(checkpoints[0]["seed"]),
                "seeds": [int(checkpoint["seed"]) for checkpoint in checkpoints],
                "epochs": max(int(last["progress"]["epoch"]) for last in lasts),
                "best_epochs": [int(checkpoint["progress"]["best_epoch"]) for checkpoint in checkpoints],
                "losses": losses,
                "duration_s": round(duration, 1),
                "threads": 1,
                "direction": direction,
                "target_scanner": target,
                "target_noise_sigma": round(noise_levels[target], 4),
                "intensity_reference": report["intensity_reference"],
                "grid": 128,
            },
            metrics=metrics,
            licence="Apache-2.0",
            description=f"Mean of {len(run_dirs)} CycleGAN generators {direction} (residual U-Net 16/32/64, depth 3; seeds "
            f"{', '.join(str(int(c['seed'])) for c in checkpoints)}) for the simulator's scanner pair; each trained unpaired on "
            f"whole 128x128 slices with LSGAN + cycle ({losses['cycle_weight']:g}) + identity ({losses['identity_weight']:g}) + "
            f"MIND structure ({losses['structure_weight']:g}) losses against PatchGAN discriminators. Maps scanner {direction[0]} slices (display orientation, brain scaled to ~1) to scanner "
            f"{target}'s appearance; inputs in other units are rescaled by the recorded intensity reference. Slices of "
            "another size or spacing: add `--grid 128`; "
            f"add `--noise-level {noise_levels[target]:.3f}` to also match {target}'s noise level.",
            zoo_dir=PACKAGED_ZOO,
            overwrite=True,
        )
        print(f"published cyclegan-sim-{direction}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "results/harmonize-sim"), help="simulated dataset folder (made when missing)")
    parser.add_argument("--cyclegan", default="cyclegan-sim", help="zoo name or run folder of the CycleGAN; 'none' skips it")
    parser.add_argument("--unet", default=str(ROOT / "results/harmonize-unet-sim/best.pt"), help="paired U-Net checkpoint (b2a)")
    parser.add_argument("--coupled", default=str(ROOT / "results/harmonize-coupled-dictionary-sim/harmonizer.pt"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--publish", metavar="RUN", nargs="+", type=Path,
                        help="evaluate the mean of the CycleGAN run folders' generators and write it into the zoo")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = [load_checkpoint(run / "best.pt") for run in args.publish or []]
    published = cyclegan_ensemble(checkpoints) if checkpoints else None
    report = evaluate_all(args, published)
    print(markdown(report))
    if published is not None:
        publish(args.publish, checkpoints, published, report, report["noise_levels"])  # type: ignore[arg-type]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
