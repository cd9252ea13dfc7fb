"""``medrestore simulate-radial``: simulate a multi-coil radial acquisition of a real image, with gradient delays.

Examples::

    medrestore simulate-radial r16slice.jpg -o radial.npz --spokes 64 --golden --delay 0.7 -0.4 --coils 8 --seed 0
    medrestore simulate-radial slice.nii.gz -o radial.h5 --spokes 128 --noise 0
    medrestore simulate-radial volume.nii.gz -o stars.npz --spokes 96 --golden --delay 0.5 -0.3

A 3-D volume gives stack-of-stars k-space ``(coils, partitions, spokes, readout)``: each slice
along the volume's last axis is acquired radially, the partition axis is Cartesian ``kz``.

The output (``.npz`` keeps every field; ISMRMRD ``.h5`` stores one acquisition per spoke with
its trajectory) holds the *nominal* trajectory, as a scanner records it; the delays and noise
are recorded in its metadata. Delays are in readout samples along x and y (optionally a third,
cross term xy). Readouts are 2× oversampled unless ``--oversampling`` says otherwise. Complex
Gaussian noise is added at the level of a real 16-channel head-coil scan (standard deviation
0.005 of the largest k-space magnitude) unless ``--noise`` says otherwise (``--noise 0``:
noise-free).
"""

from __future__ import annotations

import argparse
import json

from medrestore.cli.options import add_value_options
from medrestore.tasks.radial import DEFAULT_RADIAL_NOISE, RadialSimulation, delay_from_values, simulate_radial_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT -o OUTPUT --spokes N [--golden] [--half-spokes] --delay DX DY [DXY] --coils C --noise S --seed S``."""
    parser.add_argument("input", metavar="INPUT", help="a real 2-D image or 3-D volume (NIfTI, DICOM, PNG/JPEG, TIFF, NumPy)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="radial k-space: .npz or ISMRMRD .h5")
    parser.add_argument("--spokes", type=int, default=64, metavar="N", help="number of spokes (default 64)")
    parser.add_argument("--golden", action="store_true", help="golden-angle ordering (default uniform)")
    parser.add_argument("--half-spokes", action="store_true", help="centre-out spokes instead of full spokes")
    parser.add_argument("--oversampling", type=float, default=2.0, metavar="X", help="readout samples per image pixel (default 2)")
    parser.add_argument("--delay", type=float, nargs="+", default=[0.0, 0.0], metavar="D",
                        help="gradient delays in samples: DX DY [DXY] (default 0 0)")
    parser.add_argument("--coils", type=int, default=8, metavar="N", help="simulated birdcage coils (default 8)")
    parser.add_argument("--noise", type=float, metavar="S", default=DEFAULT_RADIAL_NOISE,
                        help=f"complex noise std relative to max|k| (default {DEFAULT_RADIAL_NOISE:g}, a real scan's level; 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    options = RadialSimulation(args.spokes, args.golden, args.half_spokes, args.oversampling, delay_from_values(args.delay),
                               args.coils, args.noise, args.seed)
    record = simulate_radial_file(args.input, args.output, options, args.nonfinite)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        ordering = "golden-angle" if args.golden else "uniform"
        print(f"{args.spokes} {ordering} spokes, {args.coils} coils, delay {record['delay']}, noise {args.noise:g}: {record['output']}")
    return 0
