"""The MRI-denoising default on a whole volume, through the CLI, timed against the fast NLM in the same run.

Colin27 (``ch2.nii.gz``: 1 mm, 181 × 217 × 181) gets Rician noise with σ = ``--sigma`` of its maximum
(``medrestore degrade --kind rician --relative-sigma S --seed SEED``, ``--seed``, 0 by default), then every method runs as
``medrestore denoise --modality mri NOISY -o OUT --method M --sigma auto`` in its own process with
``--threads`` torch/OpenMP threads. Reported per method: PSNR inside the brain (voxels > 0 of the
clean volume; peak = its maximum, the issue's convention), the ``seconds per volume`` the command
measures (σ estimate included, reading and writing excluded), the whole command's wall time, and
both times as a ratio to ``nlm``'s measured in the same run. Each method runs ``--repeats`` times;
the fastest run counts (the machine may be shared).

``--baselines dipy-blockwise,dipy-classic,bm4d`` also runs those (``benchmarks/mri_denoise.py``'s
restorers, in this process with ``--threads`` threads, σ estimated as ``--sigma auto`` does) on the
same noisy file, once each.

``--volume`` takes any clean 3-D brain volume with a zero background (the brain: voxels > 0). A second
subject, the ICBM152 2009a template shipped inside nilearn's wheel (197 × 233 × 189, 1 mm, a
population average that no network here was trained on)::

    pip download nilearn==0.14.1 --no-deps -d /tmp/nilearn
    unzip -o /tmp/nilearn/nilearn-0.14.1-py3-none-any.whl \
        nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz -d /tmp/nilearn
    python benchmarks/mri_denoise_volume.py --methods auto,unet3d --baselines dipy-blockwise,bm4d \
        --volume /tmp/nilearn/nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz

Usage::

    python benchmarks/mri_denoise_volume.py [--methods auto,nlm] [--baselines ...] [--volume PATH] [--sigma 0.05] [--threads 2] [--repeats 2]
        [--model CHECKPOINT]

``--model`` runs the network methods with another network (``medrestore denoise --model``), e.g. a
``last.pt`` of ``medrestore train``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from medrestore.io import read_image
from medrestore.metrics import psnr
from medrestore.tasks.denoise_mri import CLASSICAL_METHODS

ROOT = Path(__file__).resolve().parents[1]
COLIN27 = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"
BASELINE = "nlm"


def run_cli(arguments: list[str], threads: int) -> tuple[str, float]:
    """Run ``medrestore ARGUMENTS`` with ``threads`` threads; its standard output and wall seconds."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "medrestore.cli.main", *arguments], check=True, capture_output=True, text=True, env=environment)
    return done.stdout + done.stderr, time.perf_counter() - started


def run_baseline(method: str, noisy: np.ndarray, threads: int) -> tuple[np.ndarray, float]:
    """One of ``benchmarks/mri_denoise.py``'s baselines on ``noisy`` in this process: its output and seconds."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mri_denoise import restorer

    from medrestore.physics.noise_estimation import estimate_sigma

    torch.set_num_threads(threads)
    started = time.perf_counter()
    output = restorer(method)(noisy, estimate_sigma(noisy))
    return np.asarray(output, dtype=np.float64), time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, default=COLIN27)
    parser.add_argument("--methods", default=f"auto,{BASELINE}", help="comma-separated --method values (nlm is always run)")
    parser.add_argument("--model", help="a checkpoint of `medrestore train` (or zoo name) for the network methods (unet3d, unet3d-nlm, auto), in place of the zoo network")
    parser.add_argument("--baselines", default="", help="comma-separated dipy-blockwise, dipy-classic, bm4d (in-process, once each)")
    parser.add_argument("--sigma", type=float, default=0.05, help="Rician σ as a fraction of the maximum")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draw (`degrade --seed`)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "results" / "mri-denoise-volume")
    parser.add_argument("--json", type=Path, help="also write the results here")
    arguments = parser.parse_args(argv)
    arguments.workdir.mkdir(parents=True, exist_ok=True)
    suffix = "" if arguments.seed == 0 else f"-seed{arguments.seed}"  # seed 0 keeps the earlier file names
    noisy = arguments.workdir / f"noisy-{arguments.sigma:g}{suffix}.nii.gz"
    run_cli(["degrade", str(arguments.volume), "-o", str(noisy), "--kind", "rician", "--relative-sigma", str(arguments.sigma), "--seed", str(arguments.seed)], 1)
    clean = read_image(arguments.volume).data.numpy().astype(np.float64)
    brain, peak = clean > 0, float(clean.max())
    methods = list(dict.fromkeys([BASELINE, *(m.strip() for m in arguments.methods.split(",") if m.strip())]))
    rows = {"noisy": {"psnr": psnr(read_image(noisy).data.numpy().astype(np.float64), clean, peak, brain)}}
    for method in methods:
        output = arguments.workdir / f"denoised-{method}.nii.gz"
        best: dict[str, object] = {}
        for _ in range(arguments.repeats):
            network = ["--model", str(arguments.model)] if arguments.model and method not in CLASSICAL_METHODS else []
            text, wall = run_cli(["denoise", "--modality", "mri", str(noisy), "-o", str(output), "--method", method, "--sigma", "auto", *network], arguments.threads)
            seconds = float(re.search(r"([0-9.]+) s per volume", text).group(1))  # type: ignore[union-attr]
            used = re.search(r"with (\S+) \(([^)]+)\)", text)
            if not best or seconds < float(best["seconds"]):  # type: ignore[arg-type]
                best = {"seconds": seconds, "wall": wall, "ran": f"{used.group(1)} ({used.group(2)})" if used else method}
        best["psnr"] = psnr(read_image(output).data.numpy().astype(np.float64), clean, peak, brain)
        rows[method] = best
    for method in (m.strip() for m in arguments.baselines.split(",") if m.strip()):
        output, seconds = run_baseline(method, read_image(noisy).data.numpy().astype(np.float32), arguments.threads)
        rows[method] = {"seconds": seconds, "wall": None, "ran": method, "psnr": psnr(output, clean, peak, brain)}
        methods.append(method)
    baseline = rows[BASELINE]
    print(f"{arguments.volume.name} whole volume, Rician σ = {arguments.sigma:.0%}, {arguments.threads} threads, fastest of {arguments.repeats}")
    print("| --method (ran) | PSNR in brain (dB) | s per volume | × nlm | wall s | × nlm |")
    print("|---|---|---|---|---|---|")
    print(f"| noisy input | {rows['noisy']['psnr']:.2f} | – | – | – | – |")
    for method in methods:
        row = rows[method]
        label = str(row["ran"]) if str(row["ran"]).startswith(method) else f"{method} → {row['ran']}"
        wall = "– | –" if row["wall"] is None else f"{row['wall']:.1f} | {row['wall'] / baseline['wall']:.2f}"
        print(f"| {label} | {row['psnr']:.2f} | {row['seconds']:.2f} | {row['seconds'] / baseline['seconds']:.2f} | {wall} |")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"sigma": arguments.sigma, "threads": arguments.threads, "repeats": arguments.repeats, "rows": rows}
        arguments.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
