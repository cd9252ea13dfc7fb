"""A ``dct-mlem`` refinement network fine-tuned on real camera images, judged on real images it never saw.

The shipped refinement (zoo ``nm-dct-mlem-vdsr-x4``: VDSR, 12 layers × 48 maps, trained on simulated paper
phantoms) loses 3–4 dB to its own classical stage on the real four-bar and line-source acquisitions
(``benchmarks/nm-real.md``). Here it is fine-tuned on a mixture of

* **real teachers** (``../shared/data/nm-nmqc``, a Mediso Nucline camera's QC images): the Jaszczak SPECT
  volume's slices except the nine around its middle (the slice ``nm_real.py`` scores), the flood
  ``UNIFORMIDAD_1.dcm`` and the line grid ``Lin_X``; random 128-pixel crops scaled to a count level
  log-uniform in ×0.3–×3 of their own, acquired through the camera model (``degrade --kind gamma-camera``
  defaults at the image's pixel size, ×4) with Poisson counts or, for half of them, counts as
  over-dispersed as the real flood's (negative binomial, variance 1.45 × the mean,
  :func:`~medrestore.physics.noise.super_poisson_counts`); the teacher itself is the target;
* **simulated pairs** of the shipped network's own training set (``configs/nm-dct-mlem-vdsr.yaml``: maps of
  its training sources through :class:`~medrestore.data.nm.ScintigraphyPairs`, the expected original as
  target),

the input being the ``dct-mlem`` reconstruction before its post-filter (as ``superres --method dct-mlem-vdsr``
feeds it). Training: MSE + (1 − SSIM) on 48-pixel patches of min–max normalised pairs (the input's range
for both, as the zoo card's ``minmax-image``), flips and turns, Adam with a cosine decay, one thread, for a
fixed wall-clock budget.

With ``--originals camera`` the simulated half is :func:`camera_pair`: the same maps, each original blurred by a
system response drawn in millimetres, as every real planar original is.

Judged on the images no step saw: the real ``FourBar.dcm``, ``Spatial_Resol_X.dcm`` and pydicom's bone scan
``JPEG2000.dcm`` through the page's
Poisson chain (seed = the image's index in ``nm_real.REAL_IMAGES``) and through the super-Poisson chain
(variance 1.45 × the mean), and the held-out simulated sets of ``benchmarks/nm_superres.py``. Methods: ``dct-mlem``; ``dct-mlem-vdsr`` with the
shipped and the fine-tuned network (two views each, the method's default).

Usage (one thread, each step under 15 minutes)::

    OMP_NUM_THREADS=1 python benchmarks/nm_real_refine.py prepare      # pairs → results/nm_real_refine/pairs.pt
    OMP_NUM_THREADS=1 python benchmarks/nm_real_refine.py train --minutes 11
    OMP_NUM_THREADS=1 python benchmarks/nm_real_refine.py evaluate     # → results/nm_real_refine/scores.json
    python benchmarks/nm_real_refine.py publish NAME                     # the fine-tuned network into the zoo
    OMP_NUM_THREADS=1 python benchmarks/nm_real_refine.py train --start identity --minutes 7   # a small net from dct-mlem
    OMP_NUM_THREADS=1 python benchmarks/nm_real_refine.py evaluate --start identity
    OMP_NUM_THREADS=2 python benchmarks/nm_real_refine.py prepare --originals camera   # simulated originals with a camera's blur
    OMP_NUM_THREADS=2 python benchmarks/nm_real_refine.py train --originals camera --minutes 12
    OMP_NUM_THREADS=2 python benchmarks/nm_real_refine.py evaluate --originals camera
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import nm_real as real
from nm_noise_level import coarse_counts
import nm_superres as bench
from medrestore.core.random import make_generator
from medrestore.data.nm import NMSimulation, ScintigraphyPairs, load_activity_maps, simulate_original
from medrestore.data.normalisation import MinMaxImage
from medrestore.inference import Predictor
from medrestore.io import read_image
from medrestore.losses.image import build_loss
from medrestore.models import create_model
from medrestore.physics.degradations import GammaCamera
from medrestore.physics.noise import super_poisson_counts
from medrestore.tasks.superres import (
    CountSuperResolution,
    PlanarAcquisition,
    SystemResponse,
    load_super_resolution,
)
from medrestore.training.config import load_config
from medrestore.zoo import PACKAGED_ZOO, load_pretrained, save_to_zoo

ROOT = real.ROOT
FOLDER = ROOT / "results" / "nm_real_refine"
SHIPPED = "nm-dct-mlem-vdsr-x4"
CONFIG = ROOT / "configs" / "nm-dct-mlem-vdsr.yaml"
TRAINING_IMAGES = ("Jaszack.dcm", "UNIFORMIDAD_1.dcm", "Lin_X")
HELD_OUT_IMAGES = ("FourBar.dcm", "Spatial_Resol_X.dcm", "JPEG2000.dcm")
JASZCZAK_EXCLUDED_HALF_WIDTH = 4
"""Slices within this many of the Jaszczak volume's middle (the one scored by ``nm_real.py``) are not trained on."""
REAL_FANO = 1.45
"""Variance / mean of the real flood (neighbour differences, ``nm_real.camera_model_check``)."""
CROP, PATCH, BATCH = 128, 48, 16
COUNT_SCALE_RANGE = (0.3, 3.0)
REAL_PAIRS, SIMULATED_PAIRS = 240, 240
MIN_LEARNING_RATE = 1e-5
STARTS = {"shipped": 1e-4, "identity": 1e-3}
"""Where training starts, with its initial learning rate: the shipped network, or a small residual network
(VDSR, 6 layers × 32 maps) whose last layer is zero, so that it starts as the identity (``dct-mlem`` itself)."""
SMALL_OPTIONS = {"spatial_ndim": 2, "channels": 1, "scale": 1, "depth": 6, "width": 32}
ORIGINALS = ("as-trained", "camera")
"""The simulated half of the pairs: the shipped network's own training pairs (``as-trained``: originals sharp or
blurred by at most 4 fine pixels), or ``camera``: the same maps seen by a camera of their own, a system response
of :data:`SYSTEM_FWHM_MM` in *millimetres* at the drawn pixel size, as every real planar original is."""
SYSTEM_FWHM_MM = (3.0, 14.0)
"""System FWHM of a simulated original (``--originals camera``), uniform: an intrinsic image (3 mm, ``Lin_X``) to a
collimated acquisition well away from the collimator (14 mm)."""


