"""``medrestore harmonize-data``: make scanner-harmonisation datasets (simulated pair, IXI by field strength)."""

from __future__ import annotations

import argparse

from medrestore.tasks.harmonize import IXI_BASE_URL, SimulationPlan, organise_ixi_archives, simulate_scanner_pair


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``simulate BRAIN -o DIR [...]`` or ``ixi ARCHIVES_DIR -o DIR [--download]``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    simulate = actions.add_parser("simulate", help="paired and unpaired slices of simulated scanners a and b")
    simulate.add_argument("brain", metavar="BRAIN", help="clean RAS+ brain volume (e.g. Colin27 ch2.nii.gz)")
    simulate.add_argument("-o", "--output", metavar="DIR", required=True, help="dataset folder")
    simulate.add_argument("--subjects", type=int, default=16, help="simulated subjects (default 16)")
    simulate.add_argument("--slices-per-subject", type=int, default=10, help="axial slices per subject (default 10)")
    simulate.add_argument("--size", type=int, default=128, help="slice side in pixels (default 128)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of everything (default 0)")
    ixi = actions.add_parser("ixi", help="sort IXI tar archives into 1.5T (Guys, IOP) and 3T (HH) folders")
    ixi.add_argument("archives", metavar="ARCHIVES_DIR", help="folder holding IXI-T1.tar, IXI-T2.tar, ...")
    ixi.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder")
    ixi.add_argument("--download", action="store_true", help="download the archives into ARCHIVES_DIR first")
    ixi.add_argument("--base-url", default=IXI_BASE_URL, help="where the archives are served")


def run(args: argparse.Namespace) -> int:
    if args.action == "simulate":
        plan = SimulationPlan(subjects=args.subjects, slices_per_subject=args.slices_per_subject, size=args.size, seed=args.seed)
        manifest = simulate_scanner_pair(args.brain, args.output, plan)
        splits = ", ".join(f"{name} {len(members)}" for name, members in manifest["splits"].items())
        print(f"wrote {args.output} (subjects: {splits}; manifest.json)")
        return 0
    manifest = organise_ixi_archives(args.archives, args.output, args.download, args.base_url)
    print(f"wrote {args.output}: {manifest['counts']} files ({manifest['skipped']} skipped); manifest.json")
    return 0
