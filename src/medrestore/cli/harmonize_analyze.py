"""``medrestore harmonize-analyze``: where two scanners' images of the same anatomy differ (maps, figures, summary)."""

from __future__ import annotations

import argparse
import sys

from medrestore.cli.batch import JobProgress
from medrestore.core.progress import reporting
from medrestore.tasks.harmonize_analysis import analyze_scanner_folders


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``A_SCANS B_SCANS -o OUT_DIR [--weight L]``."""
    parser.add_argument("scans_a", metavar="A_SCANS", help="scanner a: a folder of slices/volumes or one volume")
    parser.add_argument(
        "scans_b",
        metavar="B_SCANS",
        help="scanner b: the same anatomy on the same grid (slices matched by file name, else by order)",
    )
    parser.add_argument("-o", "--output", metavar="OUT_DIR", required=True, help="folder for the NIfTI maps, PNG figures and summary.json")
    parser.add_argument("--weight", type=float, metavar="L", help="robust-PCA sparsity weight λ (default 1/√(pixels per slice))")


def run(args: argparse.Namespace) -> int:
    with reporting(JobProgress(sys.stderr)):
        summary = analyze_scanner_folders(args.scans_a, args.scans_b, args.output, args.weight)
    brain = summary["sparse_energy_by_region"]["brain"]["energy_fraction"]
    print(
        f"wrote {args.output}: {len(summary['maps'])} maps, {len(summary['figures'])} figures, summary.json "
        f"({summary['slices']} slice pairs, rank {summary['low_rank_rank']}, {brain:.0%} of the sparse energy in the brain)"
    )
    return 0
