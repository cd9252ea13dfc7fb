"""`medrestore evaluate`: metrics of a prediction against a reference (files or folders).

Examples::

    medrestore evaluate --pred denoised.nii.gz --ref clean.nii.gz
    medrestore evaluate --pred recon.npy --ref target.npy --convention fastmri --json
    medrestore evaluate --pred results/oct/ --ref references/oct/ --convention oct

With folders, every file of ``--pred`` is scored against the file of the same name in
``--ref``; the table lists each file and the mean.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from medrestore import api
from medrestore.cli.options import add_reference_option, add_value_options
from medrestore.tasks.evaluate import CONVENTION_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pred``, ``--reference``, ``--mask``, ``--convention``, ``--json``."""
    parser.add_argument("--pred", required=True, help="restored image file, or a folder of them")
    add_reference_option(
        parser,
        "reference image file, or a folder with files of the same names; a nuclear-medicine reference (DICOM NM, PT) "
        "is scored as counts: its negative values are set to 0, with a warning",
        required=True,
    )
    parser.add_argument(
        "--mask", default=None, help="optional mask file (nonzero = inside), or a folder matched by name"
    )
    parser.add_argument(
        "--convention",
        default="default",
        choices=CONVENTION_NAMES,
        help="how metrics are computed: default (data range of the reference, Gaussian SSIM), "
        "fastmri (fastMRI's volume metrics), oct (Duke/Bioptigen OCT peers: 0-255, even crop)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    add_value_options(parser)


def _format_value(value: float) -> str:
    return f"{value:.6g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned value columns, two spaces between columns."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_result(result: Mapping[str, Any]) -> str:
    """The text report: the inputs, then a (metric, value) table or a per-file table with the mean."""
    lines = [f"prediction  {result['pred']}", f"reference   {result['ref']}"]
    if result.get("mask") is not None:
        lines.append(f"mask        {result['mask']}")
    lines.extend([f"convention  {result['convention']}", ""])
    metrics: Mapping[str, float] = result["metrics"]
    if "files" not in result:
        lines.extend(_table(["metric", "value"], [[name, _format_value(value)] for name, value in metrics.items()]))
        return "\n".join(lines)
    names = list(metrics)
    rows = [[row["name"], *(_format_value(row["metrics"][name]) for name in names)] for row in result["files"]]
    rows.append([f"mean ({len(result['files'])} files)", *(_format_value(metrics[name]) for name in names)])
    lines.extend(_table(["file", *names], rows))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    metrics, record = api.evaluate(args.pred, args.reference, args.convention, args.mask, args.nonfinite)
    result = {**record, "metrics": metrics}
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0
