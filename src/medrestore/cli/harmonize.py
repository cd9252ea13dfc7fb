"""``medrestore harmonize``: map an MRI slice or volume to the other scanner's appearance."""

from __future__ import annotations

import argparse

from medrestore.cli.options import add_value_options
from medrestore.tasks.harmonize import harmonize_file

NAME = "harmonize"
HELP = "harmonise an MRI slice or volume between scanners a (1.5 T) and b (3 T) and record how in OUT.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``IN -o OUT --model NAME [--direction a2b|b2a]``."""
    parser.add_argument("input", metavar="IN", help="input slice or volume (NIfTI, DICOM, NumPy, TIFF)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, help="output image, format from extension (float32; DICOM: 16-bit + rescale slope)")
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="zoo harmoniser (e.g. cyclegan-sim), harmonizer.pt / last.pt file, or run folder of `medrestore train`",
    )
    parser.add_argument("--direction", choices=("a2b", "b2a"), default="b2a", help="a2b (1.5 T → 3 T) or b2a (default)")
    parser.add_argument(
        "--noise-level",
        type=float,
        metavar="R",
        help="then add white Rician noise up to R × the brain's robust maximum (the target scanner's level, see the model card)",
    )
    parser.add_argument(
        "--grid",
        type=int,
        metavar="N",
        help="harmonise each slice on an N×N grid (the model's training grid, e.g. 128) and apply the change at full resolution",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise (default 0, recorded)")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    record = harmonize_file(args.input, args.output, args.model, args.direction, args.noise_level, args.seed, args.grid, args.nonfinite)
    print(f"wrote {record['output']} and {record['output']}.json ({record['harmonization']['model']}, {args.direction})")
    return 0
