"""``medrestore estimate-delay``: gradient delays of radial k-space, from the data alone, checked.

Examples::

    medrestore estimate-delay radial.npz
    medrestore estimate-delay radial.h5 --method ac-adaptive --json
    medrestore estimate-delay k.cfl --trajectory t.cfl

Methods: ``auto`` (default: RING checked by AC-adaptive), ``ring`` (intersections of spoke
pairs, Rosenzweig et al. 2019) and ``ac-adaptive`` (antiparallel spoke pairs, Block & Uecker
2011). Every estimate comes with its fit quality; when it is poor, or when RING and
AC-adaptive disagree, the delay that ``recon`` would apply falls back to the other estimator
or to no correction, and a warning says why. Delays are printed in readout samples (x, y and
the cross term xy); for data made by ``simulate-radial`` the simulated delay and the RMS errors
are printed too. BART k-space comes with its trajectory (``--trajectory``) and its delays are
reported in BART's axes: the numbers ``bart traj -q DX:DY:DXY`` takes and ``bart estdelay``
prints.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from medrestore.tasks.radial import DELAY_CORRECTIONS, estimate_delay_file
from medrestore.tasks.recon import set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT [--trajectory TRAJ] [--method auto|ring|ac-adaptive] [--threads N] [--json]``."""
    parser.add_argument("input", metavar="INPUT", help="radial k-space: .npz, ISMRMRD .h5 or BART .cfl (with --trajectory)")
    parser.add_argument("--trajectory", default=None, metavar="TRAJ", help="BART trajectory .cfl of BART k-space")
    parser.add_argument("--method", choices=[name for name in DELAY_CORRECTIONS if name != "none"], default="auto",
                        help="estimator (default auto: RING checked by AC-adaptive)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _line(entry: dict[str, Any]) -> str:
    x, y, xy = entry["delay"]
    uncertainty = "inf" if entry["uncertainty"] is None else f"{entry['uncertainty']:.2g}"
    error = f", error {entry['rms_error']:.4f}" if "rms_error" in entry else ""
    return (f"  {entry['method']}: x {x:.4f}, y {y:.4f}, xy {xy:.4f} ({entry['model']} model, {entry['pairs']} pairs, "
            f"standard error {uncertainty}, mismatch {entry['mismatch']:.2g}{error})")


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        set_threads(args.threads)
    report = estimate_delay_file(args.input, args.method, args.trajectory)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    decision = report["decision"]
    if report["applied"] is None:
        print(f"no correction ({report['delay_axes']} axes, {report['seconds']:.2f} s): {decision['reason']}")
    else:
        print(f"{report['applied']}: x {report['delay_x']:.4f}, y {report['delay_y']:.4f}, xy {report['delay_xy']:.4f} samples "
              f"({report['delay_axes']} axes, {report['seconds']:.2f} s): {decision['reason']}")
    for entry in decision["estimates"]:
        print(_line(entry))
    for failure in decision["failures"]:
        print(f"  {failure['method']}: {failure['reason']}")
    if "simulated_delay" in report:
        print(f"  simulated {report['simulated_delay']}, RMS error of the applied delay {report['rms_error']:.4f} samples")
    return 0
