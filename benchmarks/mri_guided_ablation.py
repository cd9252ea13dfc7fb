"""How the MRI default (``unet3d-nlm``: NLM weighted by the 3-D network) was chosen: its settings, one at a time.

Same cases as ``benchmarks/mri_denoise.py``. Colin27 and its ``--variants`` get Rician noise at
σ = 3, 5, 7 % (seed 0). The 48-slice block z = 88…135 is denoised and PSNR is scored inside the brain
on the held-out slab z = 96…127. Every row changes one setting of the baseline (the default until 2026-11-23) and reports
PSNR per σ and the mean over all cases:

* ``network``: the 3-D network alone (two views); ``nlm``; ``0.7 network + 0.3 nlm``: a fixed blend;
* ``guided``: the network-guided NLM alone, h = 0.7σ, 7³ search, two-view guide;
* ``baseline``: the default until 2026-11-23, as ``denoise_volume(…, "unet3d-nlm", …)`` ran it, tissue box included: the first stage, 0.8 × guided +
  0.2 × nlm (its guide: four views in bfloat16 on a CPU with native bfloat16, else the two float32 views of
  the ``two float32 views`` row), then 0.5 × that + 0.5 × the collaborative Wiener filter with the first
  stage as its pilot;
* ``first stage``: the same without the Wiener stage (the default until 2026-11-22), on the whole block;
* ``Wiener …``: the Wiener stage with one setting changed (its share, groups, search, or its pilot);
* ``h = …``, ``search …``, ``… views``, ``patch 3³``: the guided part with one setting changed, mixed
  0.8 / 0.2 with NLM as in the first stage (no Wiener stage);
* ``second pass``: the guided average again, with the baseline's output as its guide.

Every row, ``baseline`` included, guides with ``mri-resunet3d-colin27`` alone and uses the shares and Wiener groups
of :data:`NLM_SHARE`, :data:`WIENER_SHARE` and :data:`WIENER_GROUP` below: the settings were chosen so, before the
default's guide became the mean of two networks (``GUIDE_MODELS``) and its shares were re-chosen on brains the
guides never saw (``benchmarks/mri_default_shares.py``), both on 2026-11-23. ``benchmarks/mri_denoise.py`` scores the
default as it ships.

Usage::

    python benchmarks/mri_guided_ablation.py [--variants colin27,fat-shell,smooth,phantom] [--sigmas 3,5,7] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mri_denoise import CONTEXT, DEFAULT_VOLUME, SLAB, make_case, variant_volume  # noqa: E402

from medrestore.io import read_image  # noqa: E402
from medrestore.metrics import psnr  # noqa: E402
from medrestore.models.fast_nlm import GUIDED_H_FACTOR, GUIDED_SEARCH_RADIUS, guided_non_local_means, nlm_weighted_mean  # noqa: E402
from medrestore.physics.noise_estimation import estimate_sigma, rician_bias_correct  # noqa: E402
from medrestore.solvers.collaborative_wiener import collaborative_wiener  # noqa: E402
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, guided_stages, tissue_box  # noqa: E402
from medrestore.tasks.denoise_mri import _nlm, guide, guide_settings, load_mri_network, network_denoise  # noqa: E402

NLM_SHARE = 0.2
"""The first stage's share of plain ``nlm`` in this ablation (the default's until 2026-11-23; it ships 0.4 now)."""
WIENER_SHARE = 0.5
"""The Wiener stage's share in this ablation (the default's until 2026-11-23; it now ships a per-voxel share,
``guided_wiener.wiener_share_map``)."""
WIENER_GROUP = 8
"""The Wiener stage's groups in this ablation (the default's until 2026-11-23; it ships 16 now)."""
ABLATION_SETTINGS = dataclasses.replace(
    DEFAULT_SETTINGS, guide_models=("mri-resunet3d-colin27", "mri-resunet3d-brains"), guide_views=2, nlm_share=NLM_SHARE, share_flat=WIENER_SHARE, share_edge=WIENER_SHARE, wiener_group=WIENER_GROUP,
    wiener_adaptive_above=None, wiener_kaiser_beta=0.0,
)
"""The baseline of this ablation as one settings object (Haar across every group, no window, as then)."""

VIEWS = {1: ((),), 2: ((), (0,)), 4: ((), (0,), (1,), (0, 1))}


def rows_for_case(noisy: torch.Tensor, sigma: float, predictor: object) -> dict[str, torch.Tensor]:
    """Every row's output for one noisy block."""
    cpu = torch.device("cpu")
    guides = {views: network_denoise(noisy, predictor, sigma=sigma, flips=flips) for views, flips in VIEWS.items()}  # type: ignore[arg-type]
    flips, bfloat16 = guide_settings(cpu, 1, ABLATION_SETTINGS)  # one network on the views two shared then
    shipped_guide = network_denoise(noisy, predictor, sigma=sigma, flips=flips, bfloat16=bfloat16)  # type: ignore[arg-type]
    nlm = _nlm(noisy, sigma, cpu)

    def guided(guide: torch.Tensor, h: float = GUIDED_H_FACTOR, search: int = GUIDED_SEARCH_RADIUS) -> torch.Tensor:
        return guided_non_local_means(noisy, guide, sigma, search_radius=search, h_factor=h)

    def mixed(part: torch.Tensor) -> torch.Tensor:
        return (1.0 - NLM_SHARE) * part + NLM_SHARE * nlm

    def wiener(pilot: torch.Tensor, share: float = WIENER_SHARE, **settings: int) -> torch.Tensor:
        return (1.0 - share) * pilot + share * collaborative_wiener(noisy, pilot, sigma, **{"group": WIENER_GROUP, **settings})

    box = tissue_box(noisy, sigma)  # the default's two stages, inside the tissue box as denoise_volume runs them
    baseline = nlm.clone()
    baseline[box] = guided_stages(
        noisy[box], nlm[box], guide(noisy[box], predictor, sigma), sigma, ABLATION_SETTINGS  # type: ignore[arg-type]
    ).final
    first = mixed(guided(shipped_guide))
    patch = rician_bias_correct(nlm_weighted_mean(guides[2], noisy.square(), 0.0, GUIDED_H_FACTOR * sigma, 1, GUIDED_SEARCH_RADIUS), sigma)
    return {
        "network (two views)": guides[2],
        "nlm": nlm,
        "0.7 network + 0.3 nlm": 0.7 * guides[2] + 0.3 * nlm,
        "guided alone (no nlm share)": guided(guides[2]),
        "**baseline (default until 2026-11-23): first stage, then 0.5 × it + 0.5 × Wiener**": baseline,
        "first stage: 0.8 guided + 0.2 nlm (the default until 2026-11-22)": first,
        "Wiener stage alone, W(first stage)": wiener(first, share=1.0),
        "Wiener share 0.3": wiener(first, share=0.3),
        "Wiener share 0.7": wiener(first, share=0.7),
        "Wiener groups of 16": wiener(first, group=16),
        "Wiener search 5³": wiener(first, search_radius=2),
        "Wiener on the guided NLM alone (no nlm share)": wiener(guided(shipped_guide)),
        "two float32 views (first stage without native bfloat16)": mixed(guided(guides[2])),
        "h = 0.6σ": mixed(guided(guides[2], h=0.6)),
        "h = 0.8σ": mixed(guided(guides[2], h=0.8)),
        "search 5³": mixed(guided(guides[2], search=2)),
        "search 9³": mixed(guided(guides[2], search=4)),
        "one-view guide": mixed(guided(guides[1])),
        "four float32 views": mixed(guided(guides[4])),
        "patch 3³ weights": mixed(patch),
        "second pass (guide: baseline output)": mixed(guided(baseline)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, default=DEFAULT_VOLUME)
    parser.add_argument("--variants", default="colin27,fat-shell,smooth,phantom")
    parser.add_argument("--sigmas", default="3,5,7")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    raw = read_image(arguments.volume).data.numpy().astype(np.float32)
    predictor = load_mri_network("unet3d", torch.device("cpu"))  # mri-resunet3d-colin27
    sigmas = [float(s) for s in arguments.sigmas.split(",")]
    variants = [v.strip() for v in arguments.variants.split(",") if v.strip()]
    table: dict[str, dict[tuple[str, float], float]] = {}
    for variant in variants:
        volume, brain = variant_volume(raw, variant)
        for sigma_percent in sigmas:
            case = make_case(volume, sigma_percent, 0, brain)
            noisy = torch.from_numpy(case.noisy)
            sigma = estimate_sigma(case.noisy)
            for name, output in rows_for_case(noisy, sigma, predictor).items():
                slab = output.numpy().astype(np.float64)[:, :, CONTEXT : CONTEXT + SLAB[1] - SLAB[0]]
                table.setdefault(name, {})[(variant, sigma_percent)] = psnr(slab, case.clean, case.peak, case.mask)
            print(f"{variant} σ {sigma_percent:g} %: done", file=sys.stderr, flush=True)
    header = " | ".join(f"{v} {s:g} %" for v in variants for s in sigmas)
    print(f"| row | {header} | mean |")
    print("|---|" + "---|" * (len(variants) * len(sigmas) + 1))
    for name, scores in table.items():
        values = [scores[(v, s)] for v in variants for s in sigmas]
        print(f"| {name} | " + " | ".join(f"{x:.2f}" for x in values) + f" | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
