"""`medrestore info`: how each file is read — format, shape, voxel size, orientation, stored type, values.

    medrestore info scan.nrrd volume.mat series/            # images, a DICOM series folder
    medrestore info study/ 'exports/**/*.nii.gz'              # every input a batch would find there
    medrestore info meas.dat --json                         # raw k-space: coils, samples, sampling
    medrestore info data.npz --kind kspace
"""

from __future__ import annotations

import argparse
import json

from medrestore.tasks.info import describe_inputs, info_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="files, DICOM series folders, other folders or quoted glob patterns (every input found there)")  # fmt: skip
    parser.add_argument("--kind", choices=("auto", "image", "kspace"), default="auto",
                        help="read as an image or as raw k-space (auto: k-space for .dat, .h5, .mrd, .cfl)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON record per input (a list)")


def run(args: argparse.Namespace) -> int:
    records = describe_inputs(args.inputs, args.kind)
    if args.json:
        print(json.dumps(records, indent=2, allow_nan=False, default=str))
    else:
        print("".join(info_text(record) for record in records), end="")
    return 1 if any("error" in record for record in records) else 0
