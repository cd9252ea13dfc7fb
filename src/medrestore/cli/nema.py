"""`medrestore nema`: NEMA NU 1 measures of a planar gamma-camera QC acquisition.

Examples::

    medrestore nema lines Spatial_Resol_X.dcm --lines 2       # FWHM / FWTM of two line sources (mm)
    medrestore nema flood UNIFORMIDAD_1.dcm --json            # integral / differential uniformity (%)
    medrestore nema bars bars.dcm --widths 2.0 2.5 3.0 3.5    # each quadrant of a four-quadrant bar image

The line sources' mean FWHM is the camera's system resolution at the phantom's distance: give it to
``medrestore superres --fwhm`` for acquisitions made the same way.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from medrestore import api
from medrestore.cli.options import add_value_options
from medrestore.core.errors import ConfigError
from medrestore.tasks.nema import ALONG, MEASURES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``MEASURE INPUT``, ``--lines``, ``--along``, ``--strip``, ``--widths``, ``--json``."""
    add = parser.add_argument
    add("measure", choices=MEASURES,
        help="lines: line-source FWHM/FWTM; flood: integral/differential uniformity; bars: a four-quadrant bar image")
    add("input", metavar="INPUT", help="planar QC acquisition in counts (DICOM NM, NIfTI, ...; its pixel size is used)")
    add("--lines", type=int, default=1, metavar="N", help="lines: number of parallel line sources (default 1)")
    add("--along", choices=ALONG, default="auto",
        help="lines: the direction the lines run in as displayed (auto: the one whose profile across them is the sharper)")
    add("--strip", type=float, default=30.0, metavar="MM", help="lines: length of the strips profiles are summed over (default 30)")
    add("--widths", type=float, nargs=4, metavar="MM",
        help="bars: the phantom's four bar widths (each quadrant is then measured at its own bar frequency)")
    add("--json", action="store_true", help="print the record as JSON instead of a table")
    add_value_options(parser)


def _frame_lines(record: dict[str, Any]) -> list[str]:
    """The table of one frame's ``lines`` or ``flood`` measures."""
    if "lines" in record:
        lines = [f"lines       {record['lines_run']}, profiles over {record['strips']} strips of {record['strip_mm']:g} mm", ""]
        lines.append(f"{'line':<6}{'position (px)':>14}{'FWHM (mm)':>11}{'FWTM (mm)':>11}")
        for index, line in enumerate(record["lines"], start=1):
            lines.append(f"{index:<6}{line['position_px']:>14.1f}{line['fwhm_mm']:>11.2f}{line['fwtm_mm']:>11.2f}")
        lines.append(f"{'mean':<6}{'':>14}{record['fwhm_mm']:>11.2f}{record['fwtm_mm']:>11.2f}")
        return lines
    if "quadrants" in record:
        lines = ["", f"{'quadrant':<14}{'bars':<12}{'width (mm)':>11}{'contrast':>10}{'modulation':>12}{'noise':>8}  resolved"]
        for bars in record["quadrants"]:
            lines.append(
                f"{bars['quadrant']:<14}{bars['bars_run']:<12}{bars['bar_width_mm']:>11.2f}{bars['contrast']:>10.3f}"
                f"{bars['modulation']:>12.3f}{bars['noise_modulation']:>8.3f}  {'yes' if bars['resolved'] else 'no'}"
            )
        return lines
    uniformity = record["uniformity"]
    lines = ["", f"binned to {uniformity['pixel_mm']:.3g}-mm pixels", f"{'uniformity (%)':<16}{'integral':>10}{'differential':>14}"]
    for field in ("ufov", "cfov"):
        lines.append(f"{field.upper():<16}{uniformity[f'integral_{field}']:>10.2f}{uniformity[f'differential_{field}']:>14.2f}")
    return lines


def format_record(record: dict[str, Any]) -> str:
    """The text report of a ``lines`` or ``flood`` record (each frame's table in turn when there are several)."""
    lines = [f"input       {record['input']}", f"pixel size  {record['pixel_size_mm']:.4g} mm"]
    for frame in record.get("frames", [record]):
        if "frame" in frame:
            lines += ["", f"frame {frame['frame']} of {len(record['frames'])}"]
        lines += _frame_lines(frame)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.widths is not None and args.measure != "bars":
        raise ConfigError(f"--widths applies to nema bars, not {args.measure}")
    _, record = api.nema(args.input, args.measure, args.lines, args.along, args.strip, args.nonfinite, args.widths)
    print(json.dumps(record, indent=2) if args.json else format_record(record))
    return 0
