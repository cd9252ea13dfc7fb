"""MRI denoising on Colin27 with Rician noise: classical baselines and our methods in one run.

Data: Colin27 (``../shared/data/brain-mri-ants/ch2.nii.gz``, 181×217×181, 1 mm, an average of 27
T1 scans at 1.5 T; ANTsPy data, Apache-2.0). Rician noise ``|x + σn₁ + iσn₂|`` with σ a fraction
(``--sigmas``, default 3, 5, 7 %) of the volume maximum is added to the whole volume with a fixed
seed. Every method denoises the same input block: axial slices z = 88…135 (the held-out slab
z = 96…127 of the shipped networks plus 8 slices of context on each side) and is scored on the
slab z = 96…127 only, which no network saw in training:

* PSNR inside the brain (voxels > 0 of the clean volume), peak = max of the clean volume;
* SSIM inside the brain (3-D Gaussian window σ = 1.5, data range = that peak);
* Jaccard of tissue classes: 3-class Gaussian mixtures (CSF/GM/WM) of the output and of the
  clean slab inside the brain mask, mean Jaccard over the classes;
* seconds of wall time for the 48-slice block with ``--threads`` torch/OpenMP threads.

σ is estimated from each noisy input (``--sigma auto`` behaviour) for every method that needs it.
Methods: ``noisy``; ``dipy-blockwise`` and ``dipy-classic`` (dipy ``nlmeans``, Rician, default
radii); ``bm4d`` (``bm4d`` package, Gaussian model at σ: Rician bias not modelled); ``nlm`` and
``pri-nlm`` (ours: plain and oracle-DCT pre-filtered); ``nlm-wiener`` (ours: ``nlm`` then the collaborative
Wiener filter); ``unet3d-nlm`` (the ``auto`` default for
volumes: the 3-D network blended with ``nlm``, as ``denoise`` runs it); zoo names or checkpoint paths of networks (``unet``, ``unet3d``, ``gan``, ``srcnn`` are
shorthands for the shipped/trained ones).

Commands::

    python benchmarks/mri_denoise.py --json results/mri-denoise.json
    python benchmarks/mri_denoise.py --methods noisy,nlm --sigmas 5
    python benchmarks/mri_denoise.py --methods nlm,unet3d,unet3d-nlm --variant fat-shell   # robustness variants
    python benchmarks/mri_denoise.py publish --checkpoint results/mri-unet2d/last.pt \\
        --name mri-unet2d-colin27 --config configs/mri-unet2d.yaml --description "..."
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from medrestore.data.mri import intensity_scale
from medrestore.inference import Predictor, names_model_file
from medrestore.io import read_image
from medrestore.metrics import psnr, ssim
from medrestore.metrics.tissue import gaussian_mixture_segmentation, tissue_jaccard
from medrestore.models.fast_nlm import fast_non_local_means, prefiltered_non_local_means
from medrestore.physics.noise import add_rician_noise
from medrestore.physics.noise_estimation import estimate_sigma
from medrestore.tasks.denoise_mri import (
    NLM_H_FACTOR, NLM_SETTINGS, ZOO_MODELS, denoise_volume, load_guides, load_mri_network, network_denoise,
    sigma_conditioned,
)
from medrestore.tasks.models import publish_checkpoint
from medrestore.zoo import PACKAGED_ZOO

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOLUME = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"
SLAB = (96, 128)
CONTEXT = 8
DEFAULT_METHODS = "noisy,dipy-blockwise,dipy-classic,bm4d,nlm,pri-nlm,unet,unet3d,unet3d-nlm,gan"
Restorer = Callable[[np.ndarray, float], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Score:
    """One method at one noise level."""

    method: str
    sigma_percent: float
    psnr: float
    ssim: float
    jaccard: float
    seconds: float
    sigma_ratio: float


def dipy_restorer(method: str) -> Restorer:
    def restore(noisy: np.ndarray, sigma: float) -> np.ndarray:
        from dipy.denoise.nlmeans import nlmeans

        return nlmeans(noisy, sigma, rician=True, method=method, num_threads=torch.get_num_threads())

    return restore


def bm4d_restorer(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm4d

    return np.asarray(bm4d.bm4d(noisy, sigma), dtype=np.float32)


def nlm_restorer(noisy: np.ndarray, sigma: float) -> np.ndarray:
    patch, search = NLM_SETTINGS[3]
    return fast_non_local_means(torch.from_numpy(noisy), sigma, patch, search, NLM_H_FACTOR).numpy()


def pri_nlm_restorer(noisy: np.ndarray, sigma: float) -> np.ndarray:
    return prefiltered_non_local_means(torch.from_numpy(noisy), sigma).numpy()


def network_restorer(source: str) -> Restorer:
    """A zoo network (method shorthand or zoo name) or a training checkpoint."""
    if names_model_file(source):
        predictor = load_mri_network("unet3d", torch.device("cpu"), source)  # as `denoise --model` runs it
    else:
        method = next((key for key, name in ZOO_MODELS.items() if source in (key, name)), None)
        if method is None:
            raise SystemExit(f"unknown method {source!r}")
        predictor = load_mri_network(method, torch.device("cpu"))

    def restore(noisy: np.ndarray, sigma: float) -> np.ndarray:
        with torch.inference_mode():
            return network_denoise(torch.from_numpy(noisy), predictor, sigma=sigma).numpy()

    return restore


def restorer(method: str) -> Restorer:
    if method == "noisy":
        return lambda noisy, sigma: noisy
    if method.startswith("dipy-"):
        return dipy_restorer(method.removeprefix("dipy-"))
    if method == "bm4d":
        return bm4d_restorer
    if method == "nlm":
        return nlm_restorer
    if method == "pri-nlm":
        return pri_nlm_restorer
    if method in ("nlm-wiener", "unet3d-nlm"):
        predictor = load_guides(torch.device("cpu")) if method == "unet3d-nlm" else None
        return lambda noisy, sigma: denoise_volume(torch.from_numpy(noisy), method, sigma, predictor, torch.device("cpu"))[0].numpy()
    return network_restorer(method)


@dataclasses.dataclass(frozen=True)
class Case:
    """One noise level: the noisy block, the clean slab, its mask and tissue labels."""

    sigma_percent: float
    noisy: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    peak: float


def make_case(volume: np.ndarray, sigma_percent: float, seed: int, brain: np.ndarray | None = None) -> Case:
    """σ and the PSNR peak are taken from the maximum inside ``brain`` (default: every voxel > 0),
    which is also the scoring mask."""
    brain = volume > 0 if brain is None else brain
    peak = float(volume[brain].max())
    generator = torch.Generator().manual_seed(seed)
    noisy = add_rician_noise(torch.from_numpy(volume), sigma_percent / 100 * peak, generator).numpy()
    block = noisy[:, :, SLAB[0] - CONTEXT : SLAB[1] + CONTEXT].copy()
    clean = volume[:, :, SLAB[0] : SLAB[1]]
    mask = brain[:, :, SLAB[0] : SLAB[1]]
    labels, _ = gaussian_mixture_segmentation(clean, mask)
    return Case(sigma_percent, block, clean, mask, labels, peak)


def score(method: str, restore: Restorer, case: Case) -> Score:
    """Scores of ``restore`` on ``case``; the time includes the σ estimate (0 for the noisy input)."""
    started = time.perf_counter()
    sigma = estimate_sigma(case.noisy)
    output = np.asarray(restore(case.noisy, sigma), dtype=np.float64)
    seconds = 0.0 if method == "noisy" else time.perf_counter() - started
    slab = output[:, :, CONTEXT : CONTEXT + SLAB[1] - SLAB[0]]
    return Score(
        method,
        case.sigma_percent,
        psnr(slab, case.clean, case.peak, case.mask),
        ssim(slab, case.clean, case.peak, spatial_ndim=3, mask=case.mask),
        tissue_jaccard(slab, case.labels, case.mask)["mean"],
        seconds,
        sigma / (case.sigma_percent / 100 * case.peak),
    )


def markdown(scores: Sequence[Score]) -> str:
    sigmas = sorted({s.sigma_percent for s in scores})
    methods = list(dict.fromkeys(s.method for s in scores))
    header = "| method | " + " | ".join(f"σ {s:g} %: PSNR / SSIM / Jaccard / s" for s in sigmas) + " |"
    lines = [header, "|---|" + "---|" * len(sigmas)]
    table = {(s.method, s.sigma_percent): s for s in scores}
    for method in methods:
        cells = []
        for sigma in sigmas:
            entry = table.get((method, sigma))
            cells.append("–" if entry is None else f"{entry.psnr:.2f} / {entry.ssim:.4f} / {entry.jaccard:.3f} / {entry.seconds:.1f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


VARIANTS = ("colin27", "fat-shell", "phantom", "smooth")
SMOOTH_VOXELS = 1.0
SHELL_MM = (3.0, 8.0)
SHELL_BRIGHTNESS = 1.6


def variant_volume(volume: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The clean volume of a robustness ``variant`` and its brain mask (where it is scored).

    ``colin27``: as is. ``fat-shell``: a shell 3–8 voxels outside the brain at 1.6× the brain's 99th
    percentile, as the scalp fat of an unstripped T1 head (it raises the robust maximum every network
    divides by); σ and the PSNR peak stay those of the brain. ``phantom``: the piecewise-constant
    :func:`~medrestore.data.mri_phantom.brain_phantom` (seed 3) of the same size, scaled to Colin27's maximum.
    ``smooth``: Colin27 blurred by a Gaussian of σ = 1 voxel inside its brain mask (normalised
    convolution, so the edge of the brain does not darken), a proxy for a population-average template
    such as ICBM152: anatomy blurred by averaging many registered brains, almost no residual noise.
    """
    if variant == "colin27":
        return volume, volume > 0
    if variant == "fat-shell":
        from scipy import ndimage

        brain = volume > 0
        distance = ndimage.distance_transform_edt(~brain)
        shelled = volume.copy()
        shelled[(distance > SHELL_MM[0]) & (distance < SHELL_MM[1])] = SHELL_BRIGHTNESS * float(np.quantile(volume[brain], 0.99))
        return shelled, brain
    if variant == "phantom":
        from medrestore.data.mri_phantom import brain_phantom

        phantom = brain_phantom(volume.shape, seed=3)[0] * float(volume.max())
        return phantom.astype(np.float32), phantom > 0
    if variant == "smooth":
        from scipy import ndimage

        brain = volume > 0
        weight = ndimage.gaussian_filter(brain.astype(np.float32), SMOOTH_VOXELS)
        blurred = ndimage.gaussian_filter(volume, SMOOTH_VOXELS) / np.maximum(weight, 1e-6)
        return np.where(brain, blurred, 0.0).astype(np.float32), brain
    raise SystemExit(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def benchmark(arguments: argparse.Namespace) -> None:
    volume, brain = variant_volume(read_image(arguments.volume).data.numpy().astype(np.float32), arguments.variant)
    methods = [m.strip() for m in arguments.methods.split(",") if m.strip()]
    restorers = {method: restorer(method) for method in methods}
    scores = []
    for sigma_percent in (float(s) for s in arguments.sigmas.split(",")):
        case = make_case(volume, sigma_percent, arguments.seed, brain)
        for method, restore in restorers.items():
            result = score(method, restore, case)
            scores.append(result)
            print(f"σ {sigma_percent:g} % {method}: {result.psnr:.2f} dB, SSIM {result.ssim:.4f}, "
                  f"Jaccard {result.jaccard:.3f}, {result.seconds:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    print(markdown(scores))
    if arguments.json:
        payload = {"volume": str(arguments.volume), "variant": arguments.variant, "slab": SLAB, "context": CONTEXT, "seed": arguments.seed,
                   "threads": torch.get_num_threads(), "scores": [dataclasses.asdict(s) for s in scores]}  # fmt: skip
        Path(arguments.json).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def publish(arguments: argparse.Namespace) -> None:
    """Score a checkpoint on the held-out slab at σ = 3, 5, 7 % and write weights + card to the zoo."""
    volume = read_image(arguments.volume).data.numpy().astype(np.float32)
    restore = network_restorer(str(arguments.checkpoint))
    metrics: dict[str, object] = {"convention": "Colin27 held-out slab z=96-127 (8 slices of context each side), Rician noise "
                                  "sigma = 3/5/7 % of the maximum, seed 0; PSNR/SSIM (3-D) inside the brain, peak = clean maximum; "
                                  "mean Jaccard of 3 Gaussian-mixture tissue classes; seconds for the 48-slice block, 1 thread"}  # fmt: skip
    for sigma_percent in (3.0, 5.0, 7.0):
        result = score(arguments.name, restore, make_case(volume, sigma_percent, arguments.seed))
        tag = f"sigma{sigma_percent:g}pct"
        metrics.update({f"psnr_{tag}": round(result.psnr, 3), f"ssim_{tag}": round(result.ssim, 4),
                        f"jaccard_{tag}": round(result.jaccard, 4), f"seconds_{tag}": round(result.seconds, 2)})  # fmt: skip
    card = publish_checkpoint(
        arguments.checkpoint,
        name=arguments.name,
        task="denoise",
        modality="mri",
        training={
            "data": arguments.data,
            "split": "axial slices z=96-127 held out (validation and evaluation), the rest trained on",
            "command": f"medrestore train --config {arguments.config}",
            **({"hardware": arguments.hardware} if arguments.hardware else {"threads": 1}),
            "noise_conditioning": ("conditioned on sigma: a second input channel holds sigma estimated from the image (--sigma auto) "
                                   "in the same units" if sigma_conditioned(Predictor.from_checkpoint(arguments.checkpoint, "cpu").model)
                                   else "blind (no sigma input)")
                                  + "; intensities divided by the 99.9th percentile of the bright voxels",
        },
        metrics=metrics,
        description=arguments.description,
        zoo_dir=arguments.zoo_dir,
    )
    print(json.dumps(card.to_dict(), indent=2))


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="benchmark", choices=("benchmark", "publish"))
    parser.add_argument("--volume", type=Path, default=DEFAULT_VOLUME)
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default: {DEFAULT_METHODS})")
    parser.add_argument("--sigmas", default="3,5,7", help="Rician σ in %% of the maximum, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default="colin27", choices=VARIANTS, help="robustness variants of the test volume (see variant_volume)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the scores here")
    parser.add_argument("--checkpoint", type=Path, help="publish: the training checkpoint")
    parser.add_argument("--name", help="publish: zoo name")
    parser.add_argument("--config", default="configs/mri-unet2d.yaml", help="publish: the training configuration")
    parser.add_argument("--description", default="", help="publish: card description")
    parser.add_argument("--data", default="Colin27 (ch2.nii.gz, ANTsPy data, Apache-2.0), Rician noise sigma 1-10 % of the maximum drawn per sample",
                        help="publish: the card's training data")
    parser.add_argument("--hardware", help="publish: where it was trained (default: 1 CPU thread)")
    parser.add_argument("--zoo-dir", type=Path, default=PACKAGED_ZOO)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(arguments.threads))
    if arguments.command == "publish":
        publish(arguments)
    else:
        benchmark(arguments)


if __name__ == "__main__":
    main()
