"""Block matching of the collaborative Wiener stage: squared differences a few planes at a time against whole volumes.

    OMP_NUM_THREADS=2 python benchmarks/wiener_block_matching.py NOISY.nii.gz --threads 2 --repeats 5 \
        [--json results/wiener-block-matching.json]

On the tissue box of ``NOISY`` (a 3-D magnitude volume; the box, σ and the settings as ``medrestore denoise`` uses
them for ``unet3d-nlm``: 4³ blocks every 3 voxels, 7³ displacements in batches of 8), with plain NLM of the box as
the pilot, times :func:`~medrestore.solvers.collaborative_wiener.block_distances` over every displacement:

* ``planes``: the default (:data:`~medrestore.solvers.collaborative_wiener.DISTANCE_CACHE_BYTES` of squared
  differences at a time);
* ``whole``: the whole volume's squared differences of a batch at once (``cache_bytes`` larger than the volume), as
  the filter formed them before.

The two run alternated in one process, ``--repeats`` times each; reported: each one's seconds (fastest and median),
the ratio of the medians, and whether the distances are the same to the bit. Then the whole
:func:`~medrestore.solvers.collaborative_wiener.collaborative_wiener` once with the default, for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from medrestore.core.memory import keep_freed_memory, no_numpy_hugepages
from medrestore.io import read_image
from medrestore.models.guided_wiener import DEFAULT_SETTINGS, plain_nlm, tissue_box
from medrestore.physics.noise_estimation import estimate_sigma
from medrestore.solvers import collaborative_wiener as cw


def all_distances(pilot: torch.Tensor, core: torch.Tensor, rows: list[list[int]], cache_bytes: int) -> list[torch.Tensor]:
    """:func:`block_distances` of every batch of 8 displacements, as the filter asks for them."""
    settings = DEFAULT_SETTINGS
    return [
        cw.block_distances(pilot, core, rows[start : start + 8], settings.wiener_block, settings.wiener_step, cw.WIENER_SEARCH_RADIUS, cache_bytes)
        for start in range(0, len(rows), 8)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("noisy", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args(argv)
    no_numpy_hugepages()
    keep_freed_memory()
    torch.set_num_threads(arguments.threads)
    volume = read_image(arguments.noisy).data.to(torch.float32)
    sigma = estimate_sigma(volume)
    part = volume[tissue_box(volume, sigma)].contiguous()
    pilot = plain_nlm(part, sigma)
    block, step, radius = DEFAULT_SETTINGS.wiener_block, DEFAULT_SETTINGS.wiener_step, cw.WIENER_SEARCH_RADIUS
    padded, core, _ = cw.padded_to_grid(pilot, block, step, radius)
    rows = cw.displacements(radius).tolist()
    variants = {"planes": cw.DISTANCE_CACHE_BYTES, "whole": 1 << 62}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    results: dict[str, list[torch.Tensor]] = {}
    for _ in range(arguments.repeats):
        for name, cache_bytes in variants.items():
            started = time.perf_counter()
            results[name] = all_distances(padded, core, rows, cache_bytes)
            seconds[name].append(time.perf_counter() - started)
    same = all(torch.equal(a, b) for a, b in zip(results["planes"], results["whole"]))
    started = time.perf_counter()
    cw.collaborative_wiener(part, pilot, sigma, **DEFAULT_SETTINGS.wiener_options())  # type: ignore[arg-type]
    wiener = time.perf_counter() - started
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    report = {
        "input": str(arguments.noisy), "box": list(part.shape), "threads": arguments.threads, "repeats": arguments.repeats,
        "seconds": seconds, "median": medians, "whole_over_planes": medians["whole"] / medians["planes"],
        "identical": same, "collaborative_wiener_seconds": wiener,
        "kept_blocks": int((F.max_pool3d(core[None, None], block, stride=step) >= sigma).sum()),
    }  # fmt: skip
    for name, values in seconds.items():
        print(f"{name}: fastest {min(values):.2f} s, median {medians[name]:.2f} s ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"whole / planes (medians): {report['whole_over_planes']:.2f}; identical: {same}; whole Wiener stage {wiener:.2f} s")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
