"""Where the MRI default's error sits, and what a better guide would be worth there.

The default for volumes (``unet3d-nlm``) averages measured voxels with weights from a guide ``ũ``, the mean of
its guide networks' outputs, then blends in a collaborative Wiener filter (``tasks/denoise_mri.py``). This
script takes one clean 3-D volume with a zero background (the brain: voxels > 0), adds Rician noise of
``--sigma`` × its maximum (seed 0, ``medrestore degrade``), runs the default's stages with ``σ`` estimated
as ``--sigma auto`` does, and reports:

1. *PSNR by distance to the edge of the brain mask* for every intermediate estimate: ``nlm``, each guide network
   (on the views the default gives it), the guide, the guided NLM, the first stage ``x̂₁``, the Wiener estimate
   and the default's output; distance = the Euclidean distance transform of the mask, in voxels, bands
   ``(0, r₁], (r₁, r₂], …, (r_last, ∞)`` from ``--bands``. Each band's share of the voxels and of the
   output's squared error comes with it. Peak = the clean maximum, the issue's convention.
2. *Oracle guides*: the default's output with the clean volume as its guide within ``d ≤ r`` for each
   ``r`` of ``--bands`` and everywhere, the rest of the guide as shipped. These bound what a better guide
   network could give in each band; no real method can reach them.
3. *Guides from the data itself* within ``d ≤ r₁`` (the true mask's outer layer): ``nlm``, the default's
   output, the Wiener estimate, the guided NLM. They show whether the outer layer's share of the oracle
   gain can be had without a better network.
4. *A guide with a smaller error of the same kind*: ``clean + t · (ũ − clean)`` for each ``t`` of ``--shrink``
   (its PSNR rises by ``−20 log10 t``). How much better the guide networks must be for a given gain.

Whole volume: outside the tissue box every estimate is ``nlm``, as in the default. The "default" row is the
shipped pipeline's output to the last bit (the test checks this). Each oracle row costs a guided NLM and a
Wiener filter (about 7 s on a 1-mm brain with 2 threads).

Usage::

    python benchmarks/mri_guide_diagnostics.py --volume CLEAN.nii.gz [--sigma 0.05] [--bands 1.5,3,5]
        [--shrink 0.9,0.8,0.7,0.5] [--threads 2] [--workdir results/mri-guide-diagnostics] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mri_default_shares import noisy_copy  # noqa: E402

from medrestore.io import read_image  # noqa: E402
from medrestore.metrics import psnr  # noqa: E402
from medrestore.physics.noise_estimation import estimate_sigma  # noqa: E402
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, guided_stages, tissue_box  # noqa: E402
from medrestore.tasks.denoise_mri import denoise_volume, guide_outputs, load_guides  # noqa: E402

GUIDE_MODELS = DEFAULT_SETTINGS.guide_models


def band_masks(brain: np.ndarray, bands: tuple[float, ...], distance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The brain's voxels split by their distance ``d`` to the nearest background voxel (``scipy``'s
    Euclidean distance transform of ``brain``, unless given: 1 for the outermost layer): ``d ≤ r₁``,
    ``r₁ < d ≤ r₂``, …, ``d > r_last``."""
    distance = distance_transform_edt(brain) if distance is None else distance
    edges = (0.0, *bands, np.inf)
    return {
        (f"d ≤ {high:g}" if low == 0 else f"d > {low:g}" if high == np.inf else f"{low:g} < d ≤ {high:g}"): brain & (distance > low) & (distance <= high)
        for low, high in zip(edges[:-1], edges[1:], strict=True)
    }


