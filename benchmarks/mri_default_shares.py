"""The mixing shares and Wiener groups of the MRI default (``unet3d-nlm``), scored on brains the guides never saw.

The default blends three estimates inside the tissue box (``src/medrestore/tasks/denoise_mri.py``):
``x̂₁ = (1 − a)·guided + a·nlm``, then ``x̂ = (1 − b)·x̂₁ + b·W(x̂₁)`` with ``W`` the collaborative Wiener filter
with groups of ``K`` blocks. ``b`` is a constant in most rows of the grid; in the ``b(∇x̂₁)`` rows, the shipped
one among them, it is the default's per-voxel share, 1 where ``x̂₁`` is flat and 0.3 at sharp edges
(``guided_wiener.wiener_share_map``). ``a``, ``b`` and ``K`` were first chosen on Colin27's held-out slab, the
anatomy of the subject the first guide network learnt. This script scores a grid of them on whole volumes that neither guide
network trained on (σ = ``--sigma`` of the maximum, seed 0, ``medrestore degrade`` as in
``mri_denoise_volume.py``; PSNR inside voxels > 0, peak = maximum; σ estimated as ``--sigma auto`` does).
The network guide, ``nlm`` and the guided average are computed once per volume; only the Wiener filter runs
once per ``(a, K)``. ``nlm-wiener`` (no network) is reported beside them.

Volumes (``python benchmarks/brain_templates.py`` writes them): fsaverage, which neither network saw, and the
three heads with skull that only the rejected multi-brain fine-tune trained on: the two WashU averages and
pydeface's mean head (``--clip`` clips them at the 99.9th percentile of their non-zero voxels, as
``brain_templates.py`` does for the validation brains). SRI24 and OASIS can be added; ``mri-resunet3d-brains``
trained on them::

    python benchmarks/mri_default_shares.py --volumes results/brain-templates/fsaverage.nii.gz,\\
results/brain-templates/wustl_3T18yoSchwartzReactN32_T1.nii.gz,results/brain-templates/wustl_711-2C_T1_as_mni305.nii.gz,\\
results/brain-templates/pydeface_mean_reg2mean_T1.nii.gz --clip wustl,pydeface

Usage::

    python benchmarks/mri_default_shares.py --volumes A.nii.gz,B.nii.gz [--clip NAME,...] [--sigma 0.05] [--threads 2]
        [--workdir results/mri-default-shares] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brain_templates import CLIP_QUANTILE  # noqa: E402
from mri_denoise_volume import run_cli  # noqa: E402

from medrestore.io import read_image, write_image  # noqa: E402
from medrestore.metrics import psnr  # noqa: E402
from medrestore.models.fast_nlm import guided_non_local_means  # noqa: E402
from medrestore.physics.noise_estimation import estimate_sigma  # noqa: E402
from medrestore.solvers.collaborative_wiener import collaborative_wiener  # noqa: E402
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, tissue_box, wiener_share_map  # noqa: E402
from medrestore.tasks.denoise_mri import denoise_volume, guide, load_guides  # noqa: E402

NLM_SHARE = DEFAULT_SETTINGS.nlm_share
WIENER_SETTINGS = DEFAULT_SETTINGS.wiener_options()

NLM_SHARES = (0.2, 0.4)
GROUPS = (8, 16)
WIENER_SHARES: tuple[float | None, ...] = (0.5, 0.7, 1.0, None)
"""Constant Wiener shares ``b``, and ``None``: the per-voxel share of the default (``guided_wiener.wiener_share_map``)."""


def clipped(path: Path, workdir: Path) -> Path:
    """A copy of ``path`` clipped at :data:`CLIP_QUANTILE` of its non-zero voxels, in ``workdir``."""
    image = read_image(path)
    data = image.data.numpy().astype(np.float32)
    top = float(np.quantile(data[data > 0], CLIP_QUANTILE))
    target = workdir / f"clipped-{path.name}"
    write_image(image.with_data(torch.from_numpy(np.minimum(data, top))), target)
    return target


def noisy_copy(clean_path: Path, sigma: float, workdir: Path) -> Path:
    """``clean_path`` with Rician noise of ``sigma`` × its maximum, seed 0 (``medrestore degrade``), in ``workdir``."""
    noisy_path = workdir / f"noisy-{sigma:g}-{clean_path.name}"
    run_cli(["degrade", str(clean_path), "-o", str(noisy_path), "--kind", "rician", "--relative-sigma", str(sigma), "--seed", "0"], 1)
    return noisy_path


def score_volume(clean_path: Path, sigma: float, workdir: Path) -> dict[str, float]:
    """PSNR of every row on one volume."""
    clean = read_image(clean_path).data.numpy().astype(np.float64)
    noisy = read_image(noisy_copy(clean_path, sigma, workdir)).data.to(torch.float32)
    cpu = torch.device("cpu")
    brain, peak = clean > 0, float(clean.max())
    used = estimate_sigma(noisy)
    nlm = denoise_volume(noisy, "nlm", used, None, cpu)[0]
    box = tissue_box(noisy, used)
    part = noisy[box]
    guided = guided_non_local_means(part, guide(part, load_guides(cpu), used), used)

    def scored(inside: torch.Tensor) -> float:
        whole = nlm.clone()
        whole[box] = inside
        return psnr(whole.numpy().astype(np.float64), clean, peak, brain)

    network_free = denoise_volume(noisy, "nlm-wiener", used, None, cpu)[0].numpy().astype(np.float64)
    rows = {"nlm": scored(nlm[box]), "nlm-wiener (no network)": psnr(network_free, clean, peak, brain)}
    for share in NLM_SHARES:
        first = (1.0 - share) * guided + share * nlm[box]
        per_voxel = wiener_share_map(first, used)
        for group in GROUPS:
            wiener = collaborative_wiener(part, first, used, **{**WIENER_SETTINGS, "group": group})
            for weight in WIENER_SHARES:
                b = per_voxel if weight is None else weight
                rows[label(share, group, weight)] = scored((1.0 - b) * first + b * wiener)
    return rows


def label(share: float, group: int, weight: float | None) -> str:
    """The row of ``a = share``, ``K = group``, ``b = weight`` (``None``: per voxel); the shipped one in bold."""
    text = f"a = {share:g}, K = {group}, b = {'b(∇x̂₁)' if weight is None else f'{weight:g}'}"
    shipped = share == NLM_SHARE and weight is None and group == WIENER_SETTINGS["group"]
    return f"**{text} (shipped)**" if shipped else text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", required=True, help="comma-separated clean 3-D volumes with a zero background")
    parser.add_argument("--clip", default="", help="comma-separated name fragments: those volumes are clipped first")
    parser.add_argument("--sigma", type=float, default=0.05, help="Rician σ as a fraction of the maximum")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("results") / "mri-default-shares")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    fragments = [f for f in arguments.clip.split(",") if f]
    table: dict[str, dict[str, float]] = {}
    for text in (v for v in arguments.volumes.split(",") if v):
        path = Path(text)
        source = clipped(path, arguments.workdir) if any(f in path.name for f in fragments) else path
        table[path.name] = score_volume(source, arguments.sigma, arguments.workdir)
        print(path.name, json.dumps({k: round(v, 2) for k, v in table[path.name].items()}), flush=True)
    names = list(table)
    print(f"\nPSNR in brain (dB), Rician σ = {arguments.sigma:.0%}, seed 0")
    print("| row | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in table[names[0]]:
        values = [table[n][row] for n in names]
        print(f"| {row} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.2f} |")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps({"sigma": arguments.sigma, "scores": table}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
