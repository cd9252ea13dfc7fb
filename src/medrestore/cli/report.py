"""``medrestore report``: an HTML report on restored images the user already has.

Examples::

    medrestore report denoised.nii.gz -o report.html
    medrestore report results/denoised/ --reference clean/ --input noisy/ -o report.html
    medrestore report 'out/*.nii.gz' --reference a.nii.gz b.nii.gz --convention fastmri -o report.html

References and inputs: one folder matched by name, or one file per output in the same order.
"""

from __future__ import annotations

import argparse

from medrestore.cli.options import add_reference_option, add_value_options
from medrestore.tasks.evaluate import CONVENTION_NAMES
from medrestore.tasks.report import report_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``OUTPUT [OUTPUT ...] -o REPORT [--reference REF ...] [--input IN ...] [--convention C] [--title T]``."""
    parser.add_argument("images", nargs="+", metavar="OUTPUT",
                        help="restored images to report on: files, folders or quoted glob patterns ('out/**/*.nii.gz')")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, metavar="REPORT", help="the HTML file to write (figures embedded)")
    add_reference_option(parser, "reference images: one folder holding files of the outputs' names, or one file per output "
                         "in order; adds PSNR/SSIM and an output − reference map", many=True)  # fmt: skip
    parser.add_argument("--input", nargs="+", default=None, metavar="IN",
                        help="the images the outputs were made from, matched like --reference; shown beside each output")  # fmt: skip
    parser.add_argument("--convention", default="default", choices=CONVENTION_NAMES,
                        help="how metrics are computed, as by medrestore evaluate (default: default)")  # fmt: skip
    parser.add_argument("--title", default="medrestore report", help="heading of the report")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    result = report_files(args.images, args.output, args.reference or (), args.input or (), args.convention, args.nonfinite, args.title)
    for entry in result["files"]:
        metrics = entry["metrics"]
        scores = "" if metrics is None else f"  PSNR {metrics['psnr']:.2f} dB  SSIM {metrics['ssim']:.4f}"
        print(f"{entry['file']}{scores}")
    print(f"report: {result['report']}")
    return 0
