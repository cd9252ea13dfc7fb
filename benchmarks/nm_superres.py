"""Gamma-camera super-resolution ×4 on held-out phantoms: bicubic vs ML-EM, refining networks, SRCNN, SRResNet, VDSR.

Every test image goes through the chain the issue's target names:

1. an *original* on a grid of pixel size ``p``;
2. ``medrestore degrade --kind gamma-camera`` with its defaults (LEGP at 10 cm, Tc-99m, ×4
   binning, the original's total counts) — :class:`~medrestore.physics.degradations.GammaCamera`
   with ``pixel_size_mm = p``, one seeded Poisson draw per image;
3. ``medrestore superres --modality nm --scale 4 --method M`` —
   :func:`medrestore.tasks.superres.load_super_resolution` (count density, network or bicubic,
   total counts kept);
4. PSNR and SSIM against the original under the ``default`` convention
   (``L = max − min`` of the original, Gaussian SSIM), the total-count error
   ``|Σ restored − Σ coarse| / Σ coarse``, and the seconds per 256 × 256 output on 2 threads
   (best of 7 runs, to see past other processes on a shared machine).

Test sets (none of their source images, slices or phantom seeds is used in training, see
``configs/nm-srresnet-ssim.yaml``):

* ``phantoms`` — paper phantoms of held-out pictures: scikit-image camera, coins, moon,
  hubble_deep_field, immunohistochemistry; ANTs r64slice.jpg and r85slice.jpg and Colin27
  slices at 55 % of each axis (when ../shared/data is present); generated hot-spot and
  skeleton maps of phantom seed 1000. The original is the printed activity as an 8-bit
  picture (255 counts at full ink, no blur, no noise), at ``p`` = 1 mm (a PNG) and 2.4 mm
  (a 256 matrix over 61 cm).
* ``bone-scans`` — simulated anterior bone scans (:func:`~medrestore.data.nm_phantoms.bone_scan_phantom`,
  256 × 256, ``p`` = 2.4 mm): the original is itself a scintigram, the activity seen through
  a LEHR collimator at 5–10 cm with 0.3–1.5 million counts (Poisson). Scored against that noisy
  original (as a real scintigram would be) and, in ``bone-scans (clean)``, against its noise-free
  expectation.

Usage::

    python benchmarks/nm_superres.py                       # shipped zoo models
    python benchmarks/nm_superres.py --runs results        # training checkpoints results/nm-*/best.pt
    python benchmarks/nm_superres.py --runs results --publish   # … and write them into the zoo
    python benchmarks/nm_superres.py --runs results --checkpoint last.pt --publish nm-dct-mlem-vdsr-x4   # one of them
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from medrestore.core.random import make_generator
from medrestore.data.nm import NMSources, load_activity_maps, simulated_scintigram
from medrestore.data.nm_phantoms import bone_scan_phantom
from medrestore.inference import IDENTITY
from medrestore.metrics import evaluate
from medrestore.models import create_model
from medrestore.physics.degradations import GammaCamera
from medrestore.tasks.superres import (
    DEFAULT_MLEM_ITERATIONS,
    MODEL_ENSEMBLES,
    NETWORK_VIEWS,
    CountSuperResolution,
    PlanarAcquisition,
    SystemResponse,
    load_super_resolution,
)
from medrestore.training.checkpoint import load_checkpoint
from medrestore.zoo import PACKAGED_ZOO, save_to_zoo

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "brain-mri-ants"
SCALE = 4
SIZE = 256
PHANTOM_PIXEL_SIZES = (1.0, 2.4)
BONE_SCAN_PIXEL_SIZE = 2.4
BONE_SCANS = 8
# method label → (method, run folder under --runs, zoo name, training configuration)
METHODS = {
    "bicubic": ("bicubic", None, None, None),
    "DCT-denoised counts + ML-EM (40 iterations + 1-pixel post-filter, known response)": ("dct-mlem", None, None, None),
    "ML-EM (20 iterations + 2-pixel post-filter, known response)": ("mlem", None, None, None),
    "DCT + ML-EM + the U-Net and VDSR refinements averaged": ("dct-mlem-ensemble", None, None, None),
    "DCT + ML-EM + U-Net refinement (MSE + 1 − SSIM)": (
        "dct-mlem-resunet", "nm-dct-mlem-resunet", "nm-dct-mlem-resunet-x4", "configs/nm-dct-mlem-resunet.yaml"
    ),
    "DCT + ML-EM + VDSR refinement (MSE + 1 − SSIM)": ("dct-mlem-vdsr", "nm-dct-mlem-vdsr", "nm-dct-mlem-vdsr-x4", "configs/nm-dct-mlem-vdsr.yaml"),
    "ML-EM + VDSR refinement (MSE + 1 − SSIM)": ("mlem-vdsr", "nm-mlem-vdsr", "nm-mlem-vdsr-x4", "configs/nm-mlem-vdsr.yaml"),
    "SRCNN (MSE)": ("srcnn", "nm-srcnn", "nm-srcnn-x4", "configs/nm-srcnn.yaml"),
    "SRResNet (MSE)": ("srresnet", "nm-srresnet-mse", "nm-srresnet-mse-x4", "configs/nm-srresnet-mse.yaml"),
    "SRResNet (MSE + 1 − SSIM)": ("srresnet", "nm-srresnet-ssim", "nm-srresnet-x4", "configs/nm-srresnet-ssim.yaml"),
    "VDSR, bicubic + residual (MSE + 1 − SSIM)": ("vdsr", "nm-vdsr", "nm-vdsr-x4", "configs/nm-vdsr.yaml"),
}


@dataclasses.dataclass(frozen=True)
class TestImage:
    """An original (counts per pixel), its noise-free expectation, and its pixel size (mm)."""

    name: str
    original: torch.Tensor
    expected: torch.Tensor
    pixel_size_mm: float


def phantom_sources() -> NMSources:
    files = tuple(str(SHARED / name) for name in ("r64slice.jpg", "r85slice.jpg", "ch2.nii.gz")) if SHARED.is_dir() else ()
    return NMSources(
        files=files, slice_fractions=(0.55,),
        skimage_images=("camera", "coins", "moon", "hubble_deep_field", "immunohistochemistry"),
        generated=(("hot-spot", 4), ("skeleton", 4)), phantom_seed=1000, crops_per_image=1,
    )  # fmt: skip


def phantom_images(pixel_size_mm: float, sources: NMSources | None = None) -> list[TestImage]:
    """Paper phantoms of ``sources`` (default: the held-out :func:`phantom_sources`) as 8-bit
    originals (255 counts at full ink) with pixels of ``pixel_size_mm``."""
    images = []
    for name, activity in load_activity_maps(sources or phantom_sources(), SIZE):
        original = (activity * 255.0).round()
        images.append(TestImage(name, original, original, pixel_size_mm))
    return images


def bone_scan_images(count: int = BONE_SCANS, first_seed: int = 7000) -> list[TestImage]:
    """Simulated bone scans of seeds ``first_seed…``: LEHR at 5–10 cm, 0.3–1.5 M counts, Poisson (module docstring)."""
    images = []
    for index in range(count):
        generator = make_generator(first_seed + index)
        activity = torch.from_numpy(bone_scan_phantom(SIZE, generator))
        distance = 50.0 + 50.0 * float(torch.rand((), generator=generator, dtype=torch.float64))
        total = 3e5 * 5.0 ** float(torch.rand((), generator=generator, dtype=torch.float64))
        acquisition = PlanarAcquisition("LEHR", distance_mm=distance)
        original, expected = simulated_scintigram(activity, BONE_SCAN_PIXEL_SIZE, total, generator, acquisition)
        images.append(TestImage(f"bone-scan-{index}", original, expected, BONE_SCAN_PIXEL_SIZE))
    return images


def degrade(image: TestImage, seed: int) -> torch.Tensor:
    """The default ``degrade --kind gamma-camera`` of the original (its total counts, its pixel size)."""
    return GammaCamera(pixel_size_mm=image.pixel_size_mm)(image.original, make_generator(seed))


def score(restored: torch.Tensor, reference: torch.Tensor, coarse: torch.Tensor) -> dict[str, float]:
    metrics = evaluate(restored, reference, convention="default")
    total = float(coarse.sum())
    return {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "count_error": abs(float(restored.sum()) - total) / total}


def seconds_per_output(method: CountSuperResolution, repeats: int = 7) -> float:
    """Seconds to restore a 64 × 64 frame to 256 × 256 on 2 threads: the best of ``repeats`` runs
    after a warm-up (the least disturbed by other processes on a shared machine, as ``timeit``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        frame = torch.poisson(torch.full((SIZE // SCALE, SIZE // SCALE), 200.0), generator=make_generator(0))
        fwhm = SystemResponse(PlanarAcquisition(), BONE_SCAN_PIXEL_SIZE, "default camera").fwhm_pixels
        method(frame, fwhm)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            method(frame, fwhm)
            times.append(time.perf_counter() - started)
        return min(times)
    finally:
        torch.set_num_threads(threads)


def load_methods(runs: Path | None, only: set[str] | None = None, checkpoint: str = "best.pt") -> dict[str, CountSuperResolution]:
    """Every method; networks from ``runs/RUN/checkpoint`` when ``runs`` is given (only the zoo names in
    ``only``, when given; the others from the zoo), else from the zoo."""
    models: dict[str, str | None] = {}  # label → its network (zoo name or checkpoint)
    for label, (method, run, zoo_name, _) in METHODS.items():
        from_run = run is not None and runs is not None and (only is None or zoo_name in only)
        models[label] = str(runs / run / checkpoint) if from_run else zoo_name  # type: ignore[operator]
    of_method = {method: models[label] for label, (method, *_) in METHODS.items()}
    for label, (method, *_) in METHODS.items():  # a model ensemble averages its members' networks
        if method in MODEL_ENSEMBLES:
            models[label] = "+".join(str(of_method[member]) for member in MODEL_ENSEMBLES[method])
    methods = {}
    for label, (method, *_) in METHODS.items():
        methods[label] = load_super_resolution(method, SCALE, models[label])
        if len(methods[label].views) > 1:  # also scored without the default self-ensemble
            methods[f"{label}, one pass per network (--ensemble 1)"] = dataclasses.replace(methods[label], views=IDENTITY)
    return methods


def run_benchmark(methods: dict[str, CountSuperResolution], test_sets: dict[str, list[TestImage]]) -> dict[str, object]:
    """Mean scores per test set and method, plus timings."""
    results: dict[str, object] = {"sets": {}, "seconds_per_256": {}}
    for set_name, images in test_sets.items():
        rows: dict[str, list[dict[str, float]]] = {label: [] for label in methods}
        clean: dict[str, list[dict[str, float]]] = {label: [] for label in methods}
        for index, image in enumerate(images):
            coarse = degrade(image, seed=index)
            fwhm = SystemResponse(PlanarAcquisition(), image.pixel_size_mm, "default camera").fwhm_pixels
            for label, method in methods.items():
                restored = method(coarse, fwhm)
                rows[label].append(score(restored, image.original, coarse))
                if set_name == "bone-scans":
                    clean[label].append(score(restored, image.expected, coarse))
        results["sets"][set_name] = {label: _mean(values) for label, values in rows.items()}  # type: ignore[index]
        if set_name == "bone-scans":
            results["sets"]["bone-scans (clean)"] = {label: _mean(values) for label, values in clean.items()}  # type: ignore[index]
    for label, method in methods.items():
        results["seconds_per_256"][label] = seconds_per_output(method)  # type: ignore[index]
    return results


def _mean(values: list[dict[str, float]]) -> dict[str, float]:
    keys = values[0].keys()
    summary = {key: float(np.mean([v[key] for v in values])) for key in keys}
    summary["count_error_max"] = float(max(v["count_error"] for v in values))
    summary["images"] = len(values)
    return summary


def markdown(results: dict[str, object]) -> str:
    """The results table: one row per method, PSNR/SSIM per test set, count error, time."""
    sets = results["sets"]  # type: ignore[assignment]
    names = list(sets)  # type: ignore[arg-type]
    header = "| method | " + " | ".join(f"{n}: PSNR (dB) / SSIM" for n in names) + " | max count error | s per 256² (2 threads, best of 7) |"
    lines = [header, "|" + "---|" * (len(names) + 3)]
    for label in results["seconds_per_256"]:  # type: ignore[union-attr]
        cells = [f"{sets[n][label]['psnr']:.2f} / {sets[n][label]['ssim']:.3f}" for n in names]  # type: ignore[index]
        error = max(sets[n][label]["count_error_max"] for n in names)  # type: ignore[index]
        seconds = results["seconds_per_256"][label]  # type: ignore[index]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {error:.1e} | {seconds:.3f} |")
    counts = ", ".join(f"{n}: {sets[n]['bicubic']['images']} images" for n in names)  # type: ignore[index]
    return "\n".join(lines) + f"\n\n({counts})\n"


def checkpoint_loss(checkpoint: dict[str, object]) -> str:
    """The training loss named in the checkpoint's configuration."""
    return str(yaml.safe_load(checkpoint["config"])["train"]["loss"])  # type: ignore[index]


def publish(runs: Path, results: dict[str, object], only: set[str] | None = None, checkpoint_name: str = "best.pt") -> None:
    """Write the trained networks (those in ``only``, default all) into the packaged zoo with cards holding their held-out scores."""
    sets = results["sets"]  # type: ignore[assignment]
    phantom_sets = [name for name in sets if name.startswith("phantoms")]  # type: ignore[union-attr]

    def phantom_mean(label: str, key: str) -> float:
        return float(np.mean([sets[name][label][key] for name in phantom_sets]))  # type: ignore[index]

    for label, (method, run, zoo_name, config) in METHODS.items():
        if run is None or (only is not None and zoo_name not in only):
            continue
        checkpoint = load_checkpoint(runs / run / checkpoint_name, map_location="cpu")
        model = create_model(checkpoint["model"]["name"], checkpoint["model"]["options"])
        model.load_state_dict(checkpoint["model"]["state_dict"])
        history = load_checkpoint(runs / run / "last.pt", map_location="cpu")["history"]
        nm = yaml.safe_load(checkpoint["config"])["data"]["nm"]
        draws = f"{nm.get('fixed_draws')} acquisitions per map drawn once" if nm.get("fixed_draws") else "new acquisitions every epoch"
        bones = sets["bone-scans"][label]  # type: ignore[index]
        save_to_zoo(
            model, name=zoo_name, task="superres", modality="nm", normalisation=checkpoint["normalisation"],
            training={
                "data": "paper phantoms (printer model of medrestore.physics.paper_phantom) of scikit-image sample "
                "images and ANTs brain MRI (r16/r27/r30/r62 slices, Colin27 slices at 30/38/62/70 % of each axis), "
                f"generated hot-spot, skeleton and ellipse maps; {draws} by the default gamma-camera "
                f"degradation over pixel sizes 0.6-5 mm (medrestore.data.nm); network input: {nm.get('input', 'coarse')}",
                "split": "held out: skimage camera/coins/moon/hubble_deep_field/immunohistochemistry, ANTs r64/r85, "
                "Colin27 at 55 %, phantom seed 1000, bone-scan phantoms; validation: Colin27 at 45 %, astronaut, seed 500",
                "command": f"medrestore train --config {config}", "seed": int(checkpoint["seed"]),
                "epochs": len(history), "best_epoch": checkpoint["progress"]["best_epoch"],
                "duration_s": round(float(sum(row["seconds"] for row in history)), 1),
                "loss": checkpoint_loss(checkpoint), "scale": SCALE,
                "mlem_iterations": DEFAULT_MLEM_ITERATIONS.get(method), "input": nm.get("input", "coarse"),
                "checkpoint": checkpoint_name,
            },
            metrics={
                "convention": "default, held-out paper phantoms at 1 and 2.4 mm (benchmarks/nm_superres.py)",
                "psnr": round(phantom_mean(label, "psnr"), 3), "ssim": round(phantom_mean(label, "ssim"), 4),
                "psnr_gain_over_bicubic": round(phantom_mean(label, "psnr") - phantom_mean("bicubic", "psnr"), 3),
                "ssim_gain_over_bicubic": round(phantom_mean(label, "ssim") - phantom_mean("bicubic", "ssim"), 4),
                "bone_scan_psnr": round(bones["psnr"], 3), "bone_scan_ssim": round(bones["ssim"], 4),
                "seconds_per_256": round(results["seconds_per_256"][label], 4),  # type: ignore[index]
                "ensemble_views": len(NETWORK_VIEWS.get(method, IDENTITY)),  # the default self-ensemble of the scores
            },
            licence="Apache-2.0",
            description=f"{label} for planar gamma-camera images ×4 (64 → 256), in counts; "
            "`medrestore superres --modality nm --method " + method + "`.",
            zoo_dir=PACKAGED_ZOO, overwrite=True,
        )  # fmt: skip
        print(f"published {zoo_name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, help="folder holding the training runs nm-*/best.pt (default: zoo models)")
    parser.add_argument("--publish", nargs="*", metavar="ZOO_NAME",
                        help="write the runs' networks (all, or these zoo names; the others are scored from the zoo) and cards into the zoo")
    parser.add_argument("--checkpoint", default="best.pt", help="which checkpoint of each run (best.pt: best validation PSNR; last.pt)")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "nm_superres.json", help="where to write the scores")
    args = parser.parse_args()
    torch.set_num_threads(2)
    only = set(args.publish) if args.publish else None
    methods = load_methods(args.runs, only, args.checkpoint)
    test_sets = {f"phantoms {pixel:g} mm": phantom_images(pixel) for pixel in PHANTOM_PIXEL_SIZES}
    test_sets["bone-scans"] = bone_scan_images()
    results = run_benchmark(methods, test_sets)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    if args.publish is not None:
        if args.runs is None:
            parser.error("--publish needs --runs")
        publish(args.runs, results, only, args.checkpoint)


if __name__ == "__main__":
    main()
