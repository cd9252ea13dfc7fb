"""The 3-D MRI denoising default against dipy's blockwise NLM and the previous default, brain by brain.

Every clean volume gets Rician noise of σ = ``--sigma`` of its maximum (``medrestore degrade --kind rician
--relative-sigma S --seed 0``). Then, in the same run and on the same noisy file:

* ``dipy``: dipy's blockwise non-local means (``dipy.denoise.nlmeans.nlmeans(..., rician=True,
  method="blockwise")``) in this process, σ from ``medrestore``'s estimator (not timed); its seconds are those
  of the ``nlmeans`` call alone (the fastest of ``--repeats`` calls), with the memory settings of the new command
  (:func:`~medrestore.core.memory.keep_freed_memory`, :func:`~medrestore.core.memory.no_numpy_hugepages`) in this
  process too;
* ``old``: the previous default, ``medrestore denoise --modality mri NOISY -o OUT --method auto --sigma auto`` run
  from ``--old-src`` (a ``src`` folder of the earlier commit, e.g. ``git archive COMMIT src | tar -x -C /tmp/old``),
  timed as the whole command (start-up, reading, σ, denoising, writing);
* ``new``: the same command from this tree;
* any other ``--methods`` value ``M``: ``medrestore denoise ... --method M`` from this tree, timed the same way.

Reported per brain and method: PSNR and SSIM inside the scoring mask (peak = the clean volume's maximum;
SSIM: :func:`medrestore.metrics.ssim`, 3-D Gaussian window, its map averaged inside the mask), seconds, and the seconds as
a ratio to dipy's in the same run. Each CLI method runs ``--repeats`` times and the fastest counts; every
run uses ``--threads`` threads (torch, OpenMP and dipy's own).

Brains (``--brains``, by name):

* the six template volumes of ``benchmarks/brain_templates.py`` (``fsaverage``, ``sri24``, ``oasis``, the two
  WashU heads and pydeface's mean head; the heads clipped at the 99.9th percentile of their non-zero voxels as
  the validation brains are), scored inside voxels > 0;
* ``colin27``: ``../shared/data/brain-mri-ants/ch2.nii.gz``, inside voxels > 0;
* ``mprage``: the real 3 T MPRAGE ``../shared/data/mri-philips-3t/mprage/`` with noise added to its own: the
  "clean" reference keeps the scan's noise, so its PSNR only ranks methods; scored inside the head
  (:func:`~medrestore.physics.noise_estimation.foreground_mask` of the scan at its own estimated σ, holes filled);
* ``phantom``: :func:`~medrestore.data.mri_phantom.brain_phantom` (seed 3) on Colin27's grid, scaled to its
  maximum, inside the phantom (> 0);
* ``icbm152``: the held-out volume (ICBM152 2009a, ``--icbm152`` PATH; see ``mri_denoise_volume.py`` for where
  it comes from), inside voxels > 0. It decides; nothing is chosen on it.

Usage::

    flock /tmp/cpu.lock env OMP_NUM_THREADS=1 python benchmarks/mri_denoise_default.py --old-src /tmp/old/src \\
        --brains fsaverage,sri24,oasis --threads 1 --json results/mri-denoise-default/a.json
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
import torch
from scipy import ndimage

from medrestore.core.image import Image
from medrestore.core.memory import keep_freed_memory, no_numpy_hugepages
from medrestore.io import read_image, write_image
from medrestore.metrics import psnr, ssim
from medrestore.physics.noise_estimation import estimate_sigma, foreground_mask

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TEMPLATES = ROOT / "results" / "brain-templates"
WORK = ROOT / "results" / "mri-denoise-default"
TEMPLATE_FILES = {
    "fsaverage": "fsaverage.nii.gz",
    "sri24": "sri24.nii.gz",
    "oasis": "oasis.nii.gz",
    "wustl-3t": "wustl_3T18yoSchwartzReactN32_T1.nii.gz",
    "wustl-711": "wustl_711-2C_T1_as_mni305.nii.gz",
    "pydeface": "pydeface_mean_reg2mean_T1.nii.gz",
}
CLIPPED = ("wustl-3t", "wustl-711", "pydeface")
BRAINS = (*TEMPLATE_FILES, "colin27", "mprage", "phantom")
CLIP_QUANTILE = 0.999


def clean_volume(name: str, icbm152: Path | None = None) -> tuple[Path, np.ndarray]:
    """The clean volume of brain ``name`` as a NIfTI under :data:`WORK` (written once) and its scoring mask."""
    path = WORK / name / "clean.nii.gz"
    if name == "icbm152":
        if icbm152 is None:
            raise SystemExit("--icbm152 PATH is needed for the held-out brain")
        image = read_image(icbm152)
    elif name in TEMPLATE_FILES:
        image = read_image(TEMPLATES / TEMPLATE_FILES[name])
    elif name in ("colin27", "phantom"):
        image = read_image(DATA / "brain-mri-ants" / "ch2.nii.gz")
    elif name == "mprage":
        image = read_image(DATA / "mri-philips-3t" / "mprage")
    else:
        raise SystemExit(f"unknown brain {name!r}; choose from {', '.join((*BRAINS, 'icbm152'))}")
    data = image.data.numpy().astype(np.float32)
    if name in CLIPPED:
        data = np.minimum(data, np.float32(np.quantile(data[data > 0], CLIP_QUANTILE)))
    if name == "phantom":
        from medrestore.data.mri_phantom import brain_phantom

        data = (brain_phantom(data.shape, seed=3)[0] * float(data.max())).astype(np.float32)
    if name == "mprage":
        mask = np.asarray(ndimage.binary_fill_holes(foreground_mask(data, estimate_sigma(data))))
    else:
        mask = data > 0
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(Image(torch.from_numpy(data), image.affine, spatial_ndim=3, modality="mri"), path, dtype="float32")
    return path, mask


def run_cli(arguments: list[str], threads: int, src: Path | None = None) -> tuple[str, float]:
    """``medrestore ARGUMENTS`` in a new process with ``threads`` threads (from ``src`` when given): output, wall s."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if src is not None:
        environment["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "medrestore.cli.main", *arguments], check=True, capture_output=True, text=True, env=environment)
    return done.stdout + done.stderr, time.perf_counter() - started


def noisy_volume(name: str, clean: Path, sigma: float, seed: int) -> Path:
    """The noisy copy of ``clean`` (``medrestore degrade``), written once."""
    noisy = WORK / name / f"noisy-{sigma:g}-seed{seed}.nii.gz"
    if not noisy.exists():
        run_cli(["degrade", str(clean), "-o", str(noisy), "--kind", "rician", "--relative-sigma", str(sigma), "--seed", str(seed)], 1)
    return noisy


def scores(output: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR (peak = the clean maximum) and mean SSIM inside ``mask``."""
    peak = float(clean.max())
    similarity = ssim(output.astype(np.float64), clean.astype(np.float64), peak, spatial_ndim=3, mask=mask)
    return {"psnr": psnr(output.astype(np.float64), clean.astype(np.float64), peak, mask), "ssim": similarity}


def run_dipy(noisy: np.ndarray, threads: int, repeats: int = 1) -> tuple[np.ndarray, float]:
    """dipy's blockwise NLM on ``noisy`` with σ from our estimator; output and the seconds of the fastest of
    ``repeats`` calls."""
    from dipy.denoise.nlmeans import nlmeans

    sigma = estimate_sigma(noisy)
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        output = nlmeans(noisy, sigma, rician=True, method="blockwise", num_threads=threads)
        fastest = min(fastest, time.perf_counter() - started)
    return np.asarray(output, dtype=np.float32), fastest


def run_default(
    noisy: Path, output: Path, threads: int, repeats: int, src: Path | None, method: str = "auto"
) -> tuple[dict[str, object], np.ndarray]:
    """``medrestore denoise --method METHOD`` on ``noisy`` ``repeats`` times: the fastest run's wall s and what it ran."""
    best: dict[str, object] = {}
    for _ in range(repeats):
        text, wall = run_cli(["denoise", "--modality", "mri", str(noisy), "-o", str(output), "--method", method, "--sigma", "auto"], threads, src)
        used = re.search(r"with (\S+) \(([^)]+)\)", text)
        if not best or wall < float(best["seconds"]):  # type: ignore[arg-type]
            best = {"seconds": wall, "ran": f"{used.group(1)} ({used.group(2)})" if used else method}
    return best, read_image(output).data.numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brains", default=",".join(BRAINS), help="comma-separated names (module docstring)")
    parser.add_argument("--icbm152", type=Path, help="the ICBM152 2009a T1 NIfTI (brain 'icbm152')")
    parser.add_argument("--old-src", type=Path, help="the previous default's src folder; without it the 'old' rows are skipped")
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--methods", default="old,new", help="old, new (the two defaults) and any other --method values, comma-separated")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    chosen = [m.strip() for m in arguments.methods.split(",") if m.strip()]
    defaults, extra = [m for m in chosen if m in ("old", "new")], [m for m in chosen if m not in ("old", "new")]
    torch.set_num_threads(arguments.threads)
    keep_freed_memory()  # dipy runs in this process with the memory settings the new command uses
    no_numpy_hugepages()
    results: dict[str, dict[str, dict[str, object]]] = {}
    for name in (b.strip() for b in arguments.brains.split(",") if b.strip()):
        clean_path, mask = clean_volume(name, arguments.icbm152)
        clean = read_image(clean_path).data.numpy()
        noisy_path = noisy_volume(name, clean_path, arguments.sigma, arguments.seed)
        noisy = read_image(noisy_path).data.numpy().astype(np.float32)
        rows: dict[str, dict[str, object]] = {"noisy": scores(noisy, clean, mask)}
        output, seconds = run_dipy(noisy, arguments.threads, arguments.repeats)
        rows["dipy"] = {"seconds": seconds, "ran": "dipy nlmeans blockwise", **scores(output, clean, mask)}
        runs = [(label, src, "auto") for label, src in (("old", arguments.old_src), ("new", None)) if label in defaults]
        runs += [(method, None, method) for method in extra]
        for label, src, method in runs:
            if label == "old" and src is None:
                continue
            row, output = run_default(noisy_path, WORK / name / f"denoised-{label}.nii.gz", arguments.threads, arguments.repeats, src, method)
            rows[label] = {**row, **scores(output, clean, mask)}
        for row in rows.values():
            if "seconds" in row:
                row["ratio"] = float(row["seconds"]) / float(rows["dipy"]["seconds"])  # type: ignore[arg-type]
        results[name] = rows
        print(f"## {name}", flush=True)
        for label, row in rows.items():
            timing = f" | {row['seconds']:.1f} s | × {row['ratio']:.2f}" if "seconds" in row else ""
            print(f"| {label} | {row['psnr']:.2f} / {row['ssim']:.4f}{timing} | {row.get('ran', '')}", flush=True)
        if arguments.json:
            arguments.json.parent.mkdir(parents=True, exist_ok=True)
            payload = {"sigma": arguments.sigma, "seed": arguments.seed, "threads": arguments.threads, "repeats": arguments.repeats, "brains": results}
            arguments.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
