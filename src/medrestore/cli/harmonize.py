"""``medrestore harmonize``: map an MRI slice or volume to the other scanner's appearance."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from medrestore import api
from medrestore.cli.batch import add_io_arguments, default_image_ext, run_io_command
from medrestore.cli.options import add_value_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``IN [IN ...] -o OUT --model NAME [--direction a2b|b2a]``."""
    add_io_arguments(parser, "input slice or volume (NIfTI, DICOM, NumPy, TIFF)", "output image, format from extension (float32; DICOM: 16-bit + rescale slope)")
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="zoo harmoniser (cyclegan-sim, or coupled-dictionary-sim for both directions), harmonizer.pt / last.pt file, or run folder of `medrestore train`. "
        "Required, with no default: the shipped models were trained on a simulated scanner pair, and no harmoniser has "
        "been validated on real scans of two scanners (the one real pair, Colin27 at 1.5 T and one 3 T MPRAGE, is two "
        "subjects, too few to judge one; see benchmarks/harmonize.md), so choose the model for your scanners knowingly",
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
    def process(input_path: Path | str, output_path: Path | str) -> dict[str, Any]:
        return api.harmonize(input_path, args.model, args.direction, args.noise_level, args.seed, args.grid, args.nonfinite,
                             output=output_path).record

    def single(input_path: str, output_path: str) -> int:
        record = process(input_path, output_path)
        print(f"wrote {record['output']} and {record['output']}.json ({record['harmonization']['model']}, {args.direction})")
        return 0

    return run_io_command(args, "image", single, process, default_image_ext)
