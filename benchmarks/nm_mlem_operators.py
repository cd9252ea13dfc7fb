"""ML-EM's binned blur and its adjoint: one-channel ``conv1d`` passes against matrix products of windows.

``solvers.mlem`` applies ``A = B_k ∘ H`` and ``Aᵀ`` one axis at a time. Each axis was a strided one-channel
``conv1d`` (forward) and ``conv_transpose1d`` followed by a scatter-add of the whole padded row (adjoint): both bound
by memory, not arithmetic. On fine grids of at least ``GEMM_MIN_ELEMENTS`` samples both are now matrix products of
overlapping windows with one banded matrix. This script times ``mlem_super_resolution`` (ML-EM iterations only, no
DCT step) with the one-channel passes everywhere (the threshold raised out of reach) and as it runs now,
alternated in one process, at the sizes ``superres`` meets: the 256 × 64 acquisition of the page's timing, a
whole-body 1024 × 256 acquisition and a 1024 × 1024 QC image, and checks that the outputs agree.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/nm_mlem_operators.py     # about 2 min
"""

from __future__ import annotations

import time
from unittest import mock

import torch

from medrestore.solvers import mlem

CASES = (("256 × 64 → 1024 × 256", (256, 64), 8.6, 40), ("1024 × 256 → 4096 × 1024", (1024, 256), 15.7, 20),
         ("1024 × 1024 → 4096 × 4096", (1024, 1024), 25.8, 5))  # fmt: skip
"""(label, coarse shape, response FWHM in fine pixels, ML-EM iterations timed)."""


def timed(counts: torch.Tensor, fwhm: float, iterations: int, previous: bool) -> tuple[float, torch.Tensor]:
    """Seconds of ``iterations`` ML-EM iterations, with the one-channel passes everywhere (``previous``) or as now."""
    with mock.patch.object(mlem, "GEMM_MIN_ELEMENTS", 1 << 62 if previous else mlem.GEMM_MIN_ELEMENTS):
        started = time.perf_counter()
        estimate, _ = mlem.mlem_super_resolution(counts, fwhm, 4, iterations)
        return time.perf_counter() - started, estimate


def main() -> None:
    print(f"threads: {torch.get_num_threads()}")
    print("| ML-EM on | iterations | previous passes (s) | matrix products (s) | speed-up | largest difference (of the maximum) |")
    print("|---|---|---|---|---|---|")
    for label, shape, fwhm, iterations in CASES:
        counts = torch.poisson(torch.full(shape, 200.0), generator=torch.Generator().manual_seed(0))
        runs: dict[bool, list[float]] = {True: [], False: []}
        outputs = {}
        for _ in range(3):
            for previous in (True, False):
                seconds, outputs[previous] = timed(counts, fwhm, iterations, previous)
                runs[previous].append(seconds)
        difference = float((outputs[True] - outputs[False]).abs().max() / outputs[True].abs().max())
        before, after = min(runs[True]), min(runs[False])
        print(f"| {label} (FWHM {fwhm} px) | {iterations} | {before:.3f} | {after:.3f} | ×{before / after:.2f} | {difference:.1e} |", flush=True)


if __name__ == "__main__":
    main()