def reconstruction() -> CountSuperResolution:
    """``dct-mlem`` without its post-filter: the input ``dct-mlem-vdsr`` refines."""
    return dataclasses.replace(load_super_resolution("dct-mlem", bench.SCALE), post_filter_fwhm=0.0)


def teachers() -> list[tuple[str, torch.Tensor, float]]:
    """``(name, counts (H, W) float64, pixel mm)`` of the real training images (Jaszczak: every kept slice)."""
    found = []
    for name in TRAINING_IMAGES:
        image = read_image(real.NMQC / name)
        data, pixel = image.data.to(torch.float64), float(image.spacing[-1])
        if data.ndim == 3:
            middle = data.shape[0] // 2
            for index in range(data.shape[0]):
                if abs(index - middle) > JASZCZAK_EXCLUDED_HALF_WIDTH and float(data[index].sum()) > 0:
                    found.append((f"{name}[{index}]", data[index], pixel))
        else:
            found.append((name, data, pixel))
    return found


def real_pair(images: list[tuple[str, torch.Tensor, float]], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``(input, target) (1, 128, 128)`` pair of a random real teacher crop (module docstring); each of
    :data:`TRAINING_IMAGES` is drawn equally often (a Jaszczak slice as often as the flood or the grid)."""
    while True:
        source = TRAINING_IMAGES[int(torch.randint(len(TRAINING_IMAGES), (), generator=generator))]
        candidates = [entry for entry in images if entry[0].split("[")[0] == source]
        name, data, pixel = candidates[int(torch.randint(len(candidates), (), generator=generator))]
        top, left = (int(torch.randint(n - CROP + 1, (), generator=generator)) for n in data.shape)
        crop = data[top : top + CROP, left : left + CROP]
        if float(crop.sum()) > 0:
            break
    low, high = (math.log(v) for v in COUNT_SCALE_RANGE)
    teacher = crop * math.exp(low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64)))
    fano = REAL_FANO if float(torch.rand((), generator=generator)) < 0.5 else 1.0
    coarse = super_poisson_counts(GammaCamera(pixel_size_mm=pixel).expected_counts(teacher), fano, generator)
    fwhm = SystemResponse(PlanarAcquisition(), pixel, "training").fwhm_pixels
    fine = reconstruction().density(coarse, fwhm)
    return fine.to(torch.float32)[None], teacher.to(torch.float32)[None]


def camera_pair(
    maps: list[tuple[str, torch.Tensor]], simulation: NMSimulation, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``(input, target) (1, 128, 128)`` pair of a simulated map whose original carries a camera's own response.

    The pixel size and the acquisition come from the shipped network's simulation (``pixel_size_range``, LEGP at
    80–120 mm, ×4, the original's total counts); the original is the map blurred by a system FWHM drawn from
    :data:`SYSTEM_FWHM_MM` (mm, so ``f / Δ`` fine pixels), then peak and counting noise as in training
    (:func:`~medrestore.data.nm.simulate_original`: a peak of ``original_peak_range``, a Poisson draw for
    ``noisy_original_fraction`` of them). Input: ``dct-mlem`` before its post-filter, as :func:`real_pair`; target:
    the expected original.
    """
    _, activity = maps[int(torch.randint(len(maps), (), generator=generator))]
    camera = simulation.camera().sample(generator)
    pixel = float(camera.pixel_size_mm)  # type: ignore[attr-defined]
    low, high = SYSTEM_FWHM_MM
    system_mm = low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))
    own_camera = dataclasses.replace(simulation, original_fwhm_range=(system_mm / pixel,) * 2, sharp_fraction=0.0)
    original, expected = simulate_original(activity.to(torch.float64), own_camera, generator)
    coarse = camera(original, generator)
    fwhm = SystemResponse(PlanarAcquisition(), pixel, "training").fwhm_pixels
    fine = reconstruction().density(coarse, fwhm)
    return fine.to(torch.float32)[None], expected.to(torch.float32)[None]