def diagnose(clean_path: Path, sigma: float, bands: tuple[float, ...], shrink: tuple[float, ...], workdir: Path) -> dict[str, object]:
    """Tables 1–4 of the module docstring for one clean volume."""
    clean = read_image(clean_path).data.numpy().astype(np.float64)
    noisy = read_image(noisy_copy(clean_path, sigma, workdir)).data.to(torch.float32)
    cpu = torch.device("cpu")
    brain, peak = clean > 0, float(clean.max())
    distance = distance_transform_edt(brain)
    masks = band_masks(brain, bands, distance)
    used = estimate_sigma(noisy)
    nlm = denoise_volume(noisy, "nlm", used, None, cpu)[0]
    box = tissue_box(noisy, used)
    part = noisy[box]
    networks = guide_outputs(part, load_guides(cpu), used)
    shipped_guide = torch.stack(networks).mean(dim=0)
    stages = guided_stages(part, nlm[box], shipped_guide, used)

    def whole(inside: torch.Tensor) -> np.ndarray:
        volume = nlm.clone()
        volume[box] = inside
        return volume.numpy().astype(np.float64)

    def scores(estimate: np.ndarray) -> dict[str, float]:
        return {"all": psnr(estimate, clean, peak, brain)} | {name: psnr(estimate, clean, peak, mask) for name, mask in masks.items()}

    estimates = {"nlm": nlm.numpy().astype(np.float64)}
    estimates |= {f"network {name}": whole(output) for name, output in zip(GUIDE_MODELS, networks, strict=True)}
    estimates |= {"guide (their mean)": whole(shipped_guide), "guided NLM": whole(stages.guided), "first stage x̂₁": whole(stages.first)}
    estimates |= {"Wiener W(x̂₁)": whole(stages.wiener), "default": whole(stages.final)}
    error = (estimates["default"] - clean) ** 2
    table = {name: scores(estimate) for name, estimate in estimates.items()}
    shares = {name: {"voxels": float(mask.sum() / brain.sum()), "squared error": float(error[mask].sum() / error[brain].sum())} for name, mask in masks.items()}

    def guided_by(replacement: torch.Tensor) -> float:  # PSNR of the default with another guide
        return psnr(whole(guided_stages(part, nlm[box], replacement, used).final), clean, peak, brain)

    clean_part = torch.from_numpy(clean[box].astype(np.float32))
    distance_part = torch.from_numpy(distance[box])
    oracle: dict[str, float] = {}
    for radius in (*bands, np.inf):
        where = (distance_part > 0) & (distance_part <= radius)
        label = "everywhere" if radius == np.inf else f"d ≤ {radius:g}"
        oracle[f"clean guide, {label}"] = guided_by(torch.where(where, clean_part, shipped_guide))
    outer = (distance_part > 0) & (distance_part <= bands[0])
    for name, source in {"nlm": nlm[box], "default": stages.final, "Wiener W(x̂₁)": stages.wiener, "guided NLM": stages.guided}.items():
        oracle[f"{name} as the guide, d ≤ {bands[0]:g}"] = guided_by(torch.where(outer, source, shipped_guide))
    for factor in shrink:
        shrunk = clean_part + factor * (shipped_guide - clean_part)
        oracle[f"the guide's error × {factor:g} ({psnr(whole(shrunk), clean, peak, brain):.2f} dB)"] = guided_by(shrunk)
    return {"sigma_estimated": used, "psnr": table, "bands": shares, "guide_replaced": oracle}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, required=True, help="a clean 3-D volume with a zero background")
    parser.add_argument("--sigma", type=float, default=0.05, help="Rician σ as a fraction of the maximum")
    parser.add_argument("--bands", default="1.5,3,5", help="comma-separated, increasing distances to the mask edge (voxels)")
    parser.add_argument("--shrink", default="0.9,0.8,0.7,0.5", help="comma-separated factors t in (0, 1) for the guide's error")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("results") / "mri-guide-diagnostics")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args(argv)
    bands = tuple(float(b) for b in arguments.bands.split(",") if b)
    if not bands or any(b <= 0 for b in bands) or list(bands) != sorted(set(bands)):
        parser.error(f"--bands: give increasing positive distances, got {arguments.bands!r}")
    shrink = tuple(float(t) for t in arguments.shrink.split(",") if t)
    if any(not 0 < t < 1 for t in shrink):
        parser.error(f"--shrink: give factors between 0 and 1, got {arguments.shrink!r}")
    torch.set_num_threads(arguments.threads)
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    result = diagnose(arguments.volume, arguments.sigma, bands, shrink, arguments.workdir)
    table = result["psnr"]
    assert isinstance(table, dict)
    columns = list(next(iter(table.values())))
    print(f"{arguments.volume.name}: Rician σ = {arguments.sigma:.0%}, seed 0; PSNR (dB) by distance d to the mask edge (voxels)")
    print("| estimate | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    print("\n| band | share of the voxels | share of the default's squared error |\n|---|---|---|")
    for name, share in result["bands"].items():  # type: ignore[union-attr]
        print(f"| {name} | {share['voxels']:.3f} | {share['squared error']:.3f} |")
    default = table["default"]["all"]
    print("\n| the default's guide replaced by | PSNR (dB) | change (dB) |\n|---|---|---|")
    for name, value in result["guide_replaced"].items():  # type: ignore[union-attr]
        print(f"| {name} | {value:.2f} | {value - default:+.2f} |")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps({"volume": str(arguments.volume), "sigma": arguments.sigma, **result}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
