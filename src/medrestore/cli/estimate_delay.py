"""``medrestore estimate-delay``: gradient delays of radial k-space, from the data alone.

Examples::

    medrestore estimate-delay radial.npz
    medrestore estimate-delay radial.h5 --method ac-adaptive --json
    medrestore estimate-delay k.cfl --trajectory t.cfl

Methods: ``ring`` (default; intersections of spoke pairs, Rosenzweig et al. 2019) and
``ac-adaptive`` (antiparallel spoke pairs, Block & Uecker 2011). Delays are printed in readout
samples (x, y and the cross term xy); for data made by ``simulate-radial`` the simulated delay
and the RMS error are printed too. BART k-space comes with its trajectory (``--trajectory``) and
its delays are reported in BART's axes: the numbers ``bart traj -q DX:DY:DXY`` takes and
``bart estdelay`` prints.
"""

from __future__ import annotations

import argparse
import json

from medrestore.tasks.radial import estimate_delay_file
from medrestore.tasks.recon import set_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT [--method ring|ac-adaptive] [--threads N] [--json]``."""
    parser.add_argument("input", metavar="INPUT", help="radial k-space: .npz, ISMRMRD .h5 or BART .cfl (with --trajectory)")
    parser.add_argument("--trajectory", default=None, metavar="TRAJ", help="BART trajectory .cfl of BART k-space")
    parser.add_argument("--method", choices=("ring", "ac-adaptive"), default="ring", help="estimator (default ring)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        set_threads(args.threads)
    report = estimate_delay_file(args.input, args.method, args.trajectory)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['method']}: x {report['delay_x']:.4f}, y {report['delay_y']:.4f}, xy {report['delay_xy']:.4f} samples "
          f"({report['delay_axes']} axes, {report['pairs']} pairs, {report['seconds']:.2f} s)")
    if "simulated_delay" in report:
        print(f"  simulated {report['simulated_delay']}, RMS error {report['rms_error']:.4f} samples")
    return 0