def pairs_path(originals: str) -> Path:
    return FOLDER / ("pairs.pt" if originals == "as-trained" else f"pairs-{originals}.pt")


def prepare(seed: int = 0, originals: str = "as-trained") -> None:
    """Draw the training pairs once (the ML-EM inputs are the expensive part) into :func:`pairs_path`."""
    generator = make_generator(seed)
    images = teachers()
    pairs = [real_pair(images, generator) for _ in range(REAL_PAIRS)]
    print(f"{len(pairs)} real pairs from {len(images)} teacher images", flush=True)
    nm = load_config(CONFIG).data.nm
    assert nm is not None
    maps = load_activity_maps(nm.training, CROP, nm.simulation)
    if originals == "camera":
        tensors = [(name, torch.as_tensor(activity)) for name, activity in maps]
        pairs += [camera_pair(tensors, nm.simulation, generator) for _ in range(SIMULATED_PAIRS)]
    else:
        simulated = ScintigraphyPairs(maps, nm.simulation, "dct-mlem", nm.mlem_iterations)
        for _ in range(SIMULATED_PAIRS):
            pairs.append(simulated.pair(int(torch.randint(len(simulated), (), generator=generator)), generator))
    kinds = ["real"] * REAL_PAIRS + [f"simulated ({originals})"] * SIMULATED_PAIRS
    FOLDER.mkdir(parents=True, exist_ok=True)
    torch.save({"pairs": pairs, "kinds": kinds, "teachers": [name for name, _, _ in images]}, pairs_path(originals))
    print(f"{len(pairs)} pairs from {len(maps)} simulated maps and the real teachers", flush=True)


