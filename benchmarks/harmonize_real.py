"""Scanner harmonisation on the real scans we have: Colin27 (1.5 T) and a Philips 3 T MPRAGE.

Two real brains, one per field strength:

* **a, 1.5 T** — Colin27 (``../shared/data/brain-mri-ants/ch2.nii.gz``): one subject scanned 27
  times at 1.5 T and averaged (very low noise), skull-stripped, 1 mm, RAS+;
* **b, 3 T** — the Philips Ingenia Elition X MPRAGE (``../shared/data/mri-philips-3t/mprage``):
  one acquisition of another subject, sagittal 1 mm, skull on.

Preprocessing (what a user needs before unpaired training on two scanners' volumes; the same
steps as ``medrestore harmonize-data register MPRAGE ch2.nii.gz -o DIR``,
:func:`~medrestore.tasks.harmonize_prepare.prepare_volumes`):

1. *registration to a common space*: the MPRAGE is registered to Colin27 by dipy's affine
   registration (mutual information, centre of mass → translation → rigid → affine, 3 scales)
   and resampled on Colin27's grid;
2. *the same brain mask*: both are multiplied by Colin27's brain mask (its non-zero voxels,
   holes filled, dilated by 2 voxels), which skull-strips the MPRAGE;
3. *intensity normalisation*: each volume divided by its robust white-matter level
   (:func:`~medrestore.physics.scanner.robust_level`), the unit of the simulated pair.

Axial slices z = 40…111 (above them the skull stripping loses cortex: grey matter there falls
below its threshold) become 128 × 128 display slices
(:func:`~medrestore.data.harmonize.axial_slices`), dealt to three roles in blocks of 6 slices
with a 2-slice gap between blocks (neighbouring 1 mm slices are nearly the same image):
``cyclegan`` (unpaired training of the harmoniser), ``judge`` (training of the scanner
classifier) and ``test``. Files are named by position (``z080.nii.gz``) in both scanners' folders, so
``harmonize-eval`` scores PSNR/SSIM against the other subject's slice at the same position
after registration — an anatomy mismatch, not a fidelity measure (read it as such).

Then, from the command line (commands printed by ``prepare``)::

    python benchmarks/harmonize_real.py prepare --out results/harmonize-real
    medrestore harmonize-analyze results/harmonize-real/test/a results/harmonize-real/test/b -o results/harmonize-real/analysis
    medrestore train --config configs/harmonize-cyclegan-real.yaml
    medrestore harmonize-eval --train-a results/harmonize-real/judge/a --train-b results/harmonize-real/judge/b \\
        --test-a results/harmonize-real/test/a --test-b results/harmonize-real/test/b \\
        --model histogram-matching --model cyclegan-sim --model results/harmonize-cyclegan-real \\
        -o results/harmonize-real/eval
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from medrestore.core.image import Image
from medrestore.data.harmonize import axial_slices
from medrestore.io import read_image, write_image
from medrestore.tasks.harmonize_prepare import prepare_volumes, register_affine

ROOT = Path(__file__).resolve().parents[1]
COLIN27 = ROOT.parent / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"
MPRAGE = ROOT.parent / "shared" / "data" / "mri-philips-3t" / "mprage"
ROLES = ("cyclegan", "judge", "test")
AXIAL = (40, 111)


def roles_of(first: int, last: int, block: int = 6, gap: int = 2) -> dict[int, str]:
    """Axial index → role, cycling through :data:`ROLES` in blocks of ``block`` slices, ``gap`` left out between."""
    roles, position, turn = {}, first, 0
    while position <= last:
        for z in range(position, min(position + block, last + 1)):
            roles[z] = ROLES[turn % len(ROLES)]
        position, turn = position + block + gap, turn + 1
    return roles


def prepare(out: Path, size: int = 128, reuse: bool = False) -> dict[str, object]:
    """Register (or, with ``reuse``, read ``mprage_registered.nii.gz`` of an earlier run), mask, normalise, slice."""
    colin, mprage = read_image(COLIN27), read_image(MPRAGE)
    cached = out / "mprage_registered.nii.gz"
    registration: dict[str, object] = {"reused": str(cached)}
    if reuse and cached.is_file():
        moved = read_image(cached).data
    else:
        start = time.perf_counter()
        moved, affine = register_affine(mprage, colin)
        registration = {"seconds": round(time.perf_counter() - start, 1), "static_to_moving_affine": affine.round(6).tolist()}
        write_image(Image.from_array(moved, affine=colin.affine, modality="mri"), cached)
    registered, static, record = prepare_volumes(mprage, colin, sources=(MPRAGE, COLIN27), registered=moved)
    record["registration_run"] = registration
    volumes = {"a": static.data, "b": registered.data}
    write_image(registered, out / "mprage_prepared.nii.gz")
    roles = roles_of(*AXIAL)
    counts = {role: 0 for role in ROLES}
    for z, role in roles.items():
        for scanner, volume in volumes.items():
            slice_ = axial_slices(volume, size, z, z)[0]
            write_image(Image.from_array(slice_.numpy(), spacing=(1.0, 1.0), modality="mri"), out / role / scanner / f"z{z:03d}.nii.gz")
        counts[role] += 1
    record = {"a": str(COLIN27), "b": str(MPRAGE), **record, "axial": AXIAL, "slices_per_role": counts, "size": size,
              "threads": torch.get_num_threads()}
    (out / "manifest.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("prepare",))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "harmonize-real")
    parser.add_argument("--reuse-registration", action="store_true",
                        help="read OUT/mprage_registered.nii.gz (the MPRAGE on Colin27's grid) instead of registering again")
    args = parser.parse_args()
    torch.set_num_threads(1)
    record = prepare(args.out, reuse=args.reuse_registration)
    print(json.dumps({key: value for key, value in record.items() if key != "registration_run"}, indent=2))


if __name__ == "__main__":
    main()
