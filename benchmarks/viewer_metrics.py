"""Whole-volume metrics of the web viewer: SSIM against skimage's, and the viewer's metric cache, same run.

    OMP_NUM_THREADS=1 python benchmarks/viewer_metrics.py [--volume ../shared/data/brain-mri-ants/ch2.nii.gz]
        [--repeats 3] [--json results/viewer-metrics.json]

On the Colin27 brain (181×217×181) with Gaussian noise of 5 % of its maximum, one CPU thread:

* ``medrestore.metrics.ssim`` (Gaussian window σ = 1.5, population covariance: the ``default`` convention), with the
  banded matrix product it uses now and with one pass per tap (``BANDED_MAX_LENGTH = 0``, the losses' filter), against
  ``skimage.metrics.structural_similarity`` with the same settings — the baseline of the ratios;
* the viewer's ``/metrics`` for one image (:meth:`~medrestore.tasks.viewer.Study.metrics`: read both files, PSNR,
  SSIM, NMSE, MAE), first request and a repeated one (kept per image, reference, convention and mask).

Reports medians over ``--repeats`` (the three SSIMs interleaved, one of each per round) and the ratio of each to
skimage's median; the machine may be shared, so only the ratios carry over.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from skimage.metrics import structural_similarity

from medrestore.tasks.viewer import Viewer

SSIM_MODULE = importlib.import_module("medrestore.metrics.ssim")  # the package exports a function of that name


def median_seconds(action: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/brain-mri-ants/ch2.nii.gz")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    image = nib.load(args.volume)
    reference = np.asarray(image.dataobj, dtype=np.float64)
    noisy = reference + np.random.default_rng(0).normal(0.0, 0.05 * reference.max(), reference.shape)
    data_range = float(reference.max() - reference.min())

    def banded() -> float:
        return SSIM_MODULE.ssim(noisy, reference, data_range, spatial_ndim=3)

    def taps() -> float:
        longest = SSIM_MODULE.BANDED_MAX_LENGTH
        SSIM_MODULE.BANDED_MAX_LENGTH = 0
        try:
            return SSIM_MODULE.ssim(noisy, reference, data_range, spatial_ndim=3)
        finally:
            SSIM_MODULE.BANDED_MAX_LENGTH = longest

    actions: dict[str, Callable[[], object]] = {
        "skimage structural_similarity": lambda: structural_similarity(
            reference, noisy, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        ),
        "medrestore ssim (banded product)": banded,
        "medrestore ssim (tap sums: BANDED_MAX_LENGTH = 0)": taps,
    }
    times: dict[str, list[float]] = {name: [] for name in actions}
    values: dict[str, object] = {}
    for _ in range(args.repeats):  # interleaved, so that a change of the machine's load hits every row alike
        for name, action in actions.items():
            seconds, values[name] = median_seconds(action, 1)
            times[name].append(seconds)
    rows: dict[str, tuple[float, object]] = {name: (statistics.median(times[name]), values[name]) for name in actions}

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nib.save(nib.Nifti1Image(noisy.astype(np.float32), image.affine), root / "noisy.nii.gz")
        nib.save(nib.Nifti1Image(reference.astype(np.float32), image.affine), root / "clean.nii.gz")
        study = Viewer(root, root / "work").open("noisy.nii.gz", "clean.nii.gz")
        rows["viewer /metrics, first request"] = median_seconds(lambda: study.metrics("input"), 1)
        rows["viewer /metrics, repeated"] = median_seconds(lambda: study.metrics("input"), args.repeats)

    baseline = rows["skimage structural_similarity"][0]
    report = {
        name: {"seconds": round(seconds, 3), "ratio": round(seconds / baseline, 3), "value": value if isinstance(value, dict) else round(float(value), 12)}  # type: ignore[arg-type]
        for name, (seconds, value) in rows.items()
    }  # fmt: skip
    print("| measurement | seconds | × skimage | value |\n|---|---|---|---|")
    for name, row in report.items():
        value = row["value"]["ssim"] if isinstance(row["value"], dict) else row["value"]
        print(f"| {name} | {row['seconds']:.3f} | {row['ratio']:.3f} | SSIM {value:.12f} |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
