"""Which stages of the 3-D MRI default pay for their time: each stage timed, and the default re-assembled without it.

On the noisy volumes of ``benchmarks/mri_denoise_default.py`` (σ = 5 % of the maximum, seed 0; run that script once
first, or any run of it, to write them) this computes the stages of the previous default once per brain, in this
process with ``--threads`` threads, and times each:

* σ (:func:`~medrestore.physics.noise_estimation.estimate_sigma`), plain ``nlm`` of the whole volume, the tissue box;
* each guide network (``mri-resunet3d-colin27``, ``mri-resunet3d-brains``) on each of its two views, bfloat16 where
  the CPU has it;
* per guide: the guided NLM, the first stage ``x̂₁ = 0.6·guided + 0.4·nlm`` and the collaborative Wiener filter
  ``W(x̂₁)`` with the default's settings, blended by the per-voxel share.

Rows (PSNR inside the scoring mask, peak = the clean maximum):

* ``old``: the two networks × two views as the guide (the previous default);
* ``one view each``: the two networks, one view each;
* ``brains only``: ``mri-resunet3d-brains`` on two views (``…, one view``: on one);
* ``… b = 1``: the same without the per-voxel share (the Wiener estimate alone);
* ``one view each, a = 0``: without plain ``nlm`` in the first stage;
* ``nlm → Wiener``: no network, ``nlm`` as the pilot of the same Wiener stage and share.

Usage::

    flock /tmp/cpu.lock env OMP_NUM_THREADS=1 python benchmarks/mri_default_stages.py --brains sri24,oasis --threads 1 \\
        --json results/mri-default-stages/a.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mri_denoise_default import BRAINS, WORK, clean_volume  # noqa: E402

from medrestore.io import read_image  # noqa: E402
from medrestore.metrics import psnr  # noqa: E402
from medrestore.models.fast_nlm import guided_non_local_means  # noqa: E402
from medrestore.physics.noise_estimation import estimate_sigma  # noqa: E402
from medrestore.solvers.collaborative_wiener import collaborative_wiener  # noqa: E402
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, tissue_box, wiener_share_map  # noqa: E402
from medrestore.tasks.denoise_mri import _nlm, cpu_bfloat16, load_mri_network, network_denoise  # noqa: E402

GUIDE_MODELS = ("mri-resunet3d-colin27", "mri-resunet3d-brains")
"""The previous default's two guide networks."""
WIENER_SETTINGS = DEFAULT_SETTINGS.wiener_options()

T = TypeVar("T")


def timed(times: dict[str, float], name: str, compute: Callable[[], T]) -> T:
    """``compute()``, its wall seconds added to ``times[name]``."""
    started = time.perf_counter()
    value = compute()
    times[name] = times.get(name, 0.0) + time.perf_counter() - started
    return value


def brain_rows(name: str, sigma_fraction: float, icbm152: Path | None, guides_only: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """PSNR of every row on brain ``name`` and the seconds of every stage (``guides_only``: without the ``a = 0`` and
    ``nlm → Wiener`` rows)."""
    clean_path, mask = clean_volume(name, icbm152)
    clean = read_image(clean_path).data.numpy().astype(np.float64)
    noisy = read_image(WORK / name / f"noisy-{sigma_fraction:g}-seed0.nii.gz").data.to(torch.float32)
    device, times, rows = torch.device("cpu"), {}, {}
    peak = float(clean.max())
    sigma = timed(times, "sigma", lambda: estimate_sigma(noisy))
    nlm = timed(times, "nlm", lambda: _nlm(noisy, sigma, device))
    box = timed(times, "box", lambda: tissue_box(noisy, sigma))
    part = noisy[box]
    bfloat16 = cpu_bfloat16()
    views: dict[tuple[str, int], torch.Tensor] = {}
    for network in GUIDE_MODELS:
        predictor = load_mri_network("unet3d-nlm", device, network)
        for flip in (0, 1):
            flips = (((), (0,))[flip],)
            with torch.inference_mode():
                views[network, flip] = timed(times, f"{network} view", lambda: network_denoise(part, predictor, sigma=sigma, flips=flips, bfloat16=bfloat16))
    colin, brains = GUIDE_MODELS
    guides = {
        "old": torch.stack([views[n, f] for n in GUIDE_MODELS for f in (0, 1)]).mean(0),
        "one view each": (views[colin, 0] + views[brains, 0]) / 2,
        "brains only": (views[brains, 0] + views[brains, 1]) / 2,
        "brains only, one view": views[brains, 0],
    }

    def finish(label: str, pilot: torch.Tensor) -> None:
        wiener = timed(times, "wiener", lambda: collaborative_wiener(part, pilot, sigma, **WIENER_SETTINGS))
        share = timed(times, "share", lambda: wiener_share_map(pilot, sigma))
        for suffix, estimate in (("", (1 - share) * pilot + share * wiener), (", b = 1", wiener)):
            output = nlm.clone()
            output[box] = estimate
            rows[label + suffix] = psnr(output.numpy().astype(np.float64), clean, peak, mask)

    for label, guide in guides.items():
        guided = timed(times, "guided nlm", lambda: guided_non_local_means(part, guide, sigma))
        finish(label, 0.6 * guided + 0.4 * nlm[box])
        if label == "one view each" and not guides_only:
            finish("one view each, a = 0", guided)
    if not guides_only:
        finish("nlm → Wiener", nlm[box].clone())
    rows["nlm"] = psnr(nlm.numpy().astype(np.float64), clean, peak, mask)
    return rows, times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brains", default=",".join(BRAINS))
    parser.add_argument("--icbm152", type=Path)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--guides-only", action="store_true", help="skip the a = 0 and nlm → Wiener rows")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    torch.set_num_threads(arguments.threads)
    results = {}
    for name in (b.strip() for b in arguments.brains.split(",") if b.strip()):
        rows, times = brain_rows(name, arguments.sigma, arguments.icbm152, arguments.guides_only)
        results[name] = {"psnr": rows, "seconds": times}
        print(name, json.dumps(results[name]), flush=True)
        if arguments.json:
            arguments.json.parent.mkdir(parents=True, exist_ok=True)
            arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
