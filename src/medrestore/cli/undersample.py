"""``medrestore undersample``: retrospectively undersample raw k-space with a recorded mask.

Examples::

    medrestore undersample 2024-02-06-164128.dat -o brain-4x.npz --accel 4 --mask random --seed 0
    medrestore undersample knee.h5 -o knee-8x.npz --accel 8 --mask equispaced --center-fraction 0.04
    medrestore undersample brain.npz -o brain-pd.cfl --accel 8 --mask poisson

Masks: ``random`` and ``equispaced`` phase-encode lines exactly as fastMRI draws them
(centre fraction, acceleration, seed); ``poisson`` a 2-D variable-density Poisson-disc
pattern with a fully sampled centre of ``center-fraction`` per axis. The output (``.npz`` keeps
every field, BART ``.cfl`` or ISMRMRD ``.h5``) records the mask and its parameters.
"""

from __future__ import annotations

import argparse
import json

from medrestore.core.errors import InputError
from medrestore.tasks.recon import MASK_KINDS, MaskSpec, undersample_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT -o OUTPUT --accel R --mask KIND --center-fraction F --seed S [--json]``."""
    parser.add_argument("input", metavar="INPUT", help="raw k-space: twix .dat, fastMRI/ISMRMRD .h5, BART .cfl, .npy/.npz")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="undersampled k-space: .npz, .cfl or .h5")
    parser.add_argument("--accel", type=float, default=4.0, metavar="R", help="acceleration factor R: acquired lines = all / R (default 4)")
    parser.add_argument("--mask", choices=MASK_KINDS, default="random", help="sampling pattern (default random)")
    parser.add_argument("--center-fraction", type=float, default=0.08, metavar="F", help="fraction of the phase-encoding lines fully sampled at the centre (default 0.08)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask generator (default 0)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        spec = MaskSpec(args.mask, args.accel, args.center_fraction, args.seed)
    except ValueError as error:
        raise InputError(None, f"invalid mask: {error}") from None
    record = undersample_file(args.input, args.output, spec)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(
            f"{record['kind']} mask, R = {record['acceleration']:g} (reached {record['acceleration_reached']:.2f}), "
            f"centre {record['center_fraction']:g}, seed {record['seed']}: {record['output']}"
        )
    return 0
