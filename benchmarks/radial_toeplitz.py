"""The radial Gram operator ``AᴴA``: Toeplitz embedding against the NUFFT pair, same operator, same run.

For golden-angle acquisitions (2× readout oversampling, Pipe–Menon density weights, random unit-norm
coil maps) this times ``ToeplitzSense.normal`` against ``adjoint(forward(x))`` of the same operator
(mean of ``--repeats`` calls after one warm-up) and reports their relative difference and the time
to build the kernel.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/radial_toeplitz.py --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from medrestore.physics.mri.density import pipe_menon_density
from medrestore.physics.mri.radial import ToeplitzSense
from medrestore.physics.mri.trajectory import RadialSpec, radial_trajectory

CASES = ((128, 32, 8), (128, 64, 8), (128, 96, 4), (256, 64, 8))
"""``(matrix, spokes, coils)``."""


def mean_seconds(function: Callable[[], torch.Tensor], repeats: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| matrix | spokes | coils | NUFFT pair ms | Toeplitz ms | speed-up | relative difference | kernel ms |")
    print("|---|---|---|---|---|---|---|---|")
    for matrix, spokes, coils in CASES:
        generator = torch.Generator().manual_seed(0)
        trajectory = radial_trajectory(RadialSpec(matrix, spokes, 2.0, golden=True))
        weights = pipe_menon_density(trajectory, (matrix, matrix), 20)
        maps = torch.randn(coils, matrix, matrix, generator=generator, dtype=torch.complex64)
        maps = maps / maps.abs().square().sum(0).sqrt()
        image = torch.randn(matrix, matrix, generator=generator, dtype=torch.complex64)
        start = time.perf_counter()
        operator = ToeplitzSense(maps, trajectory, weights)
        kernel_seconds = time.perf_counter() - start  # the NUFFT plans and the kernel
        pair = operator.adjoint(operator.forward(image))
        difference = float((operator.normal(image) - pair).norm() / pair.norm())
        nufft = mean_seconds(lambda: operator.adjoint(operator.forward(image)), args.repeats)
        toeplitz = mean_seconds(lambda: operator.normal(image), args.repeats)
        print(f"| {matrix}² | {spokes} | {coils} | {nufft * 1e3:.1f} | {toeplitz * 1e3:.1f} | {nufft / toeplitz:.2f}× | "
              f"{difference:.1e} | {kernel_seconds * 1e3:.0f} |")


if __name__ == "__main__":
    main()