def _batch(pairs: list[tuple[torch.Tensor, torch.Tensor]], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``BATCH`` random normalised, augmented ``PATCH``-pixel patches ``(B, 1, P, P)`` of input and target."""
    inputs, targets = [], []
    normalisation = MinMaxImage()
    for _ in range(BATCH):
        source, target = pairs[int(torch.randint(len(pairs), (), generator=generator))]
        top, left = (int(torch.randint(n - PATCH + 1, (), generator=generator)) for n in source.shape[-2:])
        x, y = source[..., top : top + PATCH, left : left + PATCH], target[..., top : top + PATCH, left : left + PATCH]
        parameters = normalisation.parameters(source)
        x, y = normalisation.normalise(x, parameters), normalisation.normalise(y, parameters)
        turns = int(torch.randint(4, (), generator=generator))
        x, y = torch.rot90(x, turns, (-2, -1)), torch.rot90(y, turns, (-2, -1))
        if float(torch.rand((), generator=generator)) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        inputs.append(x)
        targets.append(y)
    return torch.stack(inputs), torch.stack(targets)


def _network(start: str) -> torch.nn.Module:
    """The network training starts from (:data:`STARTS`)."""
    if start == "shipped":
        return load_pretrained(SHIPPED)[0]
    model = create_model("vdsr", SMALL_OPTIONS)
    last = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return model


def _suffix(start: str, originals: str) -> str:
    return ("" if start == "shipped" else f"-{start}") + ("" if originals == "as-trained" else f"-{originals}")


def checkpoint_path(start: str, originals: str = "as-trained") -> Path:
    return FOLDER / f"refined{_suffix(start, originals)}.pt"


def train(minutes: float, start: str = "shipped", seed: int = 0, originals: str = "as-trained") -> None:
    """Train from ``start`` on :func:`pairs_path` for ``minutes`` of wall clock → :func:`checkpoint_path`."""
    stored = torch.load(pairs_path(originals), weights_only=True)
    pairs = stored["pairs"]
    torch.manual_seed(seed)
    model = _network(start)
    model.train()
    generator = make_generator(seed)
    rate = STARTS[start]
    optimiser = torch.optim.Adam(model.parameters(), lr=rate)
    loss_function = build_loss("mse+ssim")
    budget, started, step, history = minutes * 60.0, time.perf_counter(), 0, []
    while (elapsed := time.perf_counter() - started) < budget:
        progress = elapsed / budget
        for group in optimiser.param_groups:
            group["lr"] = MIN_LEARNING_RATE + 0.5 * (rate - MIN_LEARNING_RATE) * (1 + math.cos(math.pi * progress))
        inputs, targets = _batch(pairs, generator)
        loss = loss_function(model(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(float(loss.detach()))
        step += 1
        if step % 25 == 0:
            print(f"step {step} ({elapsed / 60:.1f} min): loss {np.mean(history[-25:]):.5f}", flush=True)
    model.eval()
    torch.save({"state_dict": model.state_dict(), "steps": step, "seconds": time.perf_counter() - started,
                "loss_history": history, "seed": seed}, checkpoint_path(start, originals))  # fmt: skip
    print(f"{step} steps of {BATCH} patches in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


def refined_network(start: str = "shipped", originals: str = "as-trained") -> torch.nn.Module:
    model = _network(start)
    model.load_state_dict(torch.load(checkpoint_path(start, originals), weights_only=True)["state_dict"])
    return model.eval()


def methods(start: str = "shipped", originals: str = "as-trained") -> dict[str, CountSuperResolution]:
    shipped = load_super_resolution("dct-mlem-vdsr", bench.SCALE)
    network = refined_network(start, originals)
    refined = dataclasses.replace(shipped, predictor=Predictor(network, MinMaxImage(), window=None, device="cpu"))
    if originals == "camera":
        return {"dct-mlem": load_super_resolution("dct-mlem", bench.SCALE), "dct-mlem-vdsr (shipped)": shipped,
                f"{'dct-mlem-vdsr' if start == 'shipped' else 'small residual net'} (real + camera-blurred originals)": refined}  # fmt: skip
    if start != "shipped":
        return {"dct-mlem": load_super_resolution("dct-mlem", bench.SCALE), "small residual net from identity, real + simulated": refined}
    return {"dct-mlem": load_super_resolution("dct-mlem", bench.SCALE), "dct-mlem-vdsr (shipped)": shipped,
            "dct-mlem-vdsr (fine-tuned on real)": refined}  # fmt: skip


def scores_path(start: str, originals: str = "as-trained") -> Path:
    return FOLDER / f"scores{_suffix(start, originals)}.json"


def evaluate(start: str = "shipped", originals: str = "as-trained") -> None:
    """Scores of :func:`methods` on the held-out real images and the simulated sets → :func:`scores_path`."""
    chosen = methods(start, originals)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for index, (name, original, pixel) in enumerate(real.real_images()):
        if name not in HELD_OUT_IMAGES:
            continue
        for fano in (1.0, REAL_FANO):
            image = bench.TestImage(name, original, original, pixel)
            coarse = coarse_counts(image, index, fano)
            fwhm = SystemResponse(PlanarAcquisition(), pixel, "benchmark").fwhm_pixels
            label = f"{name} (held out; {'Poisson' if fano == 1.0 else f'variance {fano:g} × mean'})"
            results[label] = {method: bench.score(m(coarse, fwhm), original, coarse) for method, m in chosen.items()}
            print(label, {k: round(v["psnr"], 2) for k, v in results[label].items()}, flush=True)
    sets = {f"phantoms {p:g} mm": bench.phantom_images(p) for p in bench.PHANTOM_PIXEL_SIZES}
    sets["bone-scans"] = bench.bone_scan_images()
    for set_name, images in sets.items():
        scores: dict[str, list[dict[str, float]]] = {method: [] for method in chosen}
        for index, image in enumerate(images):
            coarse = bench.degrade(image, seed=index)
            fwhm = SystemResponse(PlanarAcquisition(), image.pixel_size_mm, "benchmark").fwhm_pixels
            for method, m in chosen.items():
                scores[method].append(bench.score(m(coarse, fwhm), image.original, coarse))
        label = f"simulated: {set_name} ({len(images)} images; held out)"
        results[label] = {method: bench._mean(values) for method, values in scores.items()}
        print(label, {k: round(v["psnr"], 2) for k, v in results[label].items()}, flush=True)
    scores_path(start, originals).write_text(json.dumps(results, indent=2) + "\n")
    print(tables(results))


def tables(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """PSNR / SSIM per row and method, the gain over ``dct-mlem`` and its worst case over the held-out rows."""
    names = list(next(iter(results.values())))
    lines = ["| image | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, rows in results.items():
        cells = [f"{rows[m]['psnr']:.2f} / {rows[m]['ssim']:.3f}" + ("" if m == "dct-mlem" else
                 f" ({rows[m]['psnr'] - rows['dct-mlem']['psnr']:+.2f} dB)") for m in names]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    held_out = [rows for label, rows in results.items() if "held out" in label]
    worst = [min(rows[m]["psnr"] - rows["dct-mlem"]["psnr"] for rows in held_out) for m in names]
    lines.append("| **worst case over dct-mlem, held-out rows (dB)** | " + " | ".join(f"{w:+.2f}" for w in worst) + " |")
    return "\n".join(lines) + "\n"


def publish(name: str) -> None:
    """Write the fine-tuned network and a card (training, held-out scores) into the packaged zoo."""
    stored = torch.load(FOLDER / "refined.pt", weights_only=True)
    scores = json.loads((FOLDER / "scores.json").read_text())
    _, card = load_pretrained(SHIPPED)
    held_out = {label: rows["dct-mlem-vdsr (fine-tuned on real)"]["psnr"] - rows["dct-mlem"]["psnr"]
                for label, rows in scores.items() if "held out" in label}  # fmt: skip
    save_to_zoo(
        refined_network(), name=name, task="superres", modality="nm", normalisation=card.normalisation,
        training={
            "data": f"{SHIPPED} fine-tuned on {REAL_PAIRS} real-teacher pairs (Jaszczak slices but the 9 middle ones, "
            "flood UNIFORMIDAD_1, line grid Lin_X of ../shared/data/nm-nmqc; camera model, Poisson or variance "
            f"{REAL_FANO} x mean) and {SIMULATED_PAIRS} pairs of configs/nm-dct-mlem-vdsr.yaml's training maps; "
            "network input: dct-mlem",
            "split": "held out: FourBar.dcm, Spatial_Resol_X.dcm and the simulated sets of benchmarks/nm_superres.py",
            "command": "python benchmarks/nm_real_refine.py prepare && python benchmarks/nm_real_refine.py train",
            "seed": int(stored["seed"]), "steps": int(stored["steps"]), "duration_s": round(float(stored["seconds"]), 1),
            "loss": "mse+ssim", "scale": bench.SCALE, "mlem_iterations": 40, "input": "dct-mlem",
        },  # fmt: skip
        metrics={"convention": "default; PSNR gain over dct-mlem (dB), benchmarks/nm_real_refine.py",
                 **{label: round(value, 3) for label, value in held_out.items()}},  # fmt: skip
        licence="Apache-2.0",
        description="DCT + ML-EM + VDSR refinement fine-tuned on real camera images, ×4, in counts; "
        f"`medrestore superres --modality nm --method dct-mlem-vdsr --model {name}`.",
        zoo_dir=PACKAGED_ZOO, overwrite=True,
    )  # fmt: skip
    print(f"published {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "train", "evaluate", "tables", "publish"))
    parser.add_argument("name", nargs="?", help="zoo name (publish)")
    parser.add_argument("--minutes", type=float, default=11.0, help="training wall-clock budget")
    parser.add_argument("--start", choices=tuple(STARTS), default="shipped", help="train from the shipped network or from the identity")
    parser.add_argument("--originals", choices=ORIGINALS, default="as-trained", help="the simulated half of the pairs (ORIGINALS)")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(originals=args.originals)
    elif args.step == "train":
        train(args.minutes, args.start, originals=args.originals)
    elif args.step == "evaluate":
        evaluate(args.start, args.originals)
    elif args.step == "tables":
        print(tables(json.loads(scores_path(args.start, args.originals).read_text())))
    else:
        if not args.name:
            parser.error("publish needs a zoo name")
        publish(args.name)


if __name__ == "__main__":
    main()
