"""Memory and time of ``superres --method dct-mlem-ensemble`` on a whole-body-sized image, tiled or in one pass.

The input: the real line-source acquisition ``../shared/data/nm-nmqc/Spatial_Resol_X.dcm`` (512², 1.03 mm)
repeated 8 × 2 into a 4096 × 1024 activity, acquired by our camera model ×4 (``degrade --kind
gamma-camera`` defaults) into a 1024 × 256 count image, and super-resolved back to 4096 × 1024 by the
ensemble with its networks applied (the image lies inside the networks' guard). Each variant runs in its
own process: the networks on tiles of :data:`~medrestore.tasks.superres.NETWORK_TILE` (the shipped way)
and in one pass (the tile raised above the image), alternated ``--repeats`` times; peak resident memory
of the process (``ru_maxrss``), the call's seconds, and the largest difference between the two outputs
relative to the image's peak.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/nm_tiling.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "nm-nmqc" / "Spatial_Resol_X.dcm"


def _child(coarse: str, output: str, whole: bool) -> None:
    """Run one super-resolution in this process and print its seconds and peak memory as JSON."""
    import torch

    torch.set_num_threads(1)
    import medrestore
    import medrestore.tasks.superres as superres

    if whole:
        superres.NETWORK_TILE = (1 << 20, 1 << 20)  # one pass: the clipped window is the image
    _, record = medrestore.superres(coarse, 4, "dct-mlem-ensemble", device="cpu", output=output)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": record["seconds"], "peak_mib": peak_mib, "guard": record.get("refinement_guard")}))


def _make_input(folder: Path) -> Path:
    import torch

    import medrestore
    from medrestore.io import read_image

    image = read_image(SOURCE)
    activity = np.tile(np.clip(image.data.numpy().astype(np.float32), 0, None), (8, 2))
    big = medrestore.Image(torch.from_numpy(activity), image.affine, 2, "nm")
    coarse, _ = medrestore.degrade(big, "gamma-camera", seed=0, output=folder / "coarse.nii.gz")
    return Path(coarse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("COARSE", "OUTPUT", "WHOLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2] == "1")
        return
    from medrestore.io import read_image

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        coarse = _make_input(work)
        runs: dict[str, list[dict[str, float]]] = {"tiled": [], "whole": []}
        for _ in range(args.repeats):
            for name in ("tiled", "whole"):
                out = work / f"{name}.nii.gz"
                completed = subprocess.run(
                    [sys.executable, __file__, "--child", str(coarse), str(out), "1" if name == "whole" else "0"],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                runs[name].append(json.loads(completed.stdout.strip().splitlines()[-1]))
        tiled, whole = (read_image(work / f"{name}.nii.gz").data.numpy() for name in ("tiled", "whole"))
        difference = float(np.abs(tiled - whole).max() / whole.max())
    summary = {
        name: {"seconds_best": min(r["seconds"] for r in rows), "peak_mib": max(r["peak_mib"] for r in rows), "guard": rows[0]["guard"]}
        for name, rows in runs.items()
    }
    summary["max_difference_relative_to_peak"] = difference
    summary["shape"] = list(tiled.shape)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, **summary}, indent=2))


if __name__ == "__main__":
    main()
